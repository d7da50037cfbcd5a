// Reading YAML nodes into typed values while collecting every problem as a ConfigError.
//
// A `Field` is a node plus its field path and line. The read_* helpers report a
// ConfigError (wrong type, bad format, out of range) and return nullopt instead of
// throwing. Used only while one config is loaded, on the loading thread.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"
#include "config/config_keys.h"

namespace sluice::config {

// Collects the errors of one load.
class Diagnostics {
 public:
  // Messages quote values through quote() (config/values.h); as a last guard, one
  // longer than kMaxMessage bytes is cut there.
  static constexpr std::size_t kMaxMessage = 1024;
  void error(std::string path, int line, std::string message) {
    if (message.size() > kMaxMessage) {
      const std::size_t n = message.size();
      message.resize(kMaxMessage);
      message += "\u2026 (" + std::to_string(n) + " bytes)";
    }
    if (path.size() > kMaxMessage) path.resize(kMaxMessage);
    errors_.push_back(ConfigError{std::move(path), line, std::move(message), {}});
  }
  bool empty() const { return errors_.empty(); }
  std::size_t count() const { return errors_.size(); }
  std::vector<ConfigError> take() { return std::move(errors_); }

 private:
  std::vector<ConfigError> errors_;
};

// 1-based line of a node, 0 when it has none.
int line_of(const YAML::Node& n);

struct Field {
  YAML::Node node;
  std::string path;  // e.g. functions[0].retry
  int line = 0;      // where the value starts (or its key, when the value is empty)
};

std::string join_path(const std::string& path, std::string_view key);
std::string index_path(const std::string& path, std::size_t index);
// "a map", "a list", "nothing" or the quoted scalar: for "expected X, got Y".
std::string describe(const YAML::Node& n);

// One entry of a YAML map: its key (a string) and its value.
struct Entry {
  std::string key;
  int key_line = 0;
  Field value;
};

// The entries of a map in document order. Reports a non-map (null counts as an empty
// map), non-string keys and repeated keys ("duplicate <what> ..."); returns the rest.
std::vector<Entry> map_entries(Diagnostics& d, const Field& f, std::string_view what = "key");

// A map whose keys are checked against a section of the key table: unknown keys
// (with a "did you mean" hint), duplicates and missing required keys are reported.
class MapReader {
 public:
  // Returns a message for an unknown key, or nullopt for the standard one.
  using UnknownKeyHook = std::function<std::optional<std::string>(std::string_view key)>;

  MapReader(Diagnostics& d, const Field& f, const config::Section& section,
            const UnknownKeyHook& hook = {});

  bool is_map() const { return is_map_; }
  bool has(std::string_view key) const { return get(key).has_value(); }
  std::optional<Field> get(std::string_view key) const;

 private:
  bool is_map_ = false;
  std::vector<Entry> entries_;
};

std::optional<std::string> read_string(Diagnostics& d, const Field& f, bool non_empty = true);
std::optional<bool> read_bool(Diagnostics& d, const Field& f);
std::optional<uint64_t> read_uint(Diagnostics& d, const Field& f, uint64_t min, uint64_t max);
// An integer within the key's range (config/config_keys.h).
std::optional<uint64_t> read_uint(Diagnostics& d, const Field& f, const config::Key& k);
// A decimal number within the key's range (config/config_keys.h, Type::number).
std::optional<double> read_number(Diagnostics& d, const Field& f, const config::Key& k);
std::optional<Millis> read_duration(Diagnostics& d, const Field& f);
std::optional<uint64_t> read_size(Diagnostics& d, const Field& f);
// The same, also checking the documented range of the key (config/config_keys.h).
std::optional<Millis> read_duration(Diagnostics& d, const Field& f, const config::Key& k);
std::optional<uint64_t> read_size(Diagnostics& d, const Field& f, const config::Key& k);
std::optional<std::string> read_listen(Diagnostics& d, const Field& f);
// A topic name (core/topic.h: topic_name_error).
std::optional<std::string> read_topic(Diagnostics& d, const Field& f);
// The index of the value in `spec.names`.
std::optional<std::size_t> read_enum(Diagnostics& d, const Field& f,
                                     const config::EnumSpec& spec);
// A list of strings (each non-empty); `non_empty_list` also rejects [].
std::optional<std::vector<std::string>> read_string_list(Diagnostics& d, const Field& f,
                                                         bool non_empty_list);
// A map of string to string; scalar values (numbers, booleans) are kept as written.
// Bad entries are reported and left out; nullopt only when the node is not a map.
std::optional<std::map<std::string, std::string>> read_string_map(Diagnostics& d,
                                                                  const Field& f);

// A broker's `options`: read_string_map, then each `<name>_file: PATH` entry is replaced
// by `<name>` set to the file's content (PATH relative to the config's folder; at most
// kMaxOptionFile bytes; one trailing newline stripped), so that secrets such as
// `sasl.password_file` need not sit in the config. A missing or oversized file, or both
// `<name>` and `<name>_file`, is reported at the entry's line.
inline constexpr std::size_t kMaxOptionFile = 64 * 1024;
std::optional<std::map<std::string, std::string>> read_options(Diagnostics& d, const Field& f,
                                                               const std::string& base_dir);

// Sets `out` from the key when present and valid; `read` is one of the helpers above.
template <class T, class Read>
void read_into(T& out, const MapReader& m, std::string_view key, Read&& read) {
  if (auto f = m.get(key)) {
    if (auto v = read(*f)) out = static_cast<T>(*v);
  }
}

// Resolves a relative path against `base_dir` (an absolute directory).
std::string absolute_path(const std::string& base_dir, const std::string& path);

}  // namespace sluice::config
