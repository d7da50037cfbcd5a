// preflight(): what `run` would refuse at start, found without starting anything.
#include "cmd/preflight.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace sluice::cmd::testing {
namespace {

class Preflight : public ::testing::Test {
 protected:
  Preflight() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sluice-pre-XXXXXX").string();
    dir_ = mkdtemp(tmpl.data());
  }
  ~Preflight() override { std::filesystem::remove_all(dir_); }
  Config load(const std::string& yaml) {
    std::ofstream(dir_ + "/sluice.yaml") << yaml;
    auto r = load_config_file(dir_ + "/sluice.yaml");
    EXPECT_TRUE(r.config) << (r.errors.empty() ? "" : r.errors[0].to_string());
    return r.config ? *r.config : Config{};
  }
  void write(const std::string& name, const std::string& text, mode_t mode = 0644) {
    std::ofstream(dir_ + "/" + name) << text;
    ::chmod((dir_ + "/" + name).c_str(), mode);
  }
  // The one error at `path`, or nullptr.
  static const ConfigError* at(const PreflightReport& r, const std::string& path) {
    for (const auto& e : r.errors)
      if (e.path == path) return &e;
    return nullptr;
  }
  std::string dir_;
};

TEST_F(Preflight, AGoodConfigPassesAndSaysWhatItCouldNotCheck) {
  auto r = preflight(load("brokers:\n  local: { kind: local, path: ./data/q.db }\n"
                          "  k: { kind: kafka, bootstrap: 127.0.0.1:1 }\n"
                          "http: { listen: 127.0.0.1:0 }\n"
                          "functions:\n  - { name: f, command: [sh, -c, cat] }\n"));
  EXPECT_TRUE(r.errors.empty()) << r.errors[0].to_string();
  ASSERT_EQ(r.not_checked.size(), 2u);
  EXPECT_EQ(r.not_checked[0], "kafka broker 'k' reachable");
  EXPECT_EQ(r.not_checked[1], "http.listen 127.0.0.1:0 free");
}

TEST_F(Preflight, TokenFileMissingOrEmpty) {
  auto missing = preflight(load("http: { auth: { bearer_tokens_file: ./nope } }\n"));
  const ConfigError* e = at(missing, "http.auth.bearer_tokens_file");
  ASSERT_NE(e, nullptr);
  EXPECT_NE(e->message.find("cannot read"), std::string::npos) << e->message;
  EXPECT_EQ(e->file, dir_ + "/sluice.yaml");
  write("tokens", "# only a comment\n\n");
  auto empty = preflight(load("http: { auth: { bearer_tokens_file: ./tokens } }\n"));
  ASSERT_NE(at(empty, "http.auth.bearer_tokens_file"), nullptr);
  EXPECT_NE(at(empty, "http.auth.bearer_tokens_file")->message.find("holds no token"),
            std::string::npos);
  write("tokens", "s3cret\n");
  EXPECT_TRUE(preflight(load("http: { auth: { bearer_tokens_file: ./tokens } }\n")).errors.empty());
}

TEST_F(Preflight, CommandsMustBeFoundAndExecutable) {
  write("script.sh", "#!/bin/sh\ncat\n", 0644);  // not executable
  auto r = preflight(load("functions:\n"
                          "  - { name: a, command: [no-such-program-xyz] }\n"
                          "  - { name: b, runtime: stdio, command: [./missing.py] }\n"
                          "  - { name: c, runtime: http, command: [./script.sh] }\n"
                          "  - { name: d, command: [cat] }\n"));
  ASSERT_EQ(r.errors.size(), 3u);
  EXPECT_EQ(r.errors[0].path, "functions[0].command[0]");
  EXPECT_EQ(r.errors[0].line, 2);
  EXPECT_NE(r.errors[0].message.find("not found in PATH"), std::string::npos);
  EXPECT_EQ(r.errors[1].path, "functions[1].command[0]");
  EXPECT_NE(r.errors[1].message.find("No such file"), std::string::npos) << r.errors[1].message;
  EXPECT_EQ(r.errors[2].path, "functions[2].command[0]");
  EXPECT_NE(r.errors[2].message.find("not an executable"), std::string::npos);
  ::chmod((dir_ + "/script.sh").c_str(), 0755);
  EXPECT_EQ(preflight(load("functions:\n  - { name: c, runtime: http, command: [./script.sh] }\n"))
                .errors.size(),
            0u);
}

TEST_F(Preflight, InprocLibraryMustLoadAndExportTheAbi) {
  auto r = preflight(load("functions:\n"
                          "  - { name: a, runtime: inproc, command: [./nope.so] }\n"
                          "  - { name: b, runtime: inproc, command: [libm.so.6] }\n"));
  ASSERT_EQ(r.errors.size(), 2u);
  EXPECT_NE(r.errors[0].message.find("nope.so"), std::string::npos);
  EXPECT_NE(r.errors[1].message.find("missing symbol(s): sluice_abi_version"), std::string::npos)
      << r.errors[1].message;
}

// run refuses these when it opens the broker; validate now too, without connecting.
TEST_F(Preflight, BrokerOptionsAreCheckedWithoutConnecting) {
  auto r = preflight(load("brokers:\n"
                          "  k: { kind: kafka, bootstrap: 127.0.0.1:1, options: { no.such.property: 1 } }\n"
                          "  n: { kind: nats, options: { ack_wait: 2562047h } }\n"
                          "  m: { kind: nats, options: { colour: red } }\n"));
  ASSERT_NE(at(r, "brokers.k.options"), nullptr);
  EXPECT_NE(at(r, "brokers.k.options")->message.find("no.such.property"), std::string::npos);
  EXPECT_EQ(at(r, "brokers.k.options")->line, 2);
  ASSERT_NE(at(r, "brokers.n.options"), nullptr);
  EXPECT_NE(at(r, "brokers.n.options")->message.find("1ms..24h"), std::string::npos)
      << at(r, "brokers.n.options")->message;
  ASSERT_NE(at(r, "brokers.m.options"), nullptr);
  EXPECT_EQ(r.errors.size(), 3u);
}

TEST_F(Preflight, MetricsTokenFileAndControlKeyAreCheckedAsRunChecksThem) {
  auto r = preflight(load("metrics: { auth: { bearer_tokens_file: ./nope } }\n"
                          "engine: { control_key_file: ./key }\n"));
  ASSERT_NE(at(r, "metrics.auth.bearer_tokens_file"), nullptr);
  EXPECT_EQ(at(r, "engine.control_key_file"), nullptr);  // absent: run creates it
  write("key", "not a hex key\n");
  auto bad = preflight(load("engine: { control_key_file: ./key }\n"));
  ASSERT_NE(at(bad, "engine.control_key_file"), nullptr);
  write("key", std::string(64, 'a') + "\n", 0600);
  auto good = preflight(load("engine: { control_key_file: ./key }\n"));
  EXPECT_EQ(at(good, "engine.control_key_file"), nullptr)
      << at(good, "engine.control_key_file")->message;
  mkdir((dir_ + "/ro").c_str(), 0500);
  if (::access((dir_ + "/ro").c_str(), W_OK) != 0) {  // not root
    auto ro = preflight(load("engine: { control_key_file: ./ro/key }\n"));
    EXPECT_NE(at(ro, "engine.control_key_file"), nullptr);
  }
}

TEST_F(Preflight, LocalDatabaseMustBeCreatable) {
  write("afile", "x");
  auto r = preflight(load("brokers:\n  local: { kind: local, path: ./afile/q.db }\n"));
  ASSERT_NE(at(r, "brokers.local.path"), nullptr);
  EXPECT_EQ(at(r, "brokers.local.path")->line, 2);
  EXPECT_TRUE(preflight(load("brokers:\n  local: { kind: local, path: ./new/dir/q.db }\n"))
                  .errors.empty());
}

}  // namespace
}  // namespace sluice::cmd::testing
