#include "filter/cesql.h"

#include "filter/cesql_eval.h"
#include "filter/cesql_parser.h"

namespace sluice::filter {

const char* to_string(ErrorKind k) noexcept {
  switch (k) {
    case ErrorKind::parse: return "parse";
    case ErrorKind::math: return "math";
    case ErrorKind::cast: return "cast";
    case ErrorKind::missing_attribute: return "missingAttribute";
    case ErrorKind::missing_function: return "missingFunction";
    case ErrorKind::function_evaluation: return "functionEvaluation";
  }
  return "unknown";
}

const char* to_string(Type t) noexcept {
  switch (t) {
    case Type::boolean: return "Boolean";
    case Type::integer: return "Integer";
    case Type::string: return "String";
  }
  return "unknown";
}

Value Value::zero(Type t) {
  switch (t) {
    case Type::integer: return integer(0);
    case Type::string: return view("");
    case Type::boolean: break;
  }
  return boolean(false);
}

bool operator==(const Value& a, const Value& b) {
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case Type::boolean: return a.as_bool() == b.as_bool();
    case Type::integer: return a.as_int() == b.as_int();
    case Type::string: return a.as_string() == b.as_string();
  }
  return false;
}

Expression::Expression(std::shared_ptr<const detail::Program> p) : p_(std::move(p)) {}

Evaluation Expression::evaluate(const EventView& event) const {
  return detail::evaluate(*p_, event.event());
}

bool Expression::matches(const EventView& event) const {
  const Evaluation r = evaluate(event);
  return !r.error && r.result.type() == Type::boolean && r.result.as_bool();
}

const std::string& Expression::text() const { return p_->text; }

const std::vector<ParseError>& Expression::unknown_functions() const {
  return p_->unknown_functions;
}

CompileResult compile(std::string_view text) {
  auto prog = detail::parse(text);
  if (!prog) return prog.error();
  return Expression(std::make_shared<const detail::Program>(std::move(prog).value()));
}

}  // namespace sluice::filter
