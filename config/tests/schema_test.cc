// The loader's key table, schemas/config.schema.json and docs/CONFIG.md must agree.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

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

}  // namespace
}  // namespace sluice
