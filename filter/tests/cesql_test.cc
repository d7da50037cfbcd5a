// CESQL unit tests: grammar, precedence, casts, functions, each error kind, bounds.
// The specification's own cases are in tck_test.cc.
#include <gtest/gtest.h>

#include <string>

#include "filter/cesql.h"
#include "filter/cesql_eval.h"
#include "filter/cesql_like.h"

#include <memory>
#include <random>

// alloc_counter.cc: operator new calls of this test binary so far.
long allocation_count();

namespace sluice::filter {
namespace {

Event sample() {
  Event e;
  e.id = "abc-1";
  e.source = "/orders";
  e.type = "com.example.order.created";
  e.subject = "order/42";
  e.extensions = {{"priority", "5"}, {"flag", "true"}, {"region", "eu-west"}, {"empty", ""}};
  return e;
}

struct Got {
  Value result;
  std::optional<ErrorKind> error;
};

Got eval(std::string_view text, const Event& e = sample()) {
  auto c = compile(text);
  if (!c) {
    ADD_FAILURE() << "parse error for " << text << ": " << c.error().message << " at "
                  << c.error().column;
    return {Value(), ErrorKind::parse};
  }
  Evaluation r = c.value().evaluate(EventView(e));
  Value v = r.result.detached();
  return {v, r.error};
}

ParseError parse_error(std::string_view text) {
  auto c = compile(text);
  if (c) {
    ADD_FAILURE() << "expected a parse error for: " << text;
    return {};
  }
  return c.error();
}

void expect_bool(std::string_view text, bool want, std::optional<ErrorKind> err = std::nullopt) {
  Got g = eval(text);
  EXPECT_EQ(g.result.type(), Type::boolean) << text;
  EXPECT_EQ(g.result.as_bool(), want) << text;
  EXPECT_EQ(g.error, err) << text;
}
void expect_int(std::string_view text, int32_t want, std::optional<ErrorKind> err = std::nullopt) {
  Got g = eval(text);
  EXPECT_EQ(g.result.type(), Type::integer) << text;
  EXPECT_EQ(g.result.as_int(), want) << text;
  EXPECT_EQ(g.error, err) << text;
}
void expect_str(std::string_view text, std::string_view want,
                std::optional<ErrorKind> err = std::nullopt) {
  Got g = eval(text);
  EXPECT_EQ(g.result.type(), Type::string) << text;
  EXPECT_EQ(g.result.as_string(), want) << text;
  EXPECT_EQ(g.error, err) << text;
}

TEST(Cesql, AttributesResolveToContextAndExtensions) {
  expect_str("id", "abc-1");
  expect_str("type", "com.example.order.created");
  expect_str("specversion", "1.0");
  expect_str("region", "eu-west");
  expect_str("empty", "");  // an empty extension is a value
  expect_bool("EXISTS subject", true);
  expect_bool("EXISTS time", false);
  expect_bool("EXISTS empty", true);
  expect_bool("EXISTS nope", false);
  Event bare;
  bare.id.clear();
  EXPECT_TRUE(compile("EXISTS id").value().matches(EventView(bare)));  // required: always
}

TEST(Cesql, KeywordsAndFunctionsAreCaseInsensitive) {
  expect_bool("type like 'com.%' and not (priority = '6')", true);
  expect_int("lEnGtH('ab')", 2);
  expect_bool("TRUE = true AND False = false", true);
}

TEST(Cesql, MissingAttributeGivesTheZeroOfTheReturnType) {
  expect_bool("nope", false, ErrorKind::missing_attribute);
  expect_int("nope * 5", 0, ErrorKind::missing_attribute);
  expect_int("1 / nope", 0, ErrorKind::missing_attribute);
  expect_str("LOWER(nope)", "", ErrorKind::missing_attribute);
  expect_bool("true AND (nope = '')", false, ErrorKind::missing_attribute);
  expect_bool("nope IN ('a')", false, ErrorKind::missing_attribute);
}

TEST(Cesql, ErrorsStopTheEvaluation) {
  expect_int("1 + 5 / 0", 0, ErrorKind::math);
  expect_int("LENGTH(STRING(1 / 0))", 0, ErrorKind::math);
  expect_bool("1 / 0 = 0 OR true", false, ErrorKind::math);
  expect_bool("INT('x') = 0", false, ErrorKind::cast);
  expect_bool("NOPE(1) OR true", false, ErrorKind::missing_function);
  expect_str("CONCAT(LEFT('abc', -1), 'x')", "", ErrorKind::function_evaluation);
}

TEST(Cesql, Precedence) {
  expect_int("2 + 3 * 4", 14);
  expect_int("(2 + 3) * 4", 20);
  expect_int("10 - 4 - 3", 3);   // left to right
  expect_int("100 / 10 / 5", 2);
  expect_bool("1 + 1 = 2", true);
  expect_bool("NOT true = false", true);       // (NOT true) = false
  expect_bool("NOT region IN ('eu-west')", false, ErrorKind::cast);  // (NOT region) IN ...
  expect_bool("NOT (region IN ('eu-west'))", false);
  expect_bool("region NOT IN ('eu-west')", false);
  expect_bool("type LIKE 'com.%' = true", true);  // (type LIKE ...) = true
  expect_int("1 + 2 IN (3)", 1);                // 1 + (2 IN (3)): IN binds tighter than +
  expect_bool("false OR true AND false", false);  // same precedence, left to right
  expect_bool("true XOR true XOR true", true);
  expect_int("-2 * 3", -6);
  expect_int("4-1", 3);
  expect_int("3 * -2", -6);
  expect_int("- 5", -5);
  expect_int("+5", 5);
}

TEST(Cesql, IntegerArithmeticIs32Bit) {
  expect_int("2147483647", 2147483647);
  expect_int("-2147483648", INT32_MIN);
  expect_int("2147483647 + 1", 0, ErrorKind::math);
  expect_int("-2147483648 - 1", 0, ErrorKind::math);
  expect_int("65536 * 65536", 0, ErrorKind::math);
  expect_int("-2147483648 / -1", 0, ErrorKind::math);
  expect_int("-2147483648 % -1", 0);
  expect_int("-(-2147483648)", INT32_MAX, ErrorKind::math);
  expect_int("-7 / 2", -3);
  expect_int("-7 % 2", -1);
  expect_int("7 % -2", 1);
  expect_int("'2147483648' + 0", 0, ErrorKind::cast);
}

TEST(Cesql, ImplicitCasts) {
  expect_bool("priority = 5", true);        // right side Integer: left cast to Integer
  expect_bool("5 = priority", true);        // right side String: 5 becomes '5'
  expect_bool("priority > 3", true);
  expect_bool("flag = true", true);
  expect_str("flag", "true");              // extensions are Strings
  expect_bool("region = 1", false, ErrorKind::cast);
  expect_bool("NOT 0", true);
  expect_bool("NOT 'yes'", false, ErrorKind::cast);
  expect_int("'+7' + 0", 7);
  expect_int("' 7' + 0", 0, ErrorKind::cast);
  expect_int("'' + 0", 0, ErrorKind::cast);
  expect_bool("'TrUe' AND true", true);
}

TEST(Cesql, InOperator) {
  expect_bool("region IN ('us-east', 'eu-west')", true);
  expect_bool("region NOT IN ('us-east', 'eu-west')", false);
  expect_bool("priority IN (1, 5)", true);       // left String: 1 and 5 become '1', '5'
  expect_bool("priority IN (1, 50)", false);
  expect_bool("priority IN ('05')", false);       // compared as Strings
  expect_bool("INT(priority) IN (1, 5)", true);
  expect_bool("INT(priority) IN ('x')", false, ErrorKind::cast);
  expect_bool("5 IN (5, 1 / 0)", true);         // stops at the first match
  expect_bool("5 IN (1 / 0, 5)", false, ErrorKind::math);
}

TEST(Cesql, Like) {
  expect_bool("type LIKE 'com.example.%'", true);
  expect_bool("type LIKE '%.created'", true);
  expect_bool("type LIKE '%order%'", true);
  expect_bool("type LIKE 'com._xample%'", true);
  expect_bool("subject LIKE 'order/__'", true);
  expect_bool("subject LIKE 'order/_'", false);
  expect_bool("'aaa' LIKE 'a%a%a'", true);
  expect_bool("'aa' LIKE 'a%a%a'", false);
  expect_bool("'100%' LIKE '100\\%'", true);
  expect_bool("'1000' LIKE '100\\%'", false);
  expect_bool("'a\\b' LIKE 'a\\\\b'", true);
  expect_bool("'é' LIKE '_'", true);           // one character, two bytes
  expect_bool("'xé' LIKE '%_'", true);
  expect_bool("'' LIKE '%'", true);
  expect_bool("'' LIKE '%%'", true);
  expect_bool("'' LIKE '_'", false);
  expect_bool("'abc' LIKE 'abc%'", true);
  expect_bool("'abcabc' LIKE '%bc%bc'", true);
  expect_bool("'abcab' LIKE '%bc%bc'", false);
  expect_bool("123 LIKE '1%'", true);
}

// The obvious backtracking matcher (ASCII, no escapes), to check the segment matcher.
bool reference_like(std::string_view t, std::string_view p) {
  if (p.empty()) return t.empty();
  if (p[0] == '%')
    return reference_like(t, p.substr(1)) || (!t.empty() && reference_like(t.substr(1), p));
  if (t.empty()) return false;
  return (p[0] == '_' || p[0] == t[0]) && reference_like(t.substr(1), p.substr(1));
}

TEST(Cesql, LikeAgreesWithABacktrackingMatcher) {
  std::mt19937 rng(20);
  auto random_text = [&](const char* alphabet, size_t n, size_t max_len) {
    std::string s(rng() % (max_len + 1), ' ');
    for (auto& c : s) c = alphabet[rng() % n];
    return s;
  };
  for (int i = 0; i < 20000; ++i) {
    const std::string pattern = random_text("ab%_", 4, 7);
    const std::string text = random_text("ab", 2, 9);
    EXPECT_EQ(detail::LikePattern(pattern).matches(text), reference_like(text, pattern))
        << "'" << text << "' LIKE '" << pattern << "'";
  }
}

TEST(Cesql, StringFunctionsCountCharacters) {
  expect_int("LENGTH('héllo')", 5);
  expect_str("LEFT('héllo', 2)", "hé");
  expect_str("RIGHT('héllo', 4)", "éllo");
  expect_str("SUBSTRING('héllo', 2, 2)", "él");
  expect_str("SUBSTRING('héllo', -4)", "éllo");
  expect_str("SUBSTRING('abc', 1, -1)", "", ErrorKind::function_evaluation);
  expect_str("SUBSTRING('abc', 4)", "", ErrorKind::function_evaluation);
  expect_str("SUBSTRING('abc', 3)", "c");
  expect_str("SUBSTRING('abc', -3)", "abc");
  expect_str("SUBSTRING('abc', 2, 100)", "bc");
  expect_str("TRIM('\t x \n')", "x");
  expect_str("TRIM('\u00a0x\u3000')", "x");  // Unicode white space
  expect_str("UPPER(CONCAT_WS('-', region, 'x', 1))", "EU-WEST-X-1");
  expect_str("LEFT(CONCAT('abc', 'def'), 4)", "abcd");
  expect_str("RIGHT(CONCAT('abc', 'def'), 2)", "ef");
  expect_str("TRIM(CONCAT(' a', ' '))", "a");
  expect_str("STRING(-12)", "-12");
  expect_bool("IS_INT('-12')", true);
  expect_bool("IS_INT('1.5')", false);
  expect_bool("IS_BOOL('FALSE')", true);
  expect_bool("IS_BOOL(1)", false);
  expect_int("ABS(-3)", 3);
}

TEST(Cesql, MissingFunctionIsAnEvaluationError) {
  expect_bool("NOPE()", false, ErrorKind::missing_function);
  expect_bool("ABS(1, 2)", false, ErrorKind::missing_function);       // wrong arity
  expect_bool("SUBSTRING('a')", false, ErrorKind::missing_function);
  expect_bool("LENGTH()", false, ErrorKind::missing_function);
  expect_bool("abs(-1) = 1", true);
  auto c = compile("ABS(1) + ABS(1, 2) + NOPE() + length('x')").value();
  ASSERT_EQ(c.unknown_functions().size(), 2u);
  EXPECT_EQ(c.unknown_functions()[0].message, "function ABS does not take 2 arguments");
  EXPECT_EQ(c.unknown_functions()[0].column, 10u);
  EXPECT_EQ(c.unknown_functions()[1].message, "unknown function NOPE (with 0 arguments)");
  EXPECT_EQ(c.unknown_functions()[1].column, 22u);
  EXPECT_TRUE(compile("CONCAT()").value().unknown_functions().empty());
}

TEST(Cesql, StringLiterals) {
  expect_str("'it''s'", "it's");
  expect_str("\"say \"\"hi\"\"\"", "say \"hi\"");
  expect_str("'it\\'s'", "it's");
  expect_str("'a\\nb'", "a\\nb");  // no other escapes: the backslash stays
  expect_str("'\\\\'", "\\\\");
  expect_str("''", "");
}

TEST(Cesql, ParseErrorsNameTheColumn) {
  auto e = parse_error("type = 'abc");
  EXPECT_EQ(e.column, 8u);
  EXPECT_NE(e.message.find("unterminated"), std::string::npos);
  EXPECT_EQ(parse_error("type = \"abc\\\"").column, 8u);
  EXPECT_EQ(parse_error("type ==").column, 7u);
  EXPECT_EQ(parse_error("(1 + 2").column, 7u);
  EXPECT_EQ(parse_error("1 + 2)").column, 6u);
  EXPECT_EQ(parse_error("").column, 1u);
  EXPECT_EQ(parse_error("   ").column, 4u);
  EXPECT_EQ(parse_error("type LIKE region").column, 11u);  // the pattern must be a literal
  EXPECT_EQ(parse_error("type LIKE 'a' || 'b'").column, 15u);
  EXPECT_EQ(parse_error("x IN ()").column, 7u);
  EXPECT_EQ(parse_error("x IN 'a'").column, 6u);
  EXPECT_EQ(parse_error("EXISTS 'id'").column, 8u);
  EXPECT_EQ(parse_error("EXISTS LENGTH(id)").column, 8u);
  EXPECT_EQ(parse_error("Type = 'x'").column, 1u);     // attribute names are lower case
  EXPECT_EQ(parse_error("my_ext = 'x'").column, 1u);
  EXPECT_EQ(parse_error("LEN2(x)").column, 1u);        // function names have no digits
  EXPECT_EQ(parse_error("_f(x)").column, 1u);
  EXPECT_EQ(parse_error("id = 1 # comment").column, 8u);
  EXPECT_EQ(parse_error("NOT").column, 4u);
  EXPECT_EQ(parse_error("1 2").column, 3u);
  EXPECT_EQ(parse_error("f(1,)").column, 5u);
  EXPECT_EQ(parse_error("a NOT b").column, 3u);
  EXPECT_EQ(parse_error("-1a").column, 1u);
}

TEST(Cesql, HugeIntegersAreParseErrors) {
  EXPECT_EQ(parse_error("2147483648").column, 1u);
  EXPECT_EQ(parse_error("x = -2147483649").column, 5u);
  EXPECT_EQ(parse_error("99999999999999999999999999999").column, 1u);
  EXPECT_EQ(parse_error("- 2147483648").column, 3u);  // the literal, not the negation
}

TEST(Cesql, InputAndNestingAreBounded) {
  std::string deep(kMaxDepth + 1, '(');
  deep += "1";
  deep += std::string(kMaxDepth + 1, ')');
  EXPECT_NE(parse_error(deep).message.find("nested deeper"), std::string::npos);
  std::string nots;
  for (int i = 0; i < kMaxDepth + 1; ++i) nots += "NOT ";
  EXPECT_NE(parse_error(nots + "true").message.find("nested deeper"), std::string::npos);
  std::string chain = "1";
  for (int i = 0; i < kMaxDepth + 1; ++i) chain += " + 1";
  EXPECT_NE(parse_error(chain).message.find("nested deeper"), std::string::npos);
  std::string calls;
  for (int i = 0; i < kMaxDepth + 1; ++i) calls += "ABS(";
  calls += "1" + std::string(kMaxDepth + 1, ')');
  EXPECT_NE(parse_error(calls).message.find("nested deeper"), std::string::npos);
  // A million opening parentheses: refused by length, no recursion.
  EXPECT_NE(parse_error(std::string(1'000'000, '(')).message.find("longer than"),
            std::string::npos);
  // Just inside the bounds compiles.
  std::string ok = "1";
  for (int i = 0; i < kMaxDepth - 2; ++i) ok += " + 1";
  expect_int(ok, kMaxDepth - 1);
  std::string longest = "'" + std::string(kMaxExpressionBytes - 2, 'x') + "'";
  EXPECT_TRUE(compile(longest));
}

TEST(Cesql, ConcatIsBounded) {
  Event e = sample();
  e.subject = std::string(kMaxConcatBytes / 2, 'x');
  const std::string two = "LENGTH(CONCAT(subject, subject))";
  Got ok = eval(two, e);
  EXPECT_EQ(ok.result.as_int(), static_cast<int32_t>(kMaxConcatBytes));
  EXPECT_EQ(ok.error, std::nullopt);
  Got big = eval("CONCAT(subject, subject, 'x')", e);
  EXPECT_EQ(big.result.as_string(), "");
  EXPECT_EQ(big.error, ErrorKind::function_evaluation);
  Got ws = eval("CONCAT_WS(subject, 'a', 'b', 'c')", e);
  EXPECT_EQ(ws.error, ErrorKind::function_evaluation);
}

TEST(Cesql, TypicalFiltersEvaluateWithoutAllocating) {
  const Event e = sample();
  const EventView view(e);
  for (const char* text : {
           "type LIKE 'com.example.%' AND int(priority) > 3",
           "region IN ('us-east', 'eu-west') OR subject LIKE '%/42'",
           "priority = 5 AND 5 = priority AND flag = TRUE AND NOT (source = '/x')",
           "EXISTS subject AND LENGTH(subject) < 100 AND SUBSTRING(type, 1, 3) = 'com'",
           "nope = 1",  // an error: still no allocation
       }) {
    Expression x = compile(text).value();
    const long before = allocation_count();
    Evaluation r = x.evaluate(view);
    EXPECT_EQ(allocation_count() - before, 0) << text;
    EXPECT_TRUE(r.result.type() == Type::boolean) << text;
  }
  // Building a new string does allocate (the test can tell).
  Expression c = compile("LENGTH(CONCAT(type, type)) > 3").value();
  const long before = allocation_count();
  EXPECT_TRUE(c.matches(view));
  EXPECT_GT(allocation_count() - before, 0);
}

TEST(Cesql, BadBytesAreRefused) {
  EXPECT_NE(parse_error(std::string("id = \x01")).message.find("\\x01"), std::string::npos);
  EXPECT_TRUE(compile(std::string("'\xff\xfe' = id")));  // inside a string: any bytes
}

TEST(Cesql, MatchesIsTheFilterRule) {
  const Event e = sample();
  EXPECT_TRUE(compile("priority > 3").value().matches(EventView(e)));
  EXPECT_FALSE(compile("priority > 7").value().matches(EventView(e)));
  EXPECT_FALSE(compile("region").value().matches(EventView(e)));        // not a Boolean
  EXPECT_FALSE(compile("nope = ''").value().matches(EventView(e)));     // an error
  EXPECT_FALSE(compile("NOT (nope = '')").value().matches(EventView(e)));
  EXPECT_EQ(compile("priority > 3").value().text(), "priority > 3");
  Expression a = compile("priority > 3").value();
  Expression b = a;  // shares the compiled program
  EXPECT_TRUE(b.matches(EventView(e)));
  EXPECT_EQ(&a.text(), &b.text());
}

TEST(Cesql, DetachedResultsOutliveTheEvent) {
  Expression x = compile("region").value();
  Value kept;
  {
    auto e = std::make_unique<Event>(sample());
    Evaluation r = x.evaluate(EventView(*e));
    EXPECT_FALSE(r.result.owns_text());  // a view of the event
    kept = r.result.detached();
  }
  EXPECT_TRUE(kept.owns_text());
  EXPECT_EQ(kept.as_string(), "eu-west");
  EXPECT_EQ(Value::integer(7).detached(), Value::integer(7));
}

TEST(Cesql, CastsMatchTheSpecificationTable) {
  int32_t i = 0;
  bool b = false;
  EXPECT_TRUE(detail::cast_to_int(Value::view("-2147483648"), i));
  EXPECT_EQ(i, INT32_MIN);
  EXPECT_FALSE(detail::cast_to_int(Value::view("-2147483649"), i));
  EXPECT_FALSE(detail::cast_to_int(Value::view("-"), i));
  EXPECT_FALSE(detail::cast_to_int(Value::view("0x10"), i));
  EXPECT_TRUE(detail::cast_to_bool(Value::integer(-5), b));
  EXPECT_TRUE(b);
  EXPECT_FALSE(detail::cast_to_bool(Value::view("yes"), b));
  EXPECT_EQ(detail::cast_to_string(Value::integer(INT32_MIN)).as_string(), "-2147483648");
  EXPECT_EQ(detail::cast_to_string(Value::boolean(true)).as_string(), "true");
}

}  // namespace
}  // namespace sluice::filter
