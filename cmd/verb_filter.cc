// `sluice filter EXPRESSION [--event FILE|-]`: evaluates a CloudEvents SQL expression
// (filter/cesql.h, docs/FILTERS.md) against one CloudEvent in the JSON event format and
// prints one JSON object, {"result": <bool|integer|string>, "error": null | "<kind>"}.
// Exit 0: evaluated without error; 1: an evaluation error (the result the specification
// defines is still printed); 2: a parse error (the message and column on stderr, and
// {"result": false, "error": "parse"} on stdout), or an event that cannot be read.
// Without --event the expression meets the empty event: the required attributes exist
// and are empty (specversion is "1.0"), nothing else exists.
#include <iostream>
#include <nlohmann/json.hpp>

#include "cmd/cli.h"
#include "core/cloudevents.h"
#include "filter/cesql.h"

namespace sluice::cmd {
namespace {

void print(const nlohmann::ordered_json& result, std::optional<filter::ErrorKind> error) {
  nlohmann::ordered_json out;
  out["result"] = result;
  out["error"] = error ? nlohmann::ordered_json(filter::to_string(*error))
                       : nlohmann::ordered_json();
  // A string built from the expression's own bytes may be invalid UTF-8: replace, never throw.
  std::cout << out.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
}

nlohmann::ordered_json to_json(const filter::Value& v) {
  switch (v.type()) {
    case filter::Type::boolean: return v.as_bool();
    case filter::Type::integer: return v.as_int();
    case filter::Type::string: return std::string(v.as_string());
  }
  return nullptr;
}

}  // namespace

int filter_expression(const FilterArgs& a) {
  auto expr = filter::compile(a.expression);
  if (!expr) {
    const auto& e = expr.error();
    std::cerr << "sluice: parse error at column " << e.column << ": " << e.message << "\n";
    if (a.expression.size() <= 200 && a.expression.find('\n') == std::string::npos)
      std::cerr << "  " << a.expression << "\n  " << std::string(e.column - 1, ' ') << "^\n";
    print(false, filter::ErrorKind::parse);
    return kUsage;
  }
  for (const auto& u : expr.value().unknown_functions())
    std::cerr << "sluice: column " << u.column << ": " << u.message
              << " (a missingFunction error on every event)\n";
  Event event;
  if (!a.event.empty()) {
    const std::string text = read_data_arg(a.event == "-" ? a.event : "@" + a.event);
    auto parsed = cloudevents::parse_structured(text);
    if (!parsed)
      throw Exit{kUsage, "--event " + a.event + ": not a CloudEvent in the JSON format: " +
                             parsed.error().message};
    event = std::move(parsed).value();
  }
  const filter::Evaluation r = expr.value().evaluate(filter::EventView(event));
  print(to_json(r.result), r.error);
  return r.error ? kFailure : kOk;
}

}  // namespace sluice::cmd
