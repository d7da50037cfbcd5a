// CloudEvents SQL (CESQL) v1: the public face of the filter module.
//
//   auto expr = filter::compile("type LIKE 'com.example.%' AND int(priority) > 3");
//   if (!expr) ... expr.error().message, expr.error().column
//   bool pass = expr.value().matches(filter::EventView(event));
//
// compile() parses once (at config load); evaluate() walks the compiled tree per event.
// Attribute names are resolved at compile time (a context attribute becomes a field
// access, an extension a by-name scan of Event.extensions); evaluation allocates only
// when it builds a new string longer than std::string's small buffer (CONCAT,
// CONCAT_WS, LOWER, UPPER, or a slice of such a string). Comparisons, casts, LIKE, IN,
// LEFT/RIGHT/SUBSTRING/TRIM of attributes and attribute reads work on views of the
// event and of the expression.
//
// Threads: an Expression is immutable after compile(); evaluate() is const and touches
// no shared state, so one Expression may be evaluated on any number of threads at once
// (the dispatcher thread, in practice). An EventView borrows its Event: keep the Event
// alive (and unchanged) while the view and any String result of evaluate() are used.
//
// Semantics (docs/FILTERS.md): the CESQL v1 specification, fail-fast error mode: the
// first error stops the evaluation; the operator or function that saw the error returns
// the zero value of its return type (false, 0, ""), except where the specification
// defines another value for the function's own error (ABS, LEFT, RIGHT).
#pragma once

#include <boost/outcome/result.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/event.h"

namespace sluice::filter {

// Bounds of compile(): longer input or deeper nesting is a parse error.
inline constexpr size_t kMaxExpressionBytes = 4096;
inline constexpr int kMaxDepth = 128;  // nested operators, parentheses and calls
// Bound of evaluate(): CONCAT and CONCAT_WS refuse to build a longer string (a
// functionEvaluation error with ""), so nested calls cannot multiply an event's bytes.
inline constexpr size_t kMaxConcatBytes = 64 * 1024;

// The six error kinds of the specification (section 3.3), as the TCK spells them.
enum class ErrorKind : uint8_t {
  parse,
  math,
  cast,
  missing_attribute,
  missing_function,
  function_evaluation,
};
// "parse", "math", "cast", "missingAttribute", "missingFunction", "functionEvaluation".
const char* to_string(ErrorKind k) noexcept;

enum class Type : uint8_t { boolean, integer, string };
const char* to_string(Type t) noexcept;

// A CESQL value: Boolean, Integer (32-bit) or String. A String either views text that
// outlives the value (the event, the expression) or owns text it computed.
class Value {
 public:
  Value() = default;  // false
  static Value boolean(bool b) { Value v; v.type_ = Type::boolean; v.b_ = b; return v; }
  static Value integer(int32_t i) { Value v; v.type_ = Type::integer; v.i_ = i; return v; }
  static Value view(std::string_view s) { Value v; v.type_ = Type::string; v.view_ = s; return v; }
  static Value owned(std::string s) {
    Value v;
    v.type_ = Type::string;
    v.owned_ = std::move(s);
    v.owns_ = true;
    return v;
  }
  static Value zero(Type t);  // false, 0 or ""
  // A copy that owns its text: it outlives the event and the expression.
  Value detached() const {
    return type_ == Type::string && !owns_ ? owned(std::string(view_)) : *this;
  }

  Type type() const { return type_; }
  bool as_bool() const { return b_; }
  int32_t as_int() const { return i_; }
  std::string_view as_string() const { return owns_ ? std::string_view(owned_) : view_; }
  bool owns_text() const { return owns_; }

  friend bool operator==(const Value& a, const Value& b);

 private:
  Type type_ = Type::boolean;
  bool b_ = false;
  bool owns_ = false;
  int32_t i_ = 0;
  std::string_view view_;
  std::string owned_;
};

// The event as CESQL sees it: context attributes and extensions by name, as text.
// Required attributes (id, source, specversion, type) always exist; an optional context
// attribute exists when it is not empty; an extension exists when Event.extensions holds
// it (sluice keeps every extension value as text, so a JSON boolean or number extension
// reads as the String of its JSON text; the implicit casts make `flag = true` and
// `count > 3` work on it all the same).
class EventView {
 public:
  explicit EventView(const Event& e) : e_(&e) {}
  const Event& event() const { return *e_; }

 private:
  const Event* e_;
};

struct ParseError {
  std::string message;
  size_t column = 1;  // 1-based byte offset into the expression
};

struct Evaluation {
  Value result;
  std::optional<ErrorKind> error;  // the first error; none when it evaluated cleanly
};

namespace detail {
struct Program;
}

// A compiled expression. Copies share the immutable compiled program (config structs
// that hold a filter stay copyable; no copy recompiles).
class Expression {
 public:

  Evaluation evaluate(const EventView& event) const;
  // The filter rule of the specification (section 1.2): the result is Boolean true and
  // no error occurred.
  bool matches(const EventView& event) const;
  // The expression as written.
  const std::string& text() const;
  // Calls that can never be dispatched (an unknown function name, or a known one with
  // another number of arguments): the specification makes them a missingFunction error
  // at evaluation, so such an expression fails on every event. Config validation
  // should refuse it; `sluice filter` evaluates it as the specification says.
  const std::vector<ParseError>& unknown_functions() const;

 private:
  explicit Expression(std::shared_ptr<const detail::Program> p);
  std::shared_ptr<const detail::Program> p_;
  friend boost::outcome_v2::result<Expression, ParseError, boost::outcome_v2::policy::terminate>
  compile(std::string_view text);
};

using CompileResult =
    boost::outcome_v2::result<Expression, ParseError, boost::outcome_v2::policy::terminate>;

// Parses and resolves `text`; a ParseError names the column.
CompileResult compile(std::string_view text);

}  // namespace sluice::filter
