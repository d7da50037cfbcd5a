// The clean environment and the per-event variables.
#include "test_util.h"
#include "workers/environment.h"

namespace sluice::workers::testing {
namespace {

TEST(WorkersEnvironment, CleanHasPathHomeAndFunctionEnvOnly) {
  ::setenv("SLUICE_TEST_OTHER", "x", 1);
  std::vector<std::string> rejected;
  auto env = Environment::clean(
      {{"A", "1"}, {"PATH", "/opt/bin"}, {"BAD=NAME", "x"}, {"NUL", std::string("a\0b", 3)}},
      &rejected);
  ::unsetenv("SLUICE_TEST_OTHER");
  EXPECT_EQ(rejected, (std::vector<std::string>{"BAD=NAME", "NUL"}));
  EXPECT_EQ(*env.get("A"), "1");
  EXPECT_EQ(*env.get("PATH"), "/opt/bin");  // the function's env wins
  EXPECT_EQ(env.get("SLUICE_TEST_OTHER"), nullptr);
  if (const char* home = ::getenv("HOME")) {
    EXPECT_EQ(*env.get("HOME"), home);
  }
  auto list = env.to_list();
  EXPECT_NE(std::find(list.begin(), list.end(), "A=1"), list.end());
}

TEST(WorkersEnvironment, EventVariables) {
  Environment env;
  env.set("CE_SUBJECT", "from the function env");
  Event ev;
  ev.id = "e1";
  ev.source = "src";
  ev.subject = std::string("x\0y", 3);
  ev.extensions = {{"trace-parent", "t"}, {"id", "must not replace CE_ID"}, {"empty", ""}};
  ev.attempt = 1;
  auto dropped = add_event_vars(env, ev, "fn");
  EXPECT_EQ(dropped, (std::vector<std::string>{"CE_SUBJECT"}));
  EXPECT_EQ(env.get("CE_SUBJECT"), nullptr);
  EXPECT_EQ(*env.get("CE_ID"), "e1");
  EXPECT_EQ(*env.get("CE_TRACE_PARENT"), "t");
  EXPECT_EQ(env.get("CE_EMPTY"), nullptr);
  EXPECT_EQ(env.get("CE_TYPE"), nullptr);  // empty attribute
  EXPECT_EQ(*env.get("CE_SPECVERSION"), "1.0");
  EXPECT_EQ(*env.get("SLUICE_FUNCTION"), "fn");
  EXPECT_EQ(*env.get("SLUICE_ATTEMPT"), "1");
  EXPECT_EQ(env.get("SLUICE_PARTITION"), nullptr);  // -1: unknown
  EXPECT_EQ(env.get("SLUICE_OFFSET"), nullptr);
  EXPECT_EQ(env.get("SLUICE_KEY"), nullptr);
}

}  // namespace
}  // namespace sluice::workers::testing
