// The loader's key table, schemas/config.schema.json and docs/CONFIG.md must agree.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

#include "config/bounds.h"
#include "config/config.h"
#include "config/config_keys.h"

namespace sluice {
namespace {

using nlohmann::json;
namespace keys = config_keys;

std::string read(const std::string& rel) {
  std::ifstream in(std::string(SLUICE_SOURCE_DIR) + "/" + rel);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

const json& schema() {
  static const json s = json::parse(read("schemas/config.schema.json"));
  return s;
}

std::set<std::string> as_set(const std::vector<std::string_view>& v) {
  return {v.begin(), v.end()};
}

// "#/$defs/x" -> the schema it points to.
const json& deref(const json& node) {
  if (!node.contains("$ref")) return node;
  const std::string ref = node["$ref"].get<std::string>();
  return schema().at(json::json_pointer(ref.substr(1)));
}

TEST(ConfigSchema, IsDraft2020_12) {
  EXPECT_EQ(schema().at("$schema"), "https://json-schema.org/draft/2020-12/schema");
}

TEST(ConfigSchema, EverySectionHasExactlyTheLoadersKeys) {
  for (const keys::Section& s : keys::sections()) {
    SCOPED_TRACE(std::string(s.name));
    const json& node = schema().at(json::json_pointer(std::string(s.schema_pointer)));
    EXPECT_EQ(node.value("type", ""), "object");
    EXPECT_EQ(node.at("additionalProperties"), false);
    std::set<std::string> props;
    for (const auto& [k, v] : node.at("properties").items()) props.insert(k);
    EXPECT_EQ(props, as_set(s.keys));
    std::set<std::string> required;
    for (const json& r : node.value("required", json::array())) {
      required.insert(r.get<std::string>());
    }
    EXPECT_EQ(required, as_set(s.required));
  }
}

// Every object schema with properties belongs to a section of the table (and so has
// additionalProperties:false): nothing the schema accepts is unknown to the loader.
void walk(const json& node, const json::json_pointer& at, std::set<std::string>& found) {
  if (node.is_object()) {
    if (node.contains("properties")) found.insert(at.to_string());
    for (const auto& [k, v] : node.items()) walk(v, at / k, found);
  } else if (node.is_array()) {
    for (std::size_t i = 0; i < node.size(); ++i) walk(node[i], at / i, found);
  }
}

TEST(ConfigSchema, HasNoObjectTheLoaderDoesNotKnow) {
  std::set<std::string> found, table;
  walk(schema(), json::json_pointer(), found);
  for (const keys::Section& s : keys::sections()) table.insert(std::string(s.schema_pointer));
  EXPECT_EQ(found, table);
}

TEST(ConfigSchema, EnumsMatchTheLoader) {
  for (const keys::EnumSpec* e : keys::enums()) {
    SCOPED_TRACE(std::string(e->schema_pointer));
    const json& node = schema().at(json::json_pointer(std::string(e->schema_pointer)));
    std::vector<std::string> names;
    if (node.is_array()) {  // the broker kinds: one const per alternative
      for (const json& alt : node) {
        names.push_back(deref(alt).at("/properties/kind/const"_json_pointer).get<std::string>());
      }
    } else {
      for (const json& v : node.at("enum")) names.push_back(v.get<std::string>());
    }
    EXPECT_EQ(names, std::vector<std::string>(e->names.begin(), e->names.end()));
  }
}

// Each section has its "### heading" in docs/CONFIG.md with one "| `key` |" row per key.
TEST(ConfigDocs, ReferenceListsEveryKey) {
  const std::string doc = read("docs/CONFIG.md");
  ASSERT_FALSE(doc.empty());
  for (const keys::Section& s : keys::sections()) {
    SCOPED_TRACE(std::string(s.name));
    const std::size_t at = doc.find("\n### " + std::string(s.doc_heading) + "\n");
    ASSERT_NE(at, std::string::npos) << "missing heading: " << s.doc_heading;
    const std::size_t end = doc.find("\n### ", at + 1);
    const std::string body =
        doc.substr(at, end == std::string::npos ? std::string::npos : end - at);
    for (std::string_view k : s.keys) {
      EXPECT_NE(body.find("| `" + std::string(k) + "` |"), std::string::npos) << k;
    }
  }
}

// Every duration and size key has its range in the bounds table, the schema
// (x-minimum / x-maximum) and its docs row ("min..max"), and they agree.
TEST(ConfigSchema, DurationAndSizeBoundsMatchTheLoader) {
  std::set<std::string> bounded;
  for (const keys::ValueBound& b : keys::value_bounds()) {
    const keys::Section& s = keys::section(b.section);
    SCOPED_TRACE(std::string(s.name) + "." + std::string(b.key));
    bounded.insert(std::string(s.schema_pointer) + "/properties/" + std::string(b.key));
    const json& prop = schema().at(
        json::json_pointer(std::string(s.schema_pointer) + "/properties/" + std::string(b.key)));
    EXPECT_EQ(prop.at("$ref"), b.kind == keys::ValueBound::Kind::duration ? "#/$defs/duration"
                                                                          : "#/$defs/size");
    EXPECT_EQ(prop.value("x-minimum", ""), b.min);
    EXPECT_EQ(prop.value("x-maximum", ""), b.max);
    // The limits parse and are ordered; the documented default lies within them.
    if (b.kind == keys::ValueBound::Kind::duration) {
      EXPECT_LE(keys::min_duration(b), keys::max_duration(b));
      if (prop.contains("default")) {
        auto d = parse_duration(prop["default"].get<std::string>());
        ASSERT_TRUE(d);
        EXPECT_GE(d.value(), keys::min_duration(b));
        EXPECT_LE(d.value(), keys::max_duration(b));
      }
    } else {
      EXPECT_LE(keys::min_size(b), keys::max_size(b));
      if (prop.contains("default")) {
        auto v = parse_size(prop["default"].get<std::string>());
        ASSERT_TRUE(v);
        EXPECT_GE(v.value(), keys::min_size(b));
        EXPECT_LE(v.value(), keys::max_size(b));
      }
    }
  }
  // No duration or size key of the schema is left without a range.
  std::set<std::string> typed;
  for (const keys::Section& s : keys::sections()) {
    if (s.schema_pointer.empty()) continue;
    const json& node = schema().at(json::json_pointer(std::string(s.schema_pointer)));
    for (const auto& [k, v] : node.at("properties").items()) {
      const std::string ref = v.value("$ref", "");
      if (ref == "#/$defs/duration" || ref == "#/$defs/size")
        typed.insert(std::string(s.schema_pointer) + "/properties/" + k);
    }
  }
  EXPECT_EQ(typed, bounded);
}

// The schema's "default" of each duration and size key is what the loader uses.
TEST(ConfigSchema, DurationAndSizeDefaultsMatchTheLoader) {
  auto r = load_config_string(
      "http: {}\nfunctions:\n  - { name: f, command: [x], workers: {}, limits: {} }\n", "/srv");
  ASSERT_TRUE(r.config);
  const Config& c = *r.config;
  const FunctionConfig& f = c.functions.at(0);
  const std::map<std::string, uint64_t> loaded = {
      {"http.max_body", c.http.max_body},
      {"http.idle_timeout", static_cast<uint64_t>(c.http.idle_timeout.count())},
      {"http.callback_timeout", static_cast<uint64_t>(c.http.callback_timeout.count())},
      {"engine.drain_timeout", static_cast<uint64_t>(c.engine.drain_timeout.count())},
      {"function.timeout", static_cast<uint64_t>(f.timeout.count())},
      {"function.max_inflight_bytes", f.max_inflight_bytes},
      {"function.start_timeout", static_cast<uint64_t>(f.start_timeout.count())},
      {"workers.idle_after", static_cast<uint64_t>(f.workers.idle_after.count())},
      {"retry.initial", static_cast<uint64_t>(f.retry.initial.count())},
      {"retry.max", static_cast<uint64_t>(f.retry.max.count())},
      {"limits.memory", f.limits.memory},
  };
  for (const keys::ValueBound& b : keys::value_bounds()) {
    const std::string name = std::string(b.section) + "." + std::string(b.key);
    SCOPED_TRACE(name);
    ASSERT_TRUE(loaded.count(name)) << "add the key to this test";
    const keys::Section& s = keys::section(b.section);
    const json& prop = schema().at(
        json::json_pointer(std::string(s.schema_pointer) + "/properties/" + std::string(b.key)));
    if (!prop.contains("default")) {
      EXPECT_EQ(loaded.at(name), 0u) << "no schema default, so the loader's is 0 (not set)";
      continue;
    }
    const std::string def = prop["default"].get<std::string>();
    const uint64_t want = b.kind == keys::ValueBound::Kind::duration
                              ? static_cast<uint64_t>(parse_duration(def).value().count())
                              : parse_size(def).value();
    EXPECT_EQ(loaded.at(name), want) << def;
  }
}

TEST(ConfigDocs, ReferenceStatesEveryRange) {
  const std::string doc = read("docs/CONFIG.md");
  for (const keys::ValueBound& b : keys::value_bounds()) {
    const keys::Section& s = keys::section(b.section);
    SCOPED_TRACE(std::string(s.name) + "." + std::string(b.key));
    const std::size_t at = doc.find("\n### " + std::string(s.doc_heading) + "\n");
    ASSERT_NE(at, std::string::npos);
    const std::size_t row = doc.find("| `" + std::string(b.key) + "` |", at);
    ASSERT_NE(row, std::string::npos);
    const std::string line = doc.substr(row, doc.find('\n', row) - row);
    EXPECT_NE(line.find(std::string(b.min) + ".." + std::string(b.max)), std::string::npos)
        << line;
  }
}

}  // namespace
}  // namespace sluice
