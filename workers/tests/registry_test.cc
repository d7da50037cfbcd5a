// make_runtime(): the one place runtimes are registered.
#include "test_util.h"
#include "workers/registry.h"

namespace sluice::workers::testing {
namespace {

TEST(WorkersRegistry, ExecIsRegistered) {
  FunctionConfig fn;
  fn.name = "thumbnail";
  fn.command = {"cat"};
  auto rt = make_runtime(fn, "/");
  ASSERT_TRUE(rt) << rt.error().message;
  EXPECT_EQ(rt.value()->kind(), "exec");
}

TEST(WorkersRegistry, OtherRuntimesAreNotImplementedYet) {
  FunctionConfig fn;
  fn.name = "x";
  for (auto [kind, name] : {std::pair{RuntimeKind::stdio, "stdio"},
                            std::pair{RuntimeKind::http, "http"},
                            std::pair{RuntimeKind::inproc, "inproc"}}) {
    fn.runtime = kind;
    auto rt = make_runtime(fn, "/");
    ASSERT_FALSE(rt);
    EXPECT_EQ(rt.error().code, Errc::invalid_argument);
    EXPECT_EQ(rt.error().message,
              std::string("runtime '") + name + "' is not implemented yet (function 'x')");
  }
}

}  // namespace
}  // namespace sluice::workers::testing
