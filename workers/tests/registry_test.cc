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

TEST(WorkersRegistry, EveryRuntimeIsRegistered) {
  FunctionConfig fn;
  fn.name = "x";
  fn.command = {"cat"};
  for (auto [kind, name] : {std::pair{RuntimeKind::stdio, "stdio"},
                            std::pair{RuntimeKind::http, "http"},
                            std::pair{RuntimeKind::inproc, "inproc"}}) {
    fn.runtime = kind;
    auto rt = make_runtime(fn, "/");
    ASSERT_TRUE(rt) << rt.error().message;
    EXPECT_EQ(rt.value()->kind(), name);
  }
}

// The runtime config fields (limits, ready_path, start_timeout) and their bad forms.
TEST(RuntimeConfig, LimitsReadyPathAndStartTimeoutAreLoaded) {
  auto r = load_config_string(R"(functions:
  - name: f
    runtime: http
    command: [./server]
    limits: { memory: 256MiB, open_files: 1024, cpu_seconds: 60 }
    ready_path: /ready
    start_timeout: 3s
  - name: g
    command: [x]
)", "/srv");
  ASSERT_TRUE(r.config) << (r.errors.empty() ? "" : r.errors[0].to_string());
  const FunctionConfig& f = r.config->functions[0];
  EXPECT_EQ(f.limits.memory, 256u << 20);
  EXPECT_EQ(f.limits.open_files, 1024u);
  EXPECT_EQ(f.limits.cpu_seconds, 60u);
  EXPECT_EQ(f.ready_path, "/ready");
  EXPECT_EQ(f.start_timeout.count(), 3000);
  const FunctionConfig& g = r.config->functions[1];
  EXPECT_EQ(g.limits.memory, 0u);
  EXPECT_EQ(g.ready_path, "/healthz");
  EXPECT_EQ(g.start_timeout.count(), 10000);
}

TEST(RuntimeConfig, BadFormsNameTheFieldAndLine) {
  struct Case {
    const char* yaml;  // the function's extra line
    const char* path;
    const char* message;
  };
  const Case cases[] = {
      {"limits: { memory: lots }", "functions[0].limits.memory", "lots"},
      {"limits: { memory: 512KiB }", "functions[0].limits.memory", "must be at least 1MiB"},
      {"limits: { open_files: 3 }", "functions[0].limits.open_files", "16"},
      {"limits: { open_files: many }", "functions[0].limits.open_files", "many"},
      {"limits: { cpu_seconds: 0 }", "functions[0].limits.cpu_seconds", "1"},
      {"limits: { cpu_seconds: 1.5 }", "functions[0].limits.cpu_seconds", "1.5"},
      {"limits: { cpu: 5 }", "functions[0].limits.cpu", "unknown key"},
      {"limits: 5", "functions[0].limits", "map"},
      {"ready_path: healthz", "functions[0].ready_path", "must be a path starting with '/'"},
      {"start_timeout: 10", "functions[0].start_timeout", "duration"},
      {"start_timeout: 0s", "functions[0].start_timeout", "must be at least 1ms"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.yaml);
    auto r = load_config_string(
        std::string("functions:\n  - name: f\n    command: [x]\n    ") + c.yaml + "\n", "/srv");
    EXPECT_FALSE(r.config);
    const ConfigError* e = nullptr;
    for (const auto& err : r.errors)
      if (err.path == c.path) e = &err;
    ASSERT_NE(e, nullptr) << (r.errors.empty() ? "no error" : r.errors[0].to_string());
    EXPECT_EQ(e->line, 4);
    EXPECT_NE(e->message.find(c.message), std::string::npos) << e->to_string();
  }
}

}  // namespace
}  // namespace sluice::workers::testing
