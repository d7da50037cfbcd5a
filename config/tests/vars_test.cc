// ${VAR} substitution, `<option>_file` secrets and the friendlier errors of the loader.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "config/reader.h"
#include "config/vars.h"
#include "config/tests/test_util.h"

namespace sluice::config::testing {
namespace {

using config::expand_vars;
using testing::load;

Result<std::string> expand(std::string_view text) {
  const std::map<std::string, std::string, std::less<>> env{{"HOST", "kafka:9092"},
                                                            {"EMPTY", ""}};
  return expand_vars(text, [&](std::string_view n) -> std::optional<std::string> {
    auto it = env.find(n);
    if (it == env.end()) return std::nullopt;
    return it->second;
  });
}

std::string error_of(std::string_view text) {
  auto r = expand(text);
  return r ? "<no error: " + r.value() + ">" : r.error().message;
}

TEST(ConfigVars, ExpandsSetVariablesDefaultsAndEscapes) {
  EXPECT_EQ(expand("${HOST}").value(), "kafka:9092");
  EXPECT_EQ(expand("at ${HOST}/x").value(), "at kafka:9092/x");
  EXPECT_EQ(expand("${NOPE:-local:1}").value(), "local:1");
  EXPECT_EQ(expand("${NOPE:-}").value(), "");
  EXPECT_EQ(expand("${EMPTY:-dflt}").value(), "");  // set but empty: the value wins
  EXPECT_EQ(expand("$${HOST}").value(), "${HOST}");
  EXPECT_EQ(expand("a$$b").value(), "a$b");
  EXPECT_EQ(expand("^a.*$").value(), "^a.*$");  // a lone $ stays
  EXPECT_EQ(expand("$HOST").value(), "$HOST");  // only the braced form expands
  EXPECT_EQ(expand("no dollars").value(), "no dollars");
}

TEST(ConfigVars, BadFormsAreOneLineErrors) {
  EXPECT_NE(error_of("${HOST").find("unclosed"), std::string::npos);
  EXPECT_NE(error_of("x ${").find("unclosed"), std::string::npos);
  EXPECT_NE(error_of("${}").find("empty variable name"), std::string::npos);
  EXPECT_NE(error_of("${:-x}").find("empty variable name"), std::string::npos);
  EXPECT_NE(error_of("${A${B}}").find("nested"), std::string::npos);
  EXPECT_NE(error_of("${A:-${B}}").find("nested"), std::string::npos);
  EXPECT_NE(error_of("${1A}").find("bad variable name"), std::string::npos);
  EXPECT_NE(error_of("${A B}").find("bad variable name"), std::string::npos);
  EXPECT_NE(error_of("${UNSET_X}").find("UNSET_X is not set"), std::string::npos);
}

TEST(ConfigVars, LoaderExpandsValuesAndReportsTheLineOfAnUnsetVariable) {
  ::setenv("SLUICE_TEST_GROUP", "g1", 1);
  ::unsetenv("SLUICE_TEST_UNSET");
  auto ok = load("brokers:\n  k:\n    kind: kafka\n    bootstrap: ${SLUICE_TEST_BS:-h:1}\n"
                 "    group: ${SLUICE_TEST_GROUP}\n"
                 "functions:\n  - { name: f, command: [echo, \"$${x}\"],"
                 " subscribe: [{ topic: t }] }\n");
  ASSERT_TRUE(ok.config) << testing::dump(ok);
  EXPECT_EQ(ok.config->brokers[0].kafka().bootstrap, "h:1");
  EXPECT_EQ(ok.config->brokers[0].kafka().group, "g1");
  EXPECT_EQ(ok.config->functions[0].command[1], "${x}");

  auto bad = load("functions:\n  - name: f\n    command: [echo]\n"
                  "    subscribe: [{ topic: '${SLUICE_TEST_UNSET}' }]\n");
  ASSERT_FALSE(bad.config);
  ASSERT_EQ(bad.errors.size(), 1u) << testing::dump(bad);
  EXPECT_EQ(bad.errors[0].line, 4);
  EXPECT_NE(bad.errors[0].message.find("SLUICE_TEST_UNSET is not set"), std::string::npos);
}

TEST(ConfigVars, AnAliasedValueIsExpandedOnce) {
  // "$$$$" -> "$$" once; a second pass through the alias would make it "$".
  auto r2 = load("functions:\n  - { name: f, command: [echo, &a \"$$$${y}\", *a],"
                 " subscribe: [{ topic: t }] }\n");
  ASSERT_TRUE(r2.config) << testing::dump(r2);
  EXPECT_EQ(r2.config->functions[0].command[1], "$${y}");
  EXPECT_EQ(r2.config->functions[0].command[2], "$${y}");
}

TEST(ConfigErrors, EmptyFileIsAnError) {
  for (const char* text : {"", "\n", "# only a comment\n"}) {
    auto r = load(text);
    ASSERT_FALSE(r.config) << "'" << text << "'";
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_NE(r.errors[0].message.find("the config file is empty"), std::string::npos);
  }
}

TEST(ConfigErrors, CommandAsAStringSaysWriteItAsAList) {
  auto r = load("functions:\n  - name: f\n    command: cat\n    subscribe: [{ topic: t }]\n");
  EXPECT_CONFIG_ERROR(r, "functions[0].command", 3, "write it as a list: [cat]");
  auto r2 = load("functions:\n  - name: f\n    command: python3 fn.py\n"
                 "    subscribe: [{ topic: t }]\n");
  EXPECT_CONFIG_ERROR(r2, "functions[0].command", 3, "write it as a list: [python3, fn.py]");
}

class OptionFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("sluice-optfile-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::binary) << text;
  }
  LoadResult load_kafka(const std::string& options) {
    return load_config_string("brokers:\n  k:\n    kind: kafka\n    bootstrap: h:1\n"
                              "    options:\n" + options +
                                  "functions:\n  - { name: f, command: [cat],"
                                  " subscribe: [{ topic: t }] }\n",
                              dir_.string());
  }
  std::filesystem::path dir_;
};

TEST_F(OptionFiles, FileOptionIsReadWithoutTheTrailingNewline) {
  write("secret", "s3cr3t\n");
  auto r = load_kafka("      sasl.username: u\n      sasl.password_file: ./secret\n");
  ASSERT_TRUE(r.config) << testing::dump(r);
  const auto& o = r.config->brokers[0].kafka().options;
  EXPECT_EQ(o.at("sasl.password"), "s3cr3t");
  EXPECT_EQ(o.count("sasl.password_file"), 0u);
  EXPECT_EQ(o.at("sasl.username"), "u");
}

TEST_F(OptionFiles, MissingOversizedOrDoubledIsAnErrorAtItsLine) {
  auto missing = load_kafka("      sasl.password_file: ./nope\n");
  EXPECT_CONFIG_ERROR(missing, "brokers.k.options.sasl.password_file", 6, "no such file");
  write("big", std::string(config::kMaxOptionFile + 1, 'x'));
  auto big = load_kafka("      sasl.password_file: big\n");
  EXPECT_CONFIG_ERROR(big, "brokers.k.options.sasl.password_file", 6, "larger than");
  write("secret", "s");
  auto both = load_kafka("      sasl.password: a\n      sasl.password_file: secret\n");
  EXPECT_CONFIG_ERROR(both, "brokers.k.options.sasl.password_file", 7, "not both");
}

}  // namespace
}  // namespace sluice::config::testing
