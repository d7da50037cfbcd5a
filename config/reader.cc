#include "config/reader.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "config/values.h"
#include "core/topic.h"

namespace sluice::config {

int line_of(const YAML::Node& n) {
  const YAML::Mark m = n.Mark();
  return m.is_null() ? 0 : m.line + 1;
}

std::string join_path(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

std::string index_path(const std::string& path, std::size_t index) {
  return path + "[" + std::to_string(index) + "]";
}

std::string describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: return "a map";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Scalar: return quote(n.Scalar());
    default: return "nothing";
  }
}

std::vector<Entry> map_entries(Diagnostics& d, const Field& f, std::string_view what) {
  std::vector<Entry> out;
  if (f.node.IsNull()) return out;
  if (!f.node.IsMap()) {
    d.error(f.path, f.line, "expected a map, got " + describe(f.node));
    return out;
  }
  for (const auto& kv : f.node) {  // a value: yaml-cpp's it->first dies with its proxy
    const YAML::Node k = kv.first;
    const YAML::Node v = kv.second;
    const int key_line = line_of(k);
    if (!k.IsScalar()) {
      d.error(f.path, key_line, "expected a string " + std::string(what) + ", got " + describe(k));
      continue;
    }
    const std::string key = k.Scalar();
    auto first = std::find_if(out.begin(), out.end(), [&](const Entry& e) { return e.key == key; });
    if (first != out.end()) {
      d.error(join_path(f.path, key), key_line,
              "duplicate " + std::string(what) + " " + quote(key) + " (first on line " +
                  std::to_string(first->key_line) + ")");
      continue;
    }
    // Scalars report at their own line; empty, map and list values at their key's line.
    const int value_line = v.IsScalar() ? line_of(v) : key_line;
    out.push_back(Entry{key, key_line, Field{v, join_path(f.path, key), value_line}});
  }
  return out;
}

MapReader::MapReader(Diagnostics& d, const Field& f, const config::Section& section,
                     const UnknownKeyHook& hook) {
  is_map_ = f.node.IsNull() || f.node.IsMap();
  entries_ = map_entries(d, f);
  if (!is_map_) return;
  std::vector<Entry> known;
  for (Entry& e : entries_) {
    if (std::find(section.keys.begin(), section.keys.end(), e.key) != section.keys.end()) {
      known.push_back(std::move(e));
      continue;
    }
    std::optional<std::string> msg = hook ? hook(e.key) : std::nullopt;
    if (!msg) {
      msg = "unknown key " + quote(e.key);
      std::string_view hint = closest(e.key, section.keys);
      if (!hint.empty()) {
        *msg += " (did you mean \"" + std::string(hint) + "\"?)";
      } else {
        *msg += " (expected one of: ";
        for (std::size_t i = 0; i < section.keys.size(); ++i) {
          *msg += (i ? ", " : "") + std::string(section.keys[i]);
        }
        *msg += ")";
      }
    }
    d.error(e.value.path, e.key_line, std::move(*msg));
  }
  entries_ = std::move(known);
  for (std::string_view req : section.required) {
    if (!has(req)) {
      d.error(join_path(f.path, req), f.line, "missing required key \"" + std::string(req) + "\"");
    }
  }
}

std::optional<Field> MapReader::get(std::string_view key) const {
  for (const Entry& e : entries_) {
    if (e.key == key) return e.value;
  }
  return std::nullopt;
}

std::optional<std::string> read_string(Diagnostics& d, const Field& f, bool non_empty) {
  if (!f.node.IsScalar()) {
    d.error(f.path, f.line, "expected a string, got " + describe(f.node));
    return std::nullopt;
  }
  if (non_empty && f.node.Scalar().empty()) {
    d.error(f.path, f.line, "must not be empty");
    return std::nullopt;
  }
  return f.node.Scalar();
}

std::optional<bool> read_bool(Diagnostics& d, const Field& f) {
  bool v = false;
  if (f.node.IsScalar() && YAML::convert<bool>::decode(f.node, v)) return v;
  d.error(f.path, f.line, "expected true or false, got " + describe(f.node));
  return std::nullopt;
}

std::optional<uint64_t> read_uint(Diagnostics& d, const Field& f, uint64_t min, uint64_t max) {
  const std::string range = std::to_string(min) + ".." + std::to_string(max);
  if (!f.node.IsScalar()) {
    d.error(f.path, f.line, "expected an integer in " + range + ", got " + describe(f.node));
    return std::nullopt;
  }
  const std::string& s = f.node.Scalar();
  const bool negative = !s.empty() && s[0] == '-';
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data() + (negative ? 1 : 0), s.data() + s.size(), v);
  if (end != s.data() + s.size() || end == s.data() + (negative ? 1 : 0)) {
    d.error(f.path, f.line, "expected an integer in " + range + ", got " + describe(f.node));
    return std::nullopt;
  }
  if (ec != std::errc() || negative || v < min || v > max) {
    d.error(f.path, f.line, "must be in " + range + ", got " + (s.size() <= kEchoLimit ? s : quote(s)));
    return std::nullopt;
  }
  return v;
}

std::optional<double> read_number(Diagnostics& d, const Field& f, const config::Key& k) {
  const std::string range = std::string(k.min) + ".." + std::string(k.max);
  double v = 0;
  bool parsed = false;
  if (f.node.IsScalar()) {
    const std::string& s = f.node.Scalar();
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    parsed = ec == std::errc() && end == s.data() + s.size() && !s.empty() && std::isfinite(v);
  }
  if (!parsed) {
    d.error(f.path, f.line, "expected a number in " + range + ", got " + describe(f.node));
    return std::nullopt;
  }
  if (v < config::min_number(k) || v > config::max_number(k)) {
    d.error(f.path, f.line, "must be in " + range + ", got " + quote(f.node.Scalar()));
    return std::nullopt;
  }
  return v;
}

std::optional<Millis> read_duration(Diagnostics& d, const Field& f) {
  if (!f.node.IsScalar()) {
    d.error(f.path, f.line, "expected a duration like 5s, got " + describe(f.node));
    return std::nullopt;
  }
  auto r = parse_duration(f.node.Scalar());
  if (!r) {
    d.error(f.path, f.line, r.error().message);
    return std::nullopt;
  }
  return r.value();
}

std::optional<uint64_t> read_size(Diagnostics& d, const Field& f) {
  if (!f.node.IsScalar()) {
    d.error(f.path, f.line, "expected a size like 1MiB, got " + describe(f.node));
    return std::nullopt;
  }
  auto r = parse_size(f.node.Scalar());
  if (!r) {
    d.error(f.path, f.line, r.error().message);
    return std::nullopt;
  }
  return r.value();
}

namespace {
// `v` (already read) within the documented range of `b`, or an error naming the limit.
template <class T>
std::optional<T> within(Diagnostics& d, const Field& f, std::optional<T> v, T lo, T hi,
                        const config::Key& b) {
  if (!v) return std::nullopt;
  if (*v < lo || *v > hi) {
    d.error(f.path, f.line,
            (*v > hi ? "must be at most " + std::string(b.max)
                     : "must be at least " + std::string(b.min)) +
                ", got " + quote(f.node.Scalar()));
    return std::nullopt;
  }
  return v;
}
}  // namespace

std::optional<uint64_t> read_uint(Diagnostics& d, const Field& f, const config::Key& k) {
  return read_uint(d, f, config::min_integer(k), config::max_integer(k));
}

std::optional<Millis> read_duration(Diagnostics& d, const Field& f,
                                   const config::Key& b) {
  return within(d, f, read_duration(d, f), config::min_duration(b),
                config::max_duration(b), b);
}

std::optional<uint64_t> read_size(Diagnostics& d, const Field& f,
                                  const config::Key& b) {
  return within(d, f, read_size(d, f), config::min_size(b), config::max_size(b), b);
}

std::optional<std::string> read_listen(Diagnostics& d, const Field& f) {
  auto s = read_string(d, f);
  if (!s) return std::nullopt;
  if (auto why = check_listen(*s)) {
    d.error(f.path, f.line, *why);
    return std::nullopt;
  }
  return s;
}

std::optional<std::string> read_topic(Diagnostics& d, const Field& f) {
  auto s = read_string(d, f, false);
  if (!s) return std::nullopt;
  if (auto why = topic_name_error(*s)) {
    d.error(f.path, f.line, "topic \"" + printable_topic(*s) + "\": " + *why);
    return std::nullopt;
  }
  return s;
}

std::optional<std::size_t> read_enum(Diagnostics& d, const Field& f,
                                     const config::EnumSpec& spec) {
  if (f.node.IsScalar()) {
    auto it = std::find(spec.names.begin(), spec.names.end(), f.node.Scalar());
    if (it != spec.names.end()) return static_cast<std::size_t>(it - spec.names.begin());
  }
  std::string msg = "expected one of ";
  for (std::size_t i = 0; i < spec.names.size(); ++i) {
    msg += (i ? " | " : "") + std::string(spec.names[i]);
  }
  msg += ", got " + describe(f.node);
  if (f.node.IsScalar()) {
    std::string_view hint = closest(f.node.Scalar(), spec.names);
    if (!hint.empty()) msg += " (did you mean \"" + std::string(hint) + "\"?)";
  }
  d.error(f.path, f.line, std::move(msg));
  return std::nullopt;
}

std::optional<std::vector<std::string>> read_string_list(Diagnostics& d, const Field& f,
                                                         bool non_empty_list) {
  if (!f.node.IsSequence()) {
    d.error(f.path, f.line, "expected a list of strings, got " + describe(f.node));
    return std::nullopt;
  }
  if (non_empty_list && f.node.size() == 0) {
    d.error(f.path, f.line, "must not be empty");
    return std::nullopt;
  }
  std::vector<std::string> out;
  bool ok = true;
  for (std::size_t i = 0; i < f.node.size(); ++i) {
    const YAML::Node item = f.node[i];
    auto s = read_string(d, Field{item, index_path(f.path, i), line_of(item)});
    if (s) out.push_back(std::move(*s));
    ok = ok && s.has_value();
  }
  if (!ok) return std::nullopt;
  return out;
}

std::optional<std::map<std::string, std::string>> read_string_map(Diagnostics& d,
                                                                  const Field& f) {
  if (!f.node.IsNull() && !f.node.IsMap()) {
    d.error(f.path, f.line, "expected a map, got " + describe(f.node));
    return std::nullopt;
  }
  std::map<std::string, std::string> out;  // the valid entries, even when others are not
  for (Entry& e : map_entries(d, f)) {
    if (e.key.empty()) {
      d.error(e.value.path, e.key_line, "keys must not be empty");
      continue;
    }
    if (auto v = read_string(d, e.value, /*non_empty=*/false)) out.emplace(e.key, *v);
  }
  return out;
}

std::string absolute_path(const std::string& base_dir, const std::string& path) {
  std::filesystem::path p(path);
  if (p.is_relative()) p = std::filesystem::path(base_dir) / p;
  return p.lexically_normal().string();
}

namespace {

// The content of an option's secret file, or the reason it cannot be used.
Result<std::string> read_option_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    return Error{Errc::invalid_argument, "no such file: " + quote(path)};
  const auto size = std::filesystem::file_size(path, ec);
  if (ec || size > kMaxOptionFile)
    return Error{Errc::invalid_argument, quote(path) + " is larger than " +
                                             format_size(kMaxOptionFile)};
  std::ifstream in(path, std::ios::binary);
  std::string text(static_cast<size_t>(size), '\0');
  if (!in || !in.read(text.data(), static_cast<std::streamsize>(text.size())))
    return Error{Errc::invalid_argument,
                 "cannot read " + quote(path) + ": " + std::strerror(errno)};
  if (!text.empty() && text.back() == '\n') text.pop_back();
  if (!text.empty() && text.back() == '\r') text.pop_back();
  return text;
}

}  // namespace

std::optional<std::map<std::string, std::string>> read_options(Diagnostics& d, const Field& f,
                                                               const std::string& base_dir) {
  auto opts = read_string_map(d, f);
  if (!opts || !f.node.IsMap()) return opts;
  constexpr std::string_view kSuffix = "_file";
  for (const auto& kv : f.node) {
    if (!kv.first.IsScalar() || !kv.second.IsScalar()) continue;
    const std::string& key = kv.first.Scalar();
    if (key.size() <= kSuffix.size() || !key.ends_with(kSuffix) || !opts->count(key)) continue;
    const std::string name = key.substr(0, key.size() - kSuffix.size());
    const std::string path = join_path(f.path, key);
    const int line = line_of(kv.second);
    std::string file = (*opts)[key];
    opts->erase(key);
    if (opts->count(name)) {
      d.error(path, line, "set either " + quote(name) + " or " + quote(key) + ", not both");
      continue;
    }
    auto text = read_option_file(absolute_path(base_dir, file));
    if (!text) {
      d.error(path, line, text.error().message);
      continue;
    }
    (*opts)[name] = std::move(text).value();
  }
  return opts;
}

}  // namespace sluice::config
