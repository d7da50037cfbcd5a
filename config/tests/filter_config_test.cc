// functions[].subscribe[].filter: the dialects as YAML, and every bad form refused with
// its field path, line and (for SQL) the column in the expression.
#include <gtest/gtest.h>

#include <string>

#include "config/config.h"
#include "config/tests/test_util.h"

namespace sluice::config::testing {
namespace {

using filter::Dialect;
using filter::EventView;

// A config with one function whose first subscription has `filter_yaml` (the text after
// "filter:", on line 6).
LoadResult with_filter(const std::string& filter_yaml) {
  return load("functions:\n"
              "  - name: f\n"
              "    command: [x]\n"
              "    subscribe:\n"
              "      - topic: t\n"
              "        filter: " + filter_yaml + "\n");
}

const filter::SubscriptionFilter& filter_of(const LoadResult& r) {
  return r.config->functions.at(0).subscribe.at(0).filter;
}

Event ev(std::string type, std::string priority = "1") {
  Event e;
  e.id = "1";
  e.source = "/s";
  e.type = std::move(type);
  e.extensions = {{"priority", std::move(priority)}};
  return e;
}

TEST(ConfigFilter, AbsentMeansEveryEvent) {
  auto r = load("functions: [{ name: f, command: [x], subscribe: [{ topic: t }] }]\n");
  ASSERT_TRUE(r.config) << dump(r);
  EXPECT_FALSE(filter_of(r));
}

TEST(ConfigFilter, EachDialectLoadsAndMatches) {
  struct Case {
    std::string yaml;
    Dialect dialect;
    bool created_5, deleted_1;
  };
  const Case cases[] = {
      {"{ exact: { type: order.created } }", Dialect::exact, true, false},
      {"{ prefix: { type: order.c } }", Dialect::prefix, true, false},
      {"{ suffix: { type: .deleted } }", Dialect::suffix, false, true},
      {"{ all: [{ prefix: { type: order. } }, { exact: { priority: 5 } }] }", Dialect::all, true,
       false},
      {"{ any: [{ exact: { type: order.deleted } }, { sql: \"int(priority) > 3\" }] }",
       Dialect::any, true, true},
      {"{ not: { exact: { type: order.created } } }", Dialect::not_, false, true},
      {"{ sql: \"type LIKE 'order.%' AND int(priority) > 3\" }", Dialect::sql, true, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.yaml);
    auto r = with_filter(c.yaml);
    ASSERT_TRUE(r.config) << dump(r);
    const auto& f = filter_of(r);
    ASSERT_TRUE(f);
    EXPECT_EQ(f.dialect(), c.dialect);
    EXPECT_EQ(f.matches(EventView(ev("order.created", "5"))), c.created_5);
    EXPECT_EQ(f.matches(EventView(ev("order.deleted", "1"))), c.deleted_1);
  }
}

TEST(ConfigFilter, BlockFormAndTheSameFilterTwiceCompareEqual) {
  const std::string yaml = R"(functions:
  - name: f
    command: [x]
    subscribe:
      - topic: t
        filter:
          all:
            - prefix: { type: "com.example." }
            - not:
                sql: "subject = 'test'"
)";
  auto a = load(yaml);
  auto b = load(yaml);
  ASSERT_TRUE(a.config) << dump(a);
  EXPECT_EQ(*a.config, *b.config);  // compiled twice, the same tree
  Event e = ev("com.example.x");
  EXPECT_TRUE(filter_of(a).matches(EventView(e)));
  e.subject = "test";
  EXPECT_FALSE(filter_of(a).matches(EventView(e)));
}

TEST(ConfigFilter, BadSqlNamesLineAndColumn) {
  auto r = with_filter("{ sql: \"type = 'a' AND\" }");
  EXPECT_CONFIG_ERROR(r, "functions[0].subscribe[0].filter.sql", 6, "column ");
  const ConfigError* e = find_error(r, "functions[0].subscribe[0].filter.sql");
  ASSERT_NE(e, nullptr);
  EXPECT_NE(e->to_string().find("<config>:6: functions[0].subscribe[0].filter.sql: column "),
            std::string::npos)
      << e->to_string();
  auto deep = load(R"(functions:
  - name: f
    command: [x]
    subscribe:
      - topic: t
        filter:
          any:
            - exact: { type: a }
            - sql: "type = 'b' OR int(priority) >"
)");
  EXPECT_CONFIG_ERROR(deep, "functions[0].subscribe[0].filter.any[1].sql", 9, "column 30");
}

TEST(ConfigFilter, UnknownFunctionIsRefused) {
  auto r = with_filter("{ sql: \"lenght(type) > 3\" }");
  EXPECT_CONFIG_ERROR(r, "functions[0].subscribe[0].filter.sql", 6, "column 1: unknown function");
  auto arity = with_filter("{ sql: \"type = 'a' OR abs(1, 2) = 1\" }");
  EXPECT_CONFIG_ERROR(arity, "functions[0].subscribe[0].filter.sql", 6, "column 15");
}

TEST(ConfigFilter, BadFormsAreRefused) {
  struct Case {
    std::string yaml, path, text;
  };
  const std::string at = "functions[0].subscribe[0].filter";
  const Case cases[] = {
      {"{ regex: { type: a } }", at + ".regex", "unknown filter dialect \"regex\""},
      {"{ exakt: { type: a } }", at + ".exakt", "did you mean \"exact\"?"},
      {"{}", at, "expected a filter: a map of one dialect"},
      {"type = 'a'", at, "expected a filter: a map of one dialect"},
      {"{ exact: { type: a }, prefix: { type: b } }", at, "a filter has one dialect, got 2"},
      {"{ exact: {} }", at + ".exact", "expected a map of attribute: value (at least one)"},
      {"{ prefix: [type] }", at + ".prefix", "expected a map of attribute: value"},
      {"{ exact: { type: [a, b] } }", at + ".exact.type", "expected a string value, got a list"},
      {"{ exact: { type: { x: 1 } } }", at + ".exact.type", "expected a string value, got a map"},
      {"{ suffix: { type: \"\" } }", at + ".suffix.type", "must not be empty"},
      {"{ exact: { Type: a } }", at + ".exact.Type", "not a CloudEvents attribute name"},
      {"{ exact: { my-ext: a } }", at + ".exact.my-ext", "not a CloudEvents attribute name"},
      {"{ all: [] }", at + ".all", "expected a list of filters (at least one)"},
      {"{ any: { exact: { type: a } } }", at + ".any", "expected a list of filters"},
      {"{ all: [{ exact: { type: a } }, { nope: 1 }] }", at + ".all[1].nope",
       "unknown filter dialect"},
      {"{ not: [] }", at + ".not", "expected a filter"},
      {"{ sql: \"\" }", at + ".sql", "must not be empty"},
      {"{ sql: [a] }", at + ".sql", "expected a string"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.yaml);
    auto r = with_filter(c.yaml);
    EXPECT_CONFIG_ERROR(r, c.path, 6, c.text);
  }
}

TEST(ConfigFilter, DepthAndSizeAreBounded) {
  // 16 levels of `not` load; 17 do not.
  auto nested = [](int levels) {
    std::string y;
    for (int i = 0; i < levels - 1; ++i) y += "{ not: ";
    y += "{ exact: { type: a } }";
    for (int i = 0; i < levels - 1; ++i) y += " }";
    return y;
  };
  auto ok = with_filter(nested(filter::kMaxFilterDepth));
  EXPECT_TRUE(ok.config) << dump(ok);
  auto deep = with_filter(nested(filter::kMaxFilterDepth + 1));
  ASSERT_FALSE(deep.config);
  ASSERT_EQ(deep.errors.size(), 1u) << dump(deep);
  EXPECT_NE(deep.errors[0].message.find("nest deeper than 16 levels"), std::string::npos)
      << dump(deep);

  std::string many = "{ any: [";
  for (size_t i = 0; i < filter::kMaxFilterNodes; ++i)
    many += (i ? ", " : "") + std::string("{ exact: { type: t") + std::to_string(i) + " } }";
  many += "] }";
  auto big = with_filter(many);
  ASSERT_FALSE(big.config);
  ASSERT_EQ(big.errors.size(), 1u) << dump(big);  // reported once
  EXPECT_NE(big.errors[0].message.find("more than 256 dialects and attributes"),
            std::string::npos)
      << dump(big);

  auto long_value =
      with_filter("{ exact: { type: " + std::string(filter::kMaxAttributeValueBytes + 1, 'a') + " } }");
  EXPECT_CONFIG_ERROR(long_value, "functions[0].subscribe[0].filter.exact.type", 6,
                      "longer than 4096 bytes");
}

}  // namespace
}  // namespace sluice::config::testing
