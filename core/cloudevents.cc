#include "core/cloudevents.h"

#include <algorithm>
#include <array>
#include <boost/beast/core/detail/base64.hpp>
#include <nlohmann/json.hpp>
#include <vector>

namespace sluice::cloudevents {
namespace {

using nlohmann::json;

char lc(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lc(x) == lc(y); });
}

bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

Error bad(std::string msg) { return Error{Errc::invalid_argument, std::move(msg)}; }

// The context attributes, all strings in the Event.
struct Attribute {
  std::string_view name;
  std::string Event::*field;
  bool required;
};
constexpr std::array<Attribute, 8> kAttributes = {{{"specversion", &Event::specversion, true},
                                                   {"id", &Event::id, true},
                                                   {"source", &Event::source, true},
                                                   {"type", &Event::type, true},
                                                   {"subject", &Event::subject, false},
                                                   {"time", &Event::time, false},
                                                   {"datacontenttype", &Event::datacontenttype, false},
                                                   {"dataschema", &Event::dataschema, false}}};

const Attribute* find_attribute(std::string_view name) {
  for (const auto& a : kAttributes)
    if (a.name == name) return &a;
  return nullptr;
}

bool is_reserved(std::string_view name) {
  return find_attribute(name) || name == "data" || name == "data_base64";
}

// ---- raw member text of a JSON object the parser has already accepted ----
// nlohmann re-serialises values (and turns integers beyond 64 bits into doubles);
// `data` and numeric extensions are kept exactly as sent by slicing the input.

struct Member {
  std::string key;
  std::string_view raw;
};

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

size_t skip_ws(std::string_view s, size_t i) {
  while (i < s.size() && is_ws(s[i])) ++i;
  return i;
}

size_t skip_string(std::string_view s, size_t i) {  // s[i] == '"'; returns one past the close
  for (++i; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;
    } else if (s[i] == '"') {
      return i + 1;
    }
  }
  return s.size();
}

size_t skip_value(std::string_view s, size_t i) {
  if (i >= s.size()) return i;
  if (s[i] == '"') return skip_string(s, i);
  if (s[i] == '{' || s[i] == '[') {
    int depth = 0;
    while (i < s.size()) {
      char c = s[i];
      if (c == '"') {
        i = skip_string(s, i);
        continue;
      }
      if (c == '{' || c == '[') ++depth;
      if ((c == '}' || c == ']') && --depth == 0) return i + 1;
      ++i;
    }
    return i;
  }
  while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']' && !is_ws(s[i])) ++i;
  return i;
}

std::vector<Member> top_level_members(std::string_view s) {
  std::vector<Member> out;
  if (s.substr(0, 3) == "\xEF\xBB\xBF") s.remove_prefix(3);  // the parser skips a BOM too
  size_t i = skip_ws(s, 0);
  if (i >= s.size() || s[i] != '{') return out;
  i = skip_ws(s, i + 1);
  while (i < s.size() && s[i] == '"') {
    size_t kend = skip_string(s, i);
    std::string_view kraw = s.substr(i, kend - i);
    std::string key;
    if (kraw.find('\\') == std::string_view::npos) {
      key.assign(kraw.substr(1, kraw.size() - 2));
    } else {
      json k = json::parse(kraw, nullptr, false);
      if (k.is_string()) key = k.get<std::string>();
    }
    i = skip_ws(s, skip_ws(s, kend) + 1);  // past ':'
    size_t vend = skip_value(s, i);
    out.push_back({std::move(key), s.substr(i, vend - i)});
    i = skip_ws(s, vend);
    if (i < s.size() && s[i] == ',') i = skip_ws(s, i + 1);
  }
  return out;
}

const std::string_view* find_raw(const std::vector<Member>& members, std::string_view key) {
  const std::string_view* found = nullptr;  // the last one wins, as in the parsed object
  for (const auto& m : members)
    if (m.key == key) found = &m.raw;
  return found;
}

// ---- attribute checks shared by both modes ----

Result<void> string_attr(const json& doc, std::string_view name, bool required, std::string& out) {
  const std::string n(name);
  auto it = doc.find(n);
  if (it == doc.end() || it->is_null()) {
    if (required) return bad("missing required attribute '" + n + "'");
    return ok();
  }
  if (!it->is_string()) return bad("attribute '" + n + "' must be a string");
  const auto& s = it->get_ref<const std::string&>();
  if (s.empty()) return bad("attribute '" + n + "' must not be empty");
  out = s;
  return ok();
}

Result<void> check_required(const Event& e) {
  if (e.specversion.empty()) return bad("missing required attribute 'specversion'");
  if (e.specversion != "1.0")
    return bad("unsupported specversion '" + e.specversion + "' (sluice reads CloudEvents 1.0)");
  if (e.id.empty()) return bad("missing required attribute 'id'");
  if (e.source.empty()) return bad("missing required attribute 'source'");
  if (e.type.empty()) return bad("missing required attribute 'type'");
  if (!e.time.empty() && !parse_rfc3339(e.time))
    return bad("attribute 'time' is not an RFC 3339 timestamp: '" + e.time + "'");
  return ok();
}

Error bad_extension_name(std::string_view name) {
  return bad("extension attribute name '" + std::string(name) +
             "' is invalid: CloudEvents names are 1-20 lower-case letters or digits");
}

void add_extension(Event& e, std::string name, std::string value) {
  if (name == "partitionkey") e.key = value;
  e.extensions.emplace_back(std::move(name), std::move(value));
}

const std::string* partition_key_to_emit(const Event& e) {
  if (e.key.empty() || e.extension("partitionkey")) return nullptr;
  return &e.key;
}

}  // namespace

// ---- structured mode ----

Result<Event> parse_structured(std::string_view text) {
  // `data` is dropped from the tree (it can be large) and read from the raw text.
  static const json::parser_callback_t drop_data = [](int depth, json::parse_event_t ev,
                                                      json& parsed) {
    return !(depth == 1 && ev == json::parse_event_t::key && parsed == "data");
  };
  json doc;
  try {
    doc = json::parse(text.begin(), text.end(), drop_data);
  } catch (const json::exception& ex) {
    std::string_view what = ex.what();
    if (auto p = what.find("] "); p != std::string_view::npos) what.remove_prefix(p + 2);
    return bad("invalid JSON: " + std::string(what));
  }
  if (!doc.is_object()) return bad("a structured CloudEvent must be a JSON object");

  Event e;
  e.specversion.clear();
  for (const auto& a : kAttributes) {
    SLUICE_TRY(string_attr(doc, a.name, a.required, e.*a.field));
  }
  SLUICE_TRY(check_required(e));

  const auto members = top_level_members(text);
  const std::string_view* data = find_raw(members, "data");
  if (data && *data == "null") data = nullptr;
  auto b64 = doc.find("data_base64");
  if (b64 != doc.end() && b64->is_null()) b64 = doc.end();
  if (data && b64 != doc.end()) return bad("both 'data' and 'data_base64' are present");
  if (b64 != doc.end()) {
    if (!b64->is_string()) return bad("attribute 'data_base64' must be a string");
    auto bytes = base64_decode(b64->get_ref<const std::string&>());
    if (!bytes) return bad("attribute 'data_base64': " + bytes.error().message);
    e.data = std::move(bytes).value();
  } else if (data && (*data)[0] == '"' && !is_json_content_type(e.datacontenttype)) {
    e.data = json::parse(*data).get<std::string>();  // already validated: cannot throw
  } else if (data) {
    e.data.assign(*data);
    if (e.datacontenttype.empty()) e.datacontenttype = "application/json";
  }

  for (const auto& [name, value] : doc.items()) {
    if (is_reserved(name) || value.is_null()) continue;
    if (!is_valid_attribute_name(name)) return bad_extension_name(name);
    if (value.is_string()) {
      add_extension(e, name, value.get<std::string>());
    } else if (value.is_boolean()) {
      add_extension(e, name, value.get<bool>() ? "true" : "false");
    } else if (value.is_number()) {
      const std::string_view* raw = find_raw(members, name);
      add_extension(e, name, raw ? std::string(*raw) : value.dump());
    } else {
      return bad("extension attribute '" + name + "' must be a string, number or boolean");
    }
  }
  return e;
}

std::string to_structured(const Event& e) {
  json j = json::object();
  for (const auto& a : kAttributes)
    if (!(e.*a.field).empty()) j[std::string(a.name)] = e.*a.field;
  if (e.specversion.empty()) j["specversion"] = "1.0";
  for (const auto& [name, value] : e.extensions)
    if (is_valid_attribute_name(name) && !is_reserved(name)) j[name] = value;
  if (const auto* key = partition_key_to_emit(e)) j["partitionkey"] = *key;

  std::string out = j.dump(-1, ' ', false, json::error_handler_t::replace);
  if (e.data.empty()) return out;
  out.pop_back();  // '}' — `data` is appended as raw text
  const bool json_type = is_json_content_type(e.datacontenttype);
  if (json_type && json::accept(e.data)) {
    out += ",\"data\":" + e.data;
  } else if (!json_type && is_valid_utf8(e.data)) {
    out += ",\"data\":" + json(e.data).dump();
  } else {
    out += ",\"data_base64\":\"" + base64_encode(e.data) + '"';
  }
  out += '}';
  return out;
}

// ---- binary mode ----

Result<Event> parse_binary(const Headers& headers, std::string_view prefix, std::string body,
                           std::string_view content_type) {
  const bool percent = iequals(prefix, kHttpPrefix);
  Event e;
  e.specversion.clear();
  std::string header_content_type;
  for (const auto& h : headers) {
    if (iequals(h.name, "content-type")) {
      header_content_type = h.value;
      continue;
    }
    if (!istarts_with(h.name, prefix)) {
      e.headers.push_back(h);
      continue;
    }
    std::string name = h.name.substr(prefix.size());
    std::transform(name.begin(), name.end(), name.begin(), lc);
    std::string value = h.value;
    if (percent) {
      auto decoded = percent_decode_header(h.value);
      if (!decoded) return bad("header '" + h.name + "': " + decoded.error().message);
      value = std::move(decoded).value();
    }
    if (const Attribute* a = find_attribute(name)) {
      std::string& slot = e.*a->field;
      if (!slot.empty()) return bad("attribute '" + name + "' is given twice");
      if (value.empty()) return bad("attribute '" + name + "' must not be empty");
      slot = std::move(value);
      continue;
    }
    if (is_reserved(name)) return bad("header '" + h.name + "' is not a context attribute");
    if (!is_valid_attribute_name(name)) return bad_extension_name(name);
    if (e.extension(name)) return bad("attribute '" + name + "' is given twice");
    add_extension(e, std::move(name), std::move(value));
  }
  SLUICE_TRY(check_required(e));
  if (!content_type.empty()) {
    e.datacontenttype.assign(content_type);
  } else if (!header_content_type.empty()) {
    e.datacontenttype = std::move(header_content_type);
  }
  e.data = std::move(body);
  return e;
}

Headers to_binary(const Event& e, std::string_view prefix) {
  const bool percent = iequals(prefix, kHttpPrefix);
  Headers out;
  // An empty attribute is unset; an empty extension is a value (parse_binary accepts it).
  auto add = [&](std::string_view name, const std::string& value, bool keep_empty = false) {
    if (value.empty() && !keep_empty) return;
    out.push_back({std::string(prefix) + std::string(name),
                   percent ? percent_encode_header(value) : value});
  };
  add("specversion", e.specversion.empty() ? std::string("1.0") : e.specversion);
  for (const auto& a : kAttributes)
    if (a.name != "specversion" && a.name != "datacontenttype") add(a.name, e.*a.field);
  for (const auto& [name, value] : e.extensions)
    if (is_valid_attribute_name(name) && !is_reserved(name)) add(name, value, true);
  if (const auto* key = partition_key_to_emit(e)) add("partitionkey", *key);
  if (!e.datacontenttype.empty()) out.push_back({"content-type", e.datacontenttype});
  for (const auto& h : e.headers)
    if (!istarts_with(h.name, prefix) && !iequals(h.name, "content-type")) out.push_back(h);
  return out;
}

// ---- helpers ----

bool is_json_content_type(std::string_view ct) {
  ct = ct.substr(0, ct.find(';'));
  while (!ct.empty() && is_ws(ct.back())) ct.remove_suffix(1);
  while (!ct.empty() && is_ws(ct.front())) ct.remove_prefix(1);
  return iequals(ct, "application/json") || iequals(ct, "text/json") ||
         (ct.size() > 5 && iequals(ct.substr(ct.size() - 5), "+json"));
}

bool is_valid_attribute_name(std::string_view name) {
  if (name.empty() || name.size() > 20) return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
  return true;
}

bool is_valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    const size_t n = (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : 0;
    if (n == 0) return false;
    uint32_t cp = c & (0x3F >> n);
    if (i + n >= s.size()) return false;  // truncated sequence
    for (size_t k = 1; k <= n; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

std::string base64_encode(std::string_view bytes) {
  namespace b64 = boost::beast::detail::base64;
  std::string out(b64::encoded_size(bytes.size()), '\0');
  out.resize(b64::encode(out.data(), bytes.data(), bytes.size()));
  return out;
}

Result<std::string> base64_decode(std::string_view text) {
  namespace b64 = boost::beast::detail::base64;
  if (text.size() % 4 != 0) return bad("base64 length is not a multiple of 4");
  size_t pad = 0;
  while (pad < 2 && pad < text.size() && text[text.size() - 1 - pad] == '=') ++pad;
  const signed char* inverse = b64::get_inverse();
  for (size_t i = 0; i < text.size() - pad; ++i)
    if (inverse[static_cast<unsigned char>(text[i])] < 0)
      return bad("invalid base64 character at offset " + std::to_string(i));
  std::string out(b64::decoded_size(text.size()), '\0');
  auto [written, read] = b64::decode(out.data(), text.data(), text.size());
  out.resize(written);
  return out;
}

std::string percent_encode_header(std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(value.size());
  for (char ch : value) {
    auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c >= 0x7F || c == '"' || c == '%') {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    } else {
      out += ch;
    }
  }
  return out;
}

Result<std::string> percent_decode_header(std::string_view value) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(value.size());
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] != '%') {
      out += value[i];
      continue;
    }
    int hi = i + 2 < value.size() ? hex(value[i + 1]) : -1;
    int lo = hi >= 0 ? hex(value[i + 2]) : -1;
    if (lo < 0) return bad("malformed percent-encoding at offset " + std::to_string(i));
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  if (!is_valid_utf8(out)) return bad("value is not UTF-8 after percent-decoding");
  return out;
}

}  // namespace sluice::cloudevents
