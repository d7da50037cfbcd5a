// The subscription filter dialects (filter/subscription_filter.h) against events; the
// YAML forms and their refusals are in config/tests/filter_config_test.cc.
#include <gtest/gtest.h>

#include "filter/attribute.h"
#include "filter/subscription_filter.h"

namespace sluice::filter {
namespace {

using SF = SubscriptionFilter;

Event order(std::string type, std::string priority = "5") {
  Event e;
  e.id = "id-1";
  e.source = "/orders";
  e.type = std::move(type);
  e.extensions = {{"priority", std::move(priority)}, {"region", "eu-west"}};
  return e;
}

bool pass(const SF& f, const Event& e) { return f.matches(EventView(e)); }

SF sql(std::string_view text) {
  auto c = compile(text);
  EXPECT_TRUE(c) << text;
  return SF::sql(std::move(c).value());
}

TEST(SubscriptionFilter, EmptyPassesEverything) {
  SF none;
  EXPECT_FALSE(none);
  EXPECT_TRUE(pass(none, order("x")));
}

TEST(SubscriptionFilter, ExactNeedsEveryPairToHold) {
  SF f = SF::attributes(Dialect::exact, {{"type", "order.created"}, {"region", "eu-west"}});
  EXPECT_TRUE(f);
  EXPECT_EQ(f.dialect(), Dialect::exact);
  EXPECT_TRUE(pass(f, order("order.created")));
  EXPECT_FALSE(pass(f, order("order.created.v2")));
  EXPECT_FALSE(pass(f, order("Order.Created")));  // case-sensitive
  Event other = order("order.created");
  other.extensions = {{"region", "us-east"}};
  EXPECT_FALSE(pass(f, other));
}

TEST(SubscriptionFilter, PrefixAndSuffix) {
  SF p = SF::attributes(Dialect::prefix, {{"type", "com.example."}});
  SF s = SF::attributes(Dialect::suffix, {{"type", ".created"}});
  EXPECT_TRUE(pass(p, order("com.example.order.created")));
  EXPECT_FALSE(pass(p, order("org.example.order.created")));
  EXPECT_TRUE(pass(s, order("com.example.order.created")));
  EXPECT_FALSE(pass(s, order("com.example.order.deleted")));
  EXPECT_TRUE(pass(SF::attributes(Dialect::prefix, {{"type", "com.example.order.created"}}),
                   order("com.example.order.created")));  // the whole value is a prefix
}

TEST(SubscriptionFilter, MissingAttributeDoesNotMatch) {
  Event e = order("t");
  EXPECT_FALSE(pass(SF::attributes(Dialect::exact, {{"subject", "x"}}), e));  // optional, empty
  EXPECT_FALSE(pass(SF::attributes(Dialect::prefix, {{"tenant", "a"}}), e));  // extension absent
  e.subject = "x";
  EXPECT_TRUE(pass(SF::attributes(Dialect::exact, {{"subject", "x"}}), e));
  // not of a missing attribute: the inner filter does not match, so not does.
  EXPECT_TRUE(pass(SF::negate(SF::attributes(Dialect::exact, {{"tenant", "a"}})), e));
}

TEST(SubscriptionFilter, AllAnyNot) {
  SF created = SF::attributes(Dialect::suffix, {{"type", ".created"}});
  SF urgent = sql("int(priority) > 3");
  SF all = SF::group(Dialect::all, {created, urgent});
  SF any = SF::group(Dialect::any, {created, urgent});
  SF neither = SF::negate(any);
  EXPECT_TRUE(pass(all, order("a.created", "5")));
  EXPECT_FALSE(pass(all, order("a.created", "1")));
  EXPECT_FALSE(pass(all, order("a.deleted", "5")));
  EXPECT_TRUE(pass(any, order("a.deleted", "5")));
  EXPECT_TRUE(pass(any, order("a.created", "1")));
  EXPECT_FALSE(pass(any, order("a.deleted", "1")));
  EXPECT_TRUE(pass(neither, order("a.deleted", "1")));
  EXPECT_FALSE(pass(neither, order("a.created", "1")));
}

TEST(SubscriptionFilter, SqlErrorsDoNotMatch) {
  EXPECT_TRUE(pass(sql("type LIKE 'com.%' AND int(priority) > 3"), order("com.x", "4")));
  EXPECT_FALSE(pass(sql("int(priority) > 3"), order("com.x", "high")));  // cast error
  EXPECT_FALSE(pass(sql("tenant = 'a'"), order("com.x")));               // missingAttribute
  EXPECT_FALSE(pass(sql("10 / (int(priority) - 5) = 1"), order("com.x", "5")));  // math
  EXPECT_FALSE(pass(sql("'x'"), order("com.x")));  // not a Boolean
  // not of a failing expression: the inner filter does not match.
  EXPECT_TRUE(pass(SF::negate(sql("int(priority) > 3")), order("com.x", "high")));
}

TEST(SubscriptionFilter, EqualityComparesTheTree) {
  auto make = [] {
    return SF::group(Dialect::any, {SF::attributes(Dialect::exact, {{"type", "a"}}),
                                    sql("type = 'b'")});
  };
  EXPECT_EQ(make(), make());
  EXPECT_EQ(SF(), SF());
  EXPECT_NE(make(), SF());
  EXPECT_NE(SF::attributes(Dialect::exact, {{"type", "a"}}),
            SF::attributes(Dialect::prefix, {{"type", "a"}}));
  EXPECT_NE(sql("type = 'a'"), sql("type = 'b'"));
  SF copy = make();
  SF same = copy;  // a copy shares the tree
  EXPECT_EQ(copy, same);
}

TEST(SubscriptionFilter, AttributeNames) {
  EXPECT_TRUE(valid_attribute_name("type"));
  EXPECT_TRUE(valid_attribute_name("x1"));
  EXPECT_FALSE(valid_attribute_name(""));
  EXPECT_FALSE(valid_attribute_name("Type"));
  EXPECT_FALSE(valid_attribute_name("my-ext"));
  EXPECT_FALSE(valid_attribute_name(std::string(kMaxAttributeNameBytes + 1, 'a')));
  EXPECT_TRUE(valid_attribute_name(std::string(kMaxAttributeNameBytes, 'a')));
}

TEST(SubscriptionFilter, DialectNames) {
  EXPECT_STREQ(to_string(Dialect::not_), "not");
  EXPECT_STREQ(to_string(Dialect::sql), "sql");
}

}  // namespace
}  // namespace sluice::filter
