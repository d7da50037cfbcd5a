#include "core/cloudevents.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace sluice::cloudevents::testing {
namespace {

using nlohmann::json;

constexpr std::string_view kMinimal =
    R"({"specversion":"1.0","id":"e1","source":"/src","type":"t.created"})";

Event full_event() {
  Event e;
  e.id = "e-42";
  e.source = "https://example.com/orders";
  e.type = "com.example.order.created";
  e.subject = "order/42";
  e.time = "2026-11-25T09:43:44.123Z";
  e.datacontenttype = "application/json";
  e.dataschema = "https://example.com/schema.json";
  e.extensions = {{"partitionkey", "cust-7"}, {"traceparent", "00-abc-01"}};
  e.key = "cust-7";
  e.data = R"({"total":12.5,"items":[1,2,3]})";
  return e;
}

void expect_same_attributes(const Event& a, const Event& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.source, b.source);
  EXPECT_EQ(a.specversion, b.specversion);
  EXPECT_EQ(a.type, b.type);
  EXPECT_EQ(a.subject, b.subject);
  EXPECT_EQ(a.time, b.time);
  EXPECT_EQ(a.datacontenttype, b.datacontenttype);
  EXPECT_EQ(a.dataschema, b.dataschema);
  EXPECT_EQ(a.data, b.data);
  EXPECT_EQ(a.key, b.key);
  auto sorted = [](auto v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  EXPECT_EQ(sorted(a.extensions), sorted(b.extensions));
}

std::string error_of(std::string_view json_text) {
  auto r = parse_structured(json_text);
  EXPECT_FALSE(r) << json_text;
  if (r) return "";
  EXPECT_EQ(r.error().code, Errc::invalid_argument);
  return r.error().message;
}

// ---- structured ----

TEST(Structured, MinimalEvent) {
  auto r = parse_structured(kMinimal);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r.value().id, "e1");
  EXPECT_EQ(r.value().source, "/src");
  EXPECT_EQ(r.value().type, "t.created");
  EXPECT_EQ(r.value().specversion, "1.0");
  EXPECT_TRUE(r.value().data.empty());
  EXPECT_TRUE(r.value().datacontenttype.empty());
}

TEST(Structured, RoundTripKeepsEveryAttribute) {
  Event e = full_event();
  auto back = parse_structured(to_structured(e));
  ASSERT_TRUE(back) << back.error().message;
  expect_same_attributes(back.value(), e);
}

TEST(Structured, RoundTripTextBinaryAndJsonStringData) {
  for (auto [ct, data] : std::vector<std::pair<std::string, std::string>>{
           {"text/plain", "hello \"world\"\n"},
           {"", "plain text without a content type"},
           {"", R"({"looks":"like json"})"},
           {"application/octet-stream", std::string("\x00\xff\xfe bin", 7)},
           {"application/json", R"("a json string")"},
           {"application/json", "not json at all"},
           {"application/json", std::string("\xff", 1)},
           {"text/plain", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"}}) {
    Event e = full_event();
    e.datacontenttype = ct;
    e.data = data;
    auto back = parse_structured(to_structured(e));
    ASSERT_TRUE(back) << back.error().message;
    expect_same_attributes(back.value(), e);
  }
}

TEST(Structured, BinaryDataTravelsAsDataBase64) {
  Event e = full_event();
  e.datacontenttype = "image/png";
  e.data = std::string("\x89PNG\r\n\x1a\n\0", 9);
  json j = json::parse(to_structured(e));
  EXPECT_FALSE(j.contains("data"));
  EXPECT_EQ(j["data_base64"], "iVBORw0KGgoA");
}

TEST(Structured, JsonDataIsKeptExactlyAsSent) {
  std::string text =
      R"({"specversion":"1.0","id":"1","source":"s","type":"t",)"
      R"("data": {"n": 123456789012345678901234567890, "f": 1.50, "s": "x\u00e9"} })";
  auto r = parse_structured(text);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r.value().data, R"({"n": 123456789012345678901234567890, "f": 1.50, "s": "x\u00e9"})");
  EXPECT_EQ(r.value().datacontenttype, "application/json");
  // ...and survives re-encoding byte for byte.
  auto again = parse_structured(to_structured(r.value()));
  ASSERT_TRUE(again);
  EXPECT_EQ(again.value().data, r.value().data);
}

TEST(Structured, StringDataIsTextUnlessContentTypeIsJson) {
  auto text = parse_structured(
      R"({"specversion":"1.0","id":"1","source":"s","type":"t","datacontenttype":"text/plain","data":"a\"b\u00e9"})");
  ASSERT_TRUE(text);
  EXPECT_EQ(text.value().data, "a\"b\xc3\xa9");
  auto js = parse_structured(
      R"({"specversion":"1.0","id":"1","source":"s","type":"t","datacontenttype":"application/json; charset=utf-8","data":"a\"b"})");
  ASSERT_TRUE(js);
  EXPECT_EQ(js.value().data, R"("a\"b")");
  auto none = parse_structured(R"({"specversion":"1.0","id":"1","source":"s","type":"t","data":"hi"})");
  ASSERT_TRUE(none);
  EXPECT_EQ(none.value().data, "hi");
  EXPECT_TRUE(none.value().datacontenttype.empty());
}

TEST(Structured, NonStringDataDefaultsToApplicationJson) {
  auto r = parse_structured(R"({"specversion":"1.0","id":"1","source":"s","type":"t","data":[1,true,null]})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r.value().data, "[1,true,null]");
  EXPECT_EQ(r.value().datacontenttype, "application/json");
  auto n = parse_structured(R"({"specversion":"1.0","id":"1","source":"s","type":"t","data":-0.5e3})");
  ASSERT_TRUE(n);
  EXPECT_EQ(n.value().data, "-0.5e3");
}

TEST(Structured, NullDataAndNullOptionalAttributesAreAbsent) {
  auto r = parse_structured(
      R"({"specversion":"1.0","id":"1","source":"s","type":"t","subject":null,"data":null,"ext":null})");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r.value().data.empty());
  EXPECT_TRUE(r.value().subject.empty());
  EXPECT_TRUE(r.value().extensions.empty());
}

TEST(Structured, DataBase64IsDecoded) {
  auto r = parse_structured(
      R"({"specversion":"1.0","id":"1","source":"s","type":"t","data_base64":"AAEC/w=="})");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r.value().data, std::string("\x00\x01\x02\xff", 4));
  auto empty = parse_structured(
      R"({"specversion":"1.0","id":"1","source":"s","type":"t","data_base64":""})");
  ASSERT_TRUE(empty) << empty.error().message;
  EXPECT_TRUE(empty.value().data.empty());
}

TEST(Structured, DataAndDataBase64TogetherIsAnError) {
  auto msg = error_of(
      R"({"specversion":"1.0","id":"1","source":"s","type":"t","data":"x","data_base64":"eA=="})");
  EXPECT_NE(msg.find("data_base64"), std::string::npos) << msg;
}

TEST(Structured, BadBase64IsAnError) {
  for (auto b64 : {"eA=", "e===", "eA=A", "e A=", "eA==\\n", "****"}) {
    auto msg = error_of(std::string(R"({"specversion":"1.0","id":"1","source":"s","type":"t","data_base64":")") +
                        b64 + "\"}");
    EXPECT_NE(msg.find("data_base64"), std::string::npos) << b64 << ": " << msg;
  }
}

TEST(Structured, EveryMissingRequiredAttributeIsNamed) {
  for (std::string attr : {"specversion", "id", "source", "type"}) {
    json j = json::parse(kMinimal);
    j.erase(attr);
    auto msg = error_of(j.dump());
    EXPECT_NE(msg.find("'" + attr + "'"), std::string::npos) << msg;
    j[attr] = "";
    msg = error_of(j.dump());
    EXPECT_NE(msg.find("'" + attr + "'"), std::string::npos) << msg;
    j[attr] = 7;
    msg = error_of(j.dump());
    EXPECT_NE(msg.find("'" + attr + "'"), std::string::npos) << msg;
  }
}

TEST(Structured, BadSpecversion) {
  json j = json::parse(kMinimal);
  j["specversion"] = "0.3";
  auto msg = error_of(j.dump());
  EXPECT_NE(msg.find("specversion"), std::string::npos) << msg;
  EXPECT_NE(msg.find("0.3"), std::string::npos) << msg;
}

TEST(Structured, BadTime) {
  for (auto t : {"yesterday", "2026-13-01T00:00:00Z", "2026-11-25 09:43", "2026-11-25T09:43:44"}) {
    json j = json::parse(kMinimal);
    j["time"] = t;
    auto msg = error_of(j.dump());
    EXPECT_NE(msg.find("'time'"), std::string::npos) << t << ": " << msg;
  }
  json j = json::parse(kMinimal);
  j["time"] = "2026-11-25T09:43:44.5+01:00";
  ASSERT_TRUE(parse_structured(j.dump()));
}

TEST(Structured, Extensions) {
  json j = json::parse(kMinimal);
  j["traceparent"] = "00-1";
  j["retries"] = 3;
  j["big"] = json::parse("123456789012345678901234567890");
  j["ratio"] = 0.25;
  j["flag"] = true;
  j["partitionkey"] = "k9";
  std::string text = j.dump();
  auto r = parse_structured(text);
  ASSERT_TRUE(r) << r.error().message;
  const Event& e = r.value();
  EXPECT_EQ(*e.extension("traceparent"), "00-1");
  EXPECT_EQ(*e.extension("retries"), "3");
  EXPECT_EQ(*e.extension("big"), "1.2345678901234568e+29");  // as dumped by the test
  EXPECT_EQ(*e.extension("ratio"), "0.25");
  EXPECT_EQ(*e.extension("flag"), "true");
  EXPECT_EQ(e.key, "k9");
  auto exact = parse_structured(
      R"({"specversion":"1.0","id":"1","source":"s","type":"t","big":123456789012345678901234567890})");
  ASSERT_TRUE(exact);
  EXPECT_EQ(*exact.value().extension("big"), "123456789012345678901234567890");
}

TEST(Structured, BadExtensionNameOrValue) {
  for (auto name : {"Upper", "with_underscore", "dash-ed", "abcdefghijklmnopqrstu", ""}) {
    json j = json::parse(kMinimal);
    j[name] = "v";
    auto msg = error_of(j.dump());
    EXPECT_NE(msg.find("'" + std::string(name) + "'"), std::string::npos) << msg;
  }
  json j = json::parse(kMinimal);
  j["obj"] = json::object({{"a", 1}});
  EXPECT_NE(error_of(j.dump()).find("'obj'"), std::string::npos);
  j = json::parse(kMinimal);
  j["abcdefghijklmnopqrst"] = "twenty chars is fine";
  EXPECT_TRUE(parse_structured(j.dump()));
}

TEST(Structured, InvalidAndNonObjectJson) {
  for (auto text : {"", "{", "{\"id\":}", "{'id':'x'}", "nul", "{\"a\":1}x", "{\"a\":\"\xff\"}"})
    EXPECT_NE(error_of(text).find("invalid JSON"), std::string::npos) << text;
  for (auto text : {"[]", "\"str\"", "42", "null", "[{\"specversion\":\"1.0\"}]"})
    EXPECT_NE(error_of(text).find("JSON object"), std::string::npos) << text;
}

TEST(Structured, NumberTooLargeForADoubleIsInvalidJsonNotACrash) {
  auto msg = error_of(R"({"specversion":"1.0","id":"1","source":"s","type":"t","data":1e400})");
  EXPECT_NE(msg.find("invalid JSON"), std::string::npos) << msg;
  std::string deep(10000, '[');
  deep += std::string(10000, ']');
  auto r = parse_structured(
      std::string(R"({"specversion":"1.0","id":"1","source":"s","type":"t","data":)") + deep + "}");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r.value().data, deep);
}

TEST(Structured, UnicodeAttributesAndEscapedKeys) {
  std::string text =
      "{\"specversion\":\"1.0\",\"id\":\"\xe2\x9c\x93\",\"source\":\"/\xc3\xbc\",\"type\":\"t\","
      "\"subject\":\"\\ud83d\\ude00\",\"d\\u0061ta\":{\"k\":\"\xf0\x9f\x98\x80\"}}";
  auto r = parse_structured(text);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r.value().id, "\xe2\x9c\x93");
  EXPECT_EQ(r.value().source, "/\xc3\xbc");
  EXPECT_EQ(r.value().subject, "\xf0\x9f\x98\x80");
  EXPECT_EQ(r.value().data, "{\"k\":\"\xf0\x9f\x98\x80\"}");
  auto back = parse_structured(to_structured(r.value()));
  ASSERT_TRUE(back);
  expect_same_attributes(back.value(), r.value());
}

TEST(Structured, KeyIsEmittedAsPartitionKey) {
  Event e = full_event();
  e.extensions.clear();
  e.key = "k1";
  json j = json::parse(to_structured(e));
  EXPECT_EQ(j["partitionkey"], "k1");
}

// ---- binary ----

Headers http_headers() {
  return {{"ce-specversion", "1.0"}, {"CE-ID", "b1"},        {"ce-source", "/http%20src"},
          {"ce-type", "t"},          {"ce-time", "2026-01-02T03:04:05Z"},
          {"ce-subject", "%E2%82%AC 100%25"}, {"ce-partitionkey", "key%22x"},
          {"ce-myext", "v"},         {"X-Request-Id", "r-1"}, {"Content-Type", "ignored/x"}};
}

TEST(Binary, ParsesAttributesExtensionsAndHeaders) {
  auto r = parse_binary(http_headers(), "ce-", "body", "text/plain");
  ASSERT_TRUE(r) << r.error().message;
  const Event& e = r.value();
  EXPECT_EQ(e.id, "b1");
  EXPECT_EQ(e.source, "/http src");
  EXPECT_EQ(e.type, "t");
  EXPECT_EQ(e.subject, "\xe2\x82\xac 100%");
  EXPECT_EQ(e.time, "2026-01-02T03:04:05Z");
  EXPECT_EQ(e.key, "key\"x");
  EXPECT_EQ(*e.extension("myext"), "v");
  EXPECT_EQ(e.datacontenttype, "text/plain");
  EXPECT_EQ(e.data, "body");
  ASSERT_EQ(e.headers.size(), 1u);
  EXPECT_EQ(e.headers[0], (Header{"X-Request-Id", "r-1"}));
}

TEST(Binary, ContentTypeHeaderIsUsedWhenNoneIsGiven) {
  auto r = parse_binary(http_headers(), "ce-", "", "");
  ASSERT_TRUE(r);
  EXPECT_EQ(r.value().datacontenttype, "ignored/x");
}

TEST(Binary, RoundTripHttpAndKafka) {
  for (std::string_view prefix : {kHttpPrefix, kKafkaPrefix}) {
    Event e = full_event();
    e.subject = "with space, \"quotes\", 100% and \xc3\xa9";
    e.headers = {{"x-trace", "t1"}};
    Headers h = to_binary(e, prefix);
    for (const auto& hd : h)
      if (prefix == kHttpPrefix && hd.name == "ce-subject")
        EXPECT_EQ(hd.value, "with%20space,%20%22quotes%22,%20100%25%20and%20%C3%A9");
    auto back = parse_binary(h, prefix, e.data, "");
    ASSERT_TRUE(back) << back.error().message;
    expect_same_attributes(back.value(), e);
    EXPECT_EQ(back.value().headers, e.headers);
  }
}

// An extension with an empty value is accepted on the way in (both modes), so it
// must be written out too: a binary-mode hop used to drop it (found by fuzzing).
TEST(Binary, EmptyExtensionSurvivesTheRoundTrip) {
  for (std::string_view prefix : {kHttpPrefix, kKafkaPrefix}) {
    const std::string p(prefix);
    Headers h = {{p + "specversion", "1.0"}, {p + "id", "a"}, {p + "source", "/s"},
                 {p + "type", "t"},          {p + "empty", ""}};
    auto ev = parse_binary(h, prefix, "", "");
    ASSERT_TRUE(ev) << ev.error().message;
    ASSERT_NE(ev.value().extension("empty"), nullptr);
    auto back = parse_binary(to_binary(ev.value(), prefix), prefix, "", "");
    ASSERT_TRUE(back) << back.error().message;
    ASSERT_NE(back.value().extension("empty"), nullptr) << prefix;
    EXPECT_EQ(*back.value().extension("empty"), "");
  }
}

TEST(Binary, KafkaValuesAreNotPercentDecoded) {
  Headers h = {{"ce_specversion", "1.0"}, {"ce_id", "a%20b"}, {"ce_source", "s"}, {"ce_type", "t"}};
  auto r = parse_binary(h, "ce_", "", "");
  ASSERT_TRUE(r);
  EXPECT_EQ(r.value().id, "a%20b");
}

TEST(Binary, EveryMissingRequiredAttributeIsNamed) {
  for (std::string attr : {"specversion", "id", "source", "type"}) {
    Headers h;
    for (auto& x : http_headers())
      if (x.name.size() <= 3 || strcasecmp(x.name.c_str() + 3, attr.c_str()) != 0) h.push_back(x);
    auto r = parse_binary(h, "ce-", "", "");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::invalid_argument);
    EXPECT_NE(r.error().message.find("'" + attr + "'"), std::string::npos) << r.error().message;
  }
}

TEST(Binary, Rejects) {
  auto with = [](Header extra) {
    Headers h = http_headers();
    h.push_back(std::move(extra));
    return parse_binary(h, "ce-", "", "");
  };
  auto msg = [](const Result<Event>& r) { return r ? std::string() : r.error().message; };
  EXPECT_NE(msg(with({"ce-my_ext", "v"})).find("'my_ext'"), std::string::npos);
  EXPECT_NE(msg(with({"ce-id", "again"})).find("'id'"), std::string::npos);
  EXPECT_NE(msg(with({"ce-data", "x"})).find("ce-data"), std::string::npos);
  EXPECT_NE(msg(with({"ce-other", "bad%2"})).find("ce-other"), std::string::npos);
  EXPECT_NE(msg(with({"ce-other", "%FF"})).find("UTF-8"), std::string::npos);
  Headers h = http_headers();
  h[0].value = "0.3";
  EXPECT_FALSE(parse_binary(h, "ce-", "", ""));
  h = http_headers();
  h[4].value = "not a time";
  auto r = parse_binary(h, "ce-", "", "");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("'time'"), std::string::npos);
}

// ---- helpers ----

TEST(Helpers, JsonContentTypes) {
  EXPECT_TRUE(is_json_content_type("application/json"));
  EXPECT_TRUE(is_json_content_type("Application/JSON; charset=utf-8"));
  EXPECT_TRUE(is_json_content_type("text/json"));
  EXPECT_TRUE(is_json_content_type("application/vnd.api+json"));
  EXPECT_FALSE(is_json_content_type("text/plain"));
  EXPECT_FALSE(is_json_content_type(""));
  EXPECT_FALSE(is_json_content_type("application/jsonx"));
}

TEST(Helpers, Base64) {
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
    auto back = base64_decode(base64_encode(s));
    ASSERT_TRUE(back);
    EXPECT_EQ(back.value(), s);
  }
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_FALSE(base64_decode("Zm9v YmFy"));
  EXPECT_FALSE(base64_decode("Zm9=vYmF"));
  EXPECT_FALSE(base64_decode("Zg==="));
}

TEST(Helpers, Utf8) {
  EXPECT_TRUE(is_valid_utf8("plain \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_FALSE(is_valid_utf8("\xc3"));             // truncated
  EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));         // overlong
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));     // surrogate
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80")); // beyond U+10FFFF
}

}  // namespace
}  // namespace sluice::cloudevents::testing
