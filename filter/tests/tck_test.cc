// Runs every case of the CESQL TCK (tck/*.yaml, copied from the specification
// repository) and checks the result and the error kind. Cases where this engine knowingly
// differs from the file are listed in kDeviations with the reason and the outcome it
// gives instead; each such entry must still differ from the file (so a fixed TCK file
// fails here until the entry is removed), and nothing is skipped.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "filter/cesql.h"

namespace sluice::filter {
namespace {

struct Expected {
  std::optional<Value> result;  // absent: any result
  std::optional<ErrorKind> error;
};

struct Deviation {
  std::string_view file, name;
  Expected ours;
  std::string_view why;
};

const Deviation kDeviations[] = {
    {"not_operator.yaml", "Invalid int cast", {Value::boolean(false), std::nullopt},
     "specification 3.7: Integer -> Boolean is a cast every engine MUST support (10 is true); "
     "the file predates that rule (the sdk-go copy of the TCK expects false, no error)"},
    {"context_attributes_access.yaml", "Absent optional attribute",
     {Value::boolean(false), ErrorKind::missing_attribute},
     "specification 3.2: addressing an attribute the event lacks is a MissingAttributeError "
     "with the zero value of the (here undeterminable, so Boolean) return type"},
    {"context_attributes_access.yaml", "Access to optional boolean extension",
     {Value::view("true"), std::nullopt},
     "sluice's Event keeps every extension value as text, so a JSON boolean extension reads "
     "as the String \"true\" (`mybool = true` still holds through the implicit cast)"},
    {"context_attributes_access.yaml", "Access to optional integer extension",
     {Value::view("10"), std::nullopt},
     "as above: a JSON number extension reads as the String of its JSON text (`myint = 10` "
     "holds)"},
    {"subscriptions_api_recreations.yaml", "Conjunctive Normal Form (4)",
     {Value::boolean(false), std::nullopt},
     "the event (id myId, type example.event.success, source http://...) satisfies none of "
     "id = 'notmyId', source LIKE 'https://%', type LIKE '%.warning', so the second clause "
     "and with it the AND are false"},
    {"subscriptions_api_recreations.yaml", "Conjunctive Normal Form (5)",
     {Value::boolean(false), std::nullopt},
     "the same event: the first AND is false (case 4), so the short circuit (section 3.4.2) "
     "never reaches the missing attribute `myext`"},
};

std::optional<ErrorKind> error_kind(const std::string& s) {
  for (auto k : {ErrorKind::parse, ErrorKind::math, ErrorKind::cast, ErrorKind::missing_attribute,
                 ErrorKind::missing_function, ErrorKind::function_evaluation})
    if (s == to_string(k)) return k;
  ADD_FAILURE() << "unknown error kind in the TCK: " << s;
  return std::nullopt;
}

// A YAML scalar as a CESQL value: quoted scalars are Strings; plain ones are Booleans
// (true/false in any case), 32-bit Integers, or else Strings.
Value value_of(const YAML::Node& n) {
  const std::string s = n.Scalar();
  if (n.Tag() == "!") return Value::owned(s);
  std::string lower;
  for (char c : s) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "true" || lower == "false") return Value::boolean(lower == "true");
  try {
    size_t used = 0;
    const long long v = std::stoll(s, &used);
    if (used == s.size() && v >= INT32_MIN && v <= INT32_MAX)
      return Value::integer(static_cast<int32_t>(v));
  } catch (const std::exception&) {
  }
  return Value::owned(s);
}

void set_attribute(Event& e, const std::string& name, const std::string& value) {
  if (name == "id") e.id = value;
  else if (name == "source") e.source = value;
  else if (name == "specversion") e.specversion = value;
  else if (name == "type") e.type = value;
  else if (name == "datacontenttype") e.datacontenttype = value;
  else if (name == "dataschema") e.dataschema = value;
  else if (name == "subject") e.subject = value;
  else if (name == "time") e.time = value;
  else e.extensions.emplace_back(name, value);
}

// "Any valid event" (tck/README.md) when the case gives none: every context attribute set.
Event default_event() {
  Event e;
  e.id = "tck-id";
  e.source = "/tck";
  e.type = "io.cloudevents.tck";
  e.subject = "tck-subject";
  e.time = "2018-04-26T14:48:09+02:00";
  e.datacontenttype = "application/json";
  e.dataschema = "https://example.com/schema";
  return e;
}

std::string show(const Value& v) {
  switch (v.type()) {
    case Type::boolean: return v.as_bool() ? "true" : "false";
    case Type::integer: return std::to_string(v.as_int());
    case Type::string: return "'" + std::string(v.as_string()) + "'";
  }
  return "?";
}

struct Outcome {
  std::optional<Value> result;
  std::optional<ErrorKind> error;
};

Outcome run(const std::string& expression, const Event& e) {
  auto compiled = compile(expression);
  if (!compiled) return {std::nullopt, ErrorKind::parse};
  Evaluation r = compiled.value().evaluate(EventView(e));
  // Copy out of the event/expression views before they go.
  Value v = r.result.detached();
  return {v, r.error};
}

bool satisfies(const Outcome& got, const Expected& want) {
  if (got.error != want.error) return false;
  if (want.result && (!got.result || !(*got.result == *want.result))) return false;
  return true;
}

std::vector<std::string> tck_files() {
  std::vector<std::string> out;
  for (const auto& f : std::filesystem::directory_iterator(SLUICE_TCK_DIR))
    if (f.path().extension() == ".yaml") out.push_back(f.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

class Tck : public ::testing::TestWithParam<std::string> {};

TEST_P(Tck, EveryCase) {
  const std::string file = GetParam();
  YAML::Node root = YAML::LoadFile(std::string(SLUICE_TCK_DIR) + "/" + file);
  ASSERT_TRUE(root["tests"].IsSequence());
  int cases = 0;
  for (const auto& tc : root["tests"]) {
    const std::string name = tc["name"].as<std::string>();
    SCOPED_TRACE(file + ": " + name);
    // Four cases of subscriptions_api_recreations.yaml spell the key "expresion".
    const YAML::Node expr_node = tc["expression"] ? tc["expression"] : tc["expresion"];
    ASSERT_TRUE(expr_node) << "case without an expression";
    const std::string expression = expr_node.as<std::string>();
    Event e = tc["event"] ? Event{} : default_event();
    if (tc["event"]) {
      e.specversion.clear();
      for (const auto& kv : tc["event"])
        set_attribute(e, kv.first.as<std::string>(), kv.second.Scalar());
    }
    if (tc["eventOverrides"]) {
      for (const auto& kv : tc["eventOverrides"]) {
        const std::string k = kv.first.as<std::string>();
        std::erase_if(e.extensions, [&](const auto& x) { return x.first == k; });
        set_attribute(e, k, kv.second.Scalar());
      }
    }
    Expected tck;
    if (tc["result"]) tck.result = value_of(tc["result"]);
    if (tc["error"]) tck.error = error_kind(tc["error"].as<std::string>());

    const Outcome got = run(expression, e);
    const Deviation* dev = nullptr;
    for (const auto& d : kDeviations)
      if (d.file == file && d.name == name) dev = &d;
    const Expected& want = dev ? dev->ours : tck;
    EXPECT_TRUE(satisfies(got, want))
        << "expression: " << expression << "\n  got: "
        << (got.result ? show(*got.result) : "-") << " error "
        << (got.error ? to_string(*got.error) : "none") << "\n  want: "
        << (want.result ? show(*want.result) : "any") << " error "
        << (want.error ? to_string(*want.error) : "none");
    if (dev) {
      EXPECT_FALSE(satisfies(got, tck))
          << "the TCK now agrees with this engine: remove the deviation";
    }
    ++cases;
  }
  EXPECT_GT(cases, 0);
}

INSTANTIATE_TEST_SUITE_P(Files, Tck, ::testing::ValuesIn(tck_files()),
                         [](const auto& info) {
                           std::string n = info.param.substr(0, info.param.size() - 5);
                           return n;
                         });

// Every deviation names a case that exists.
TEST(TckDeviations, NameExistingCases) {
  for (const auto& d : kDeviations) {
    YAML::Node root = YAML::LoadFile(std::string(SLUICE_TCK_DIR) + "/" + std::string(d.file));
    bool found = false;
    for (const auto& tc : root["tests"]) found = found || tc["name"].as<std::string>() == d.name;
    EXPECT_TRUE(found) << d.file << ": " << d.name;
  }
}

}  // namespace
}  // namespace sluice::filter
