// Helpers shared by the config tests.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "config/config.h"

namespace sluice::config::testing {

inline LoadResult load(const std::string& yaml) { return load_config_string(yaml, "/srv/app"); }

inline std::string dump(const LoadResult& r) {
  std::string out;
  for (const ConfigError& e : r.errors) out += "  " + e.to_string() + "\n";
  return out;
}

// The error at `path`, or nullptr.
inline const ConfigError* find_error(const LoadResult& r, const std::string& path) {
  for (const ConfigError& e : r.errors) {
    if (e.path == path) return &e;
  }
  return nullptr;
}

// Expects an error at `path` on `line` whose message contains `text`.
#define EXPECT_CONFIG_ERROR(result, path_, line_, text)                                   \
  do {                                                                                    \
    const ::sluice::ConfigError* e_ = ::sluice::config::testing::find_error(result, path_);      \
    ASSERT_NE(e_, nullptr) << "no error at " << path_ << "; errors:\n"                   \
                           << ::sluice::config::testing::dump(result);                           \
    EXPECT_EQ(e_->line, line_) << e_->to_string();                                        \
    EXPECT_NE(e_->message.find(text), std::string::npos) << e_->to_string();              \
    EXPECT_FALSE((result).config.has_value());                                            \
  } while (0)

}  // namespace sluice::config::testing
