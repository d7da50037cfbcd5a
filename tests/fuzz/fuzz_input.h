// Helpers shared by the fuzz targets: the text form several of them read their input
// in, so that seed inputs stay readable and the fuzzer's mutations stay meaningful.
//
//   name: value        one header per line (a line without ':' is a name with an
//   other: value       empty value; one space after ':' is dropped)
//                      the first empty line ends the headers
//   body bytes...      everything after it, untouched
//
// Plain functions; used by one fuzzing thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/event.h"

namespace sluice::fuzz {

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

struct Message {
  Headers headers;
  std::string body;
};

// The headers and body of `in` (see above).
inline Message split_message(std::string_view in) {
  Message m;
  while (!in.empty()) {
    const size_t eol = in.find('\n');
    std::string_view line = in.substr(0, eol);
    in = eol == std::string_view::npos ? std::string_view{} : in.substr(eol + 1);
    if (line.empty()) break;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      m.headers.push_back({std::string(line), {}});
      continue;
    }
    std::string_view value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    m.headers.push_back({std::string(line.substr(0, colon)), std::string(value)});
  }
  m.body.assign(in);
  return m;
}

// A broken invariant: abort, so that libFuzzer keeps the input as a crash.
[[noreturn]] inline void invariant_failed(const char* what) {
  fprintf(stderr, "fuzz invariant failed: %s\n", what);
  std::abort();
}
#define SLUICE_FUZZ_CHECK(cond) \
  do {                          \
    if (!(cond)) ::sluice::fuzz::invariant_failed(#cond); \
  } while (0)

}  // namespace sluice::fuzz
