// End-to-end: `sluice filter EXPRESSION [--event FILE|-]`, one JSON object on stdout and
// the exit code of each outcome (0 evaluated, 1 evaluation error, 2 parse error or an
// unreadable event).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "harness.h"

namespace sluice::e2e {
namespace {

const char* kEvent =
    R"({"specversion":"1.0","id":"e-1","source":"/orders","type":"com.example.order",)"
    R"("priority":5,"region":"eu"})";

nlohmann::json out_json(const CmdResult& r) {
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  EXPECT_TRUE(j.is_object()) << "stdout: " << r.out << "\nstderr: " << r.err;
  EXPECT_EQ(r.out.find('\n'), r.out.size() - 1) << "one line: " << r.out;
  return j;
}

TEST(FilterCli, MatchFromFileExitsZero) {
  TempDir dir;
  dir.write("ev.json", kEvent);
  auto r = run_cli({"filter", "type LIKE 'com.example.%' AND int(priority) > 3", "--event",
                    dir.file("ev.json")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto j = out_json(r);
  EXPECT_EQ(j["result"], true);
  EXPECT_TRUE(j["error"].is_null());
  EXPECT_EQ(r.out, "{\"result\":true,\"error\":null}\n");
}

TEST(FilterCli, EventFromStdinAndNonBooleanResults) {
  auto r = run_cli({"filter", "CONCAT(region, '-', priority * 2)", "--event", "-"}, kEvent);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(out_json(r)["result"], "eu-10");
  auto n = run_cli({"filter", "LENGTH(id) + 1", "--event", "-"}, kEvent);
  EXPECT_EQ(n.exit_code, 0) << n.err;
  EXPECT_EQ(out_json(n)["result"], 4);
}

TEST(FilterCli, EvaluationErrorExitsOneWithTheDefinedResult) {
  auto r = run_cli({"filter", "missing = 'x'", "--event", "-"}, kEvent);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  auto j = out_json(r);
  EXPECT_EQ(j["result"], false);
  EXPECT_EQ(j["error"], "missingAttribute");
  auto f = run_cli({"filter", "LEFT('abc')"});
  EXPECT_EQ(f.exit_code, 1);
  EXPECT_EQ(out_json(f)["error"], "missingFunction");
  EXPECT_NE(f.err.find("column 1: function LEFT does not take 1 argument"), std::string::npos)
      << f.err;
  auto m = run_cli({"filter", "ABS(-2147483648)"});
  EXPECT_EQ(m.exit_code, 1);
  EXPECT_EQ(out_json(m)["result"], 2147483647);
  EXPECT_EQ(out_json(m)["error"], "math");
}

TEST(FilterCli, ParseErrorExitsTwoWithTheColumn) {
  auto r = run_cli({"filter", "type = 'abc"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(out_json(r)["error"], "parse");
  EXPECT_NE(r.err.find("column 8"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("unterminated string"), std::string::npos) << r.err;
}

TEST(FilterCli, WithoutAnEventOnlyTheRequiredAttributesExist) {
  auto r = run_cli({"filter", "EXISTS id AND specversion = '1.0' AND NOT EXISTS subject"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(out_json(r)["result"], true);
  auto s = run_cli({"filter", "subject"});
  EXPECT_EQ(s.exit_code, 1);
  EXPECT_EQ(out_json(s)["error"], "missingAttribute");
}

TEST(FilterCli, UnreadableEventExitsTwo) {
  auto r = run_cli({"filter", "true", "--event", "-"}, "{\"id\": 1}");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_NE(r.err.find("not a CloudEvent"), std::string::npos) << r.err;
  auto missing = run_cli({"filter", "true", "--event", "/nonexistent/ev.json"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("cannot read"), std::string::npos) << missing.err;
}

}  // namespace
}  // namespace sluice::e2e
