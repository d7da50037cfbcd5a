// The key table (config_keys.cc) is complete, its defaults are the loader's, and
// schemas/config.schema.json and docs/CONFIG.md are what it generates.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

#include "config/config.h"
#include "config/config_doc.h"
#include "config/config_keys.h"
#include "config/tests/test_util.h"

namespace sluice::config::testing {
namespace {

using nlohmann::json;

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
  for (const config::Section& s : config::sections()) {
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
  for (const config::Section& s : config::sections()) table.insert(std::string(s.schema_pointer));
  EXPECT_EQ(found, table);
}

TEST(ConfigSchema, EnumsMatchTheLoader) {
  for (const config::EnumSpec* e : config::enums()) {
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
  for (const config::Section& s : config::sections()) {
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

// The committed docs/CONFIG.md key tables and schema properties are what the key table
// generates: a key added, changed or removed in config_keys.cc without regenerating
// (`build/config/sluice-config-doc .`) fails here.
TEST(ConfigDocs, CommittedFilesAreGenerated) {
  for (const auto& [rel, render] :
       std::vector<std::pair<std::string, Result<std::string> (*)(std::string_view)>>{
           {"docs/CONFIG.md", config::render_config_md},
           {"schemas/config.schema.json", config::render_schema}}) {
    SCOPED_TRACE(rel);
    const std::string committed = read(rel);
    ASSERT_FALSE(committed.empty());
    auto generated = render(committed);
    ASSERT_TRUE(generated) << generated.error().message;
    EXPECT_TRUE(generated.value() == committed)
        << rel << " is stale: run build/config/sluice-config-doc " << SLUICE_SOURCE_DIR;
  }
}

TEST(ConfigDocs, GeneratorReplacesStaleTablesAndRefusesMissingMarkers) {
  const std::string doc = read("docs/CONFIG.md");
  std::string stale = doc;
  const std::string row = "| `drain_timeout` | duration 0s..24h | `30s` |";
  const std::size_t at = stale.find(row);
  ASSERT_NE(at, std::string::npos);
  stale.replace(at, row.size(), "| `drain_timeout` | duration 0s..1h | `5s` |");
  auto fixed = config::render_config_md(stale);
  ASSERT_TRUE(fixed);
  EXPECT_TRUE(fixed.value() == doc);

  std::string unmarked = doc;
  unmarked.erase(unmarked.find("<!-- keys: engine -->"), 21);
  auto r = config::render_config_md(unmarked);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("engine"), std::string::npos) << r.error().message;
  EXPECT_FALSE(config::render_schema("{ not json"));
}

// What each entry of the table must hold for its type; the limits parse and are ordered,
// and the default lies within them.
TEST(ConfigKeys, EveryEntryIsComplete) {
  std::set<std::string> sections, seen;
  for (const config::Section& s : config::sections()) sections.insert(std::string(s.name));
  for (const config::Key& k : config::keys()) {
    const std::string name = std::string(k.section) + "." + std::string(k.name);
    SCOPED_TRACE(name);
    EXPECT_TRUE(sections.count(std::string(k.section))) << "unknown section";
    EXPECT_TRUE(seen.insert(name).second) << "declared twice";
    EXPECT_FALSE(k.doc.empty()) << "no doc";
    EXPECT_FALSE(k.required && !k.def.empty()) << "a required key has no default";
    const bool ranged = k.type == config::Type::integer || k.type == config::Type::duration ||
                        k.type == config::Type::size || k.type == config::Type::number;
    EXPECT_EQ(!k.min.empty(), ranged) << "min is for integers, durations and sizes only";
    if (k.type == config::Type::duration) {
      EXPECT_LE(config::min_duration(k), config::max_duration(k));
      if (!k.def.empty()) {
        auto d = parse_duration(k.def);
        ASSERT_TRUE(d);
        EXPECT_GE(d.value(), config::min_duration(k));
        EXPECT_LE(d.value(), config::max_duration(k));
      }
    } else if (k.type == config::Type::size) {
      EXPECT_LE(config::min_size(k), config::max_size(k));
      if (!k.def.empty()) {
        auto v = parse_size(k.def);
        ASSERT_TRUE(v);
        EXPECT_GE(v.value(), config::min_size(k));
        EXPECT_LE(v.value(), config::max_size(k));
      }
    } else if (k.type == config::Type::integer) {
      EXPECT_LE(config::min_integer(k), config::max_integer(k));
      if (!k.def.empty()) {
        const uint64_t v = std::stoull(std::string(k.def));
        EXPECT_GE(v, config::min_integer(k));
        EXPECT_LE(v, config::max_integer(k));
      }
    }
    if (k.type == config::Type::number) {
      EXPECT_GT(config::min_number(k), 0);
      EXPECT_LE(config::min_number(k), config::max_number(k));
    }
    EXPECT_EQ(k.values != nullptr, k.type == config::Type::enumeration);
    if (k.values && !k.def.empty()) {
      EXPECT_NE(std::find(k.values->names.begin(), k.values->names.end(), k.def),
                k.values->names.end())
          << "default not among the values";
    }
    if (k.type == config::Type::kind) {
      EXPECT_NE(std::find(config::kKind.names.begin(), config::kKind.names.end(), k.of),
                config::kKind.names.end());
    }
    if (k.type == config::Type::section || k.type == config::Type::section_list) {
      EXPECT_TRUE(sections.count(std::string(k.of))) << "no section " << k.of;
    }
  }
}

// Every default in the table is what the loader fills in: a config that leaves every key
// out and one that writes every table default explicitly load to the same Config.
TEST(ConfigKeys, EveryDefaultIsTheLoaders) {
  const char* base = R"(brokers:
  l: { kind: local }
  k: { kind: kafka, bootstrap: "h:1" }
  n: { kind: nats, jetstream: { stream: S, subjects: [t] } }
http: { auth: {} }
metrics: { auth: {} }
engine: {}
functions:
  - { name: f, command: [x], workers: {}, limits: {}, retry: {}, subscribe: [{ topic: t }],
      dead_letter: { topic: d }, output: { topic: o }, rate_limit: { per_second: 5 } }
)";
  YAML::Node full = YAML::Load(base);
  // Where each section is in `base` (a new section needs a place here).
  const std::map<std::string, std::vector<std::string>> where = {
      {"root", {}},
      {"broker_local", {"brokers", "l"}},
      {"broker_kafka", {"brokers", "k"}},
      {"broker_nats", {"brokers", "n"}},
      {"jetstream", {"brokers", "n", "jetstream"}},
      {"http", {"http"}},
      {"http_auth", {"http", "auth"}},
      {"metrics", {"metrics"}},
      {"metrics_auth", {"metrics", "auth"}},
      {"engine", {"engine"}},
      {"function", {"functions", "0"}},
      {"workers", {"functions", "0", "workers"}},
      {"limits", {"functions", "0", "limits"}},
      {"subscription", {"functions", "0", "subscribe", "0"}},
      {"retry", {"functions", "0", "retry"}},
      {"rate_limit", {"functions", "0", "rate_limit"}},
      {"target", {"functions", "0", "dead_letter"}},
      {"output", {"functions", "0", "output"}},
  };
  int written = 0;
  for (const config::Key& k : config::keys()) {
    SCOPED_TRACE(std::string(k.section) + "." + std::string(k.name));
    ASSERT_TRUE(where.count(std::string(k.section))) << "add the section to this test";
    if (k.def.empty()) continue;
    YAML::Node node = full;
    for (const std::string& step : where.at(std::string(k.section))) {
      node.reset(node.IsSequence() ? node[std::stoul(step)] : node[step]);
    }
    node[std::string(k.name)] = YAML::Load(std::string(k.def));
    ++written;
  }
  EXPECT_GT(written, 30);
  auto left_out = load_config_string(base, "/srv");
  ASSERT_TRUE(left_out.config) << testing::dump(left_out);
  const std::string full_text = YAML::Dump(full);
  auto explicit_defaults = load_config_string(full_text, "/srv");
  ASSERT_TRUE(explicit_defaults.config) << testing::dump(explicit_defaults) << full_text;
  Config a = *left_out.config, b = *explicit_defaults.config;
  EXPECT_TRUE(a.brokers == b.brokers);
  EXPECT_TRUE(a.http == b.http);
  EXPECT_TRUE(a.metrics == b.metrics);
  EXPECT_TRUE(a.engine == b.engine);
  EXPECT_TRUE(a.functions == b.functions);
  EXPECT_TRUE(a == b) << full_text;
}

}  // namespace
}  // namespace sluice::config::testing
