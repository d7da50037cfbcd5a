#include "config/config_doc.h"

#include <charconv>
#include <nlohmann/json.hpp>
#include <set>

#include "config/config_keys.h"

namespace sluice::config {
namespace {

using config::Key;
using config::Type;
using json = nlohmann::ordered_json;

std::string str(std::string_view s) { return std::string(s); }

std::string doc_type(const Key& k) {
  if (!k.doc_type.empty()) return str(k.doc_type);
  switch (k.type) {
    case Type::string: return "string";
    case Type::path: return "path";
    case Type::integer:
      if (k.max.empty()) return "integer >= " + str(k.min);
      return "integer " + str(k.min) + ".." + str(k.max);
    case Type::boolean: return "bool";
    case Type::number: return "number " + str(k.min) + ".." + str(k.max);
    case Type::duration: return "duration " + str(k.min) + ".." + str(k.max);
    case Type::size: return "size " + str(k.min) + ".." + str(k.max);
    case Type::listen: return "listen";
    case Type::topic: return "topic";
    case Type::broker_ref: return "broker name";
    case Type::enumeration: {
      std::string out;
      for (std::string_view v : k.values->names)
        out += (out.empty() ? "`" : " \\| `") + str(v) + "`";
      return out;
    }
    case Type::kind: return "`" + str(k.of) + "`";
    case Type::section: return "map";
    case Type::section_list: return "list of " + str(k.of);
    case Type::broker_map: return "map of name → broker";
    case Type::string_list: return k.non_empty ? "list of strings, non-empty" : "list of strings";
    case Type::string_map: return "map string → string";
    case Type::nats_urls: return "string or list of strings";
    case Type::filter: return "filter";
  }
  return "?";
}

std::string doc_default(const Key& k) {
  if (k.required) return "required";
  if (!k.doc_default.empty()) return str(k.doc_default);
  if (!k.def.empty()) return "`" + str(k.def) + "`";
  return "";
}

uint64_t integer(std::string_view text) {
  uint64_t v = 0;
  std::from_chars(text.data(), text.data() + text.size(), v);
  return v;
}

json ref(std::string_view def) { return json{{"$ref", "#/$defs/" + str(def)}}; }

json schema_of(const Key& k) {
  json p = json::object();
  switch (k.type) {
    case Type::string:
      p["type"] = "string";
      if (k.pattern.empty()) p["minLength"] = 1;
      else p["pattern"] = str(k.pattern);
      break;
    case Type::path:
    case Type::topic:
    case Type::broker_ref:
      p["type"] = "string";
      p["minLength"] = 1;
      break;
    case Type::integer:
      p["type"] = "integer";
      p["minimum"] = integer(k.min);
      if (!k.max.empty()) p["maximum"] = integer(k.max);
      break;
    case Type::boolean: p["type"] = "boolean"; break;
    case Type::number:
      p["type"] = "number";
      p["minimum"] = config::min_number(k);
      p["maximum"] = config::max_number(k);
      break;
    case Type::duration:
    case Type::size:
      p = ref(k.type == Type::duration ? "duration" : "size");
      p["x-minimum"] = str(k.min);
      p["x-maximum"] = str(k.max);
      break;
    case Type::listen: p = ref("listen"); break;
    case Type::enumeration:
      p["enum"] = json::array();
      for (std::string_view v : k.values->names) p["enum"].push_back(str(v));
      break;
    case Type::kind: p["const"] = str(k.of); break;
    case Type::section: p = ref(k.of); break;
    case Type::section_list:
      p["type"] = "array";
      p["items"] = ref(k.of);
      break;
    case Type::broker_map:
      p["type"] = "object";
      p["minProperties"] = 1;
      p["propertyNames"] = json{{"minLength", 1}};
      p["additionalProperties"] = ref(k.of);
      break;
    case Type::string_list:
      p["type"] = "array";
      if (k.non_empty) p["minItems"] = 1;
      p["items"] = json{{"type", "string"}, {"minLength", 1}};
      break;
    case Type::string_map: p = ref("string_map"); break;
    case Type::filter: p = ref("filter"); break;
    case Type::nats_urls:
      p["oneOf"] = json::array(
          {ref("nats_url"), json{{"type", "array"}, {"minItems", 1}, {"items", ref("nats_url")}}});
      break;
  }
  if (!k.def.empty()) {
    switch (k.type) {
      case Type::integer: p["default"] = integer(k.def); break;
      case Type::boolean: p["default"] = k.def == "true"; break;
      case Type::string_list:
      case Type::string_map: p["default"] = json::parse(k.def); break;
      default: p["default"] = str(k.def);
    }
  }
  std::string doc = str(k.doc);
  if (k.def.empty() && !k.required && !k.doc_default.empty())
    doc += " Default: " + str(k.doc_default) + ".";
  p["description"] = doc;
  return p;
}

}  // namespace

std::string key_table(std::string_view section) {
  std::string out = "| Key | Type | Default | Meaning |\n|---|---|---|---|\n";
  for (const Key& k : config::keys()) {
    if (k.section != section) continue;
    out += "| `" + str(k.name) + "` | " + doc_type(k) + " | " + doc_default(k) + " | " +
           str(k.doc) + " |\n";
  }
  return out;
}

Result<std::string> render_config_md(std::string_view committed) {
  static constexpr std::string_view kBegin = "\n<!-- keys: ";
  static constexpr std::string_view kEnd = "<!-- /keys -->";
  std::string out;
  std::set<std::string_view> done;
  std::size_t at = 0;
  for (;;) {
    const std::size_t begin = committed.find(kBegin, at);
    if (begin == std::string_view::npos) break;
    const std::size_t name_end = committed.find(" -->\n", begin);
    if (name_end == std::string_view::npos)
      return Error(Errc::invalid_argument, "unterminated \"<!-- keys: \" marker");
    const std::string_view name =
        committed.substr(begin + kBegin.size(), name_end - begin - kBegin.size());
    if (name.size() > 64 || name.find('\n') != std::string_view::npos)
      return Error(Errc::invalid_argument, "a \"<!-- keys: \" marker without its \" -->\"");
    bool known = false;
    for (const config::Section& s : config::sections()) known = known || s.name == name;
    if (!known || !done.insert(name).second)
      return Error(Errc::invalid_argument,
                   "marker names an unknown or repeated section: " + str(name));
    const std::size_t end = committed.find(kEnd, name_end);
    if (end == std::string_view::npos)
      return Error(Errc::invalid_argument, "no \"<!-- /keys -->\" after section " + str(name));
    out += committed.substr(at, name_end + 5 - at);
    out += key_table(name);
    at = end;
  }
  out += committed.substr(at);
  for (const config::Section& s : config::sections()) {
    if (!done.count(s.name))
      return Error(Errc::invalid_argument, "no \"<!-- keys: " + str(s.name) + " -->\" marker");
  }
  return out;
}

Result<std::string> render_schema(std::string_view committed) {
  json schema = json::parse(committed, nullptr, /*allow_exceptions=*/false);
  if (schema.is_discarded()) return Error(Errc::invalid_argument, "the schema is not JSON");
  for (const config::Section& s : config::sections()) {
    const json::json_pointer at{str(s.schema_pointer)};
    if (!schema.contains(at) || !schema[at].is_object())
      return Error(Errc::invalid_argument, "the schema has no object at " + at.to_string());
    json props = json::object();
    json required = json::array();
    for (const Key& k : config::keys()) {
      if (k.section != s.name) continue;
      props[str(k.name)] = schema_of(k);
      if (k.required) required.push_back(str(k.name));
    }
    // Rebuilt in place: "properties" where it was (or at the end), "required" after it.
    json rebuilt = json::object();
    bool placed = false;
    auto place = [&] {
      rebuilt["properties"] = props;
      if (!required.empty()) rebuilt["required"] = required;
      placed = true;
    };
    for (const auto& [name, value] : schema[at].items()) {
      if (name == "required") continue;
      if (name == "properties") place();
      else rebuilt[name] = value;
    }
    if (!placed) place();
    schema[at] = std::move(rebuilt);
  }
  return schema.dump(2) + "\n";
}

}  // namespace sluice::config
