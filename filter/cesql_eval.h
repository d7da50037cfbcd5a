// Evaluation of a compiled Program against an event, and the implicit casts of the
// specification (section 3.7). Fail-fast: the first error is kept and every operator
// or function above it returns the zero value of its return type. Pure functions over
// their arguments; any thread.
#pragma once

#include "filter/cesql_ast.h"

namespace sluice::filter::detail {

Evaluation evaluate(const Program& p, const Event& e);

// The casts, exposed for the tests. String -> Integer: optional sign, base-10 digits,
// 32-bit range; String -> Boolean: "true" or "false" in any case.
bool cast_to_int(const Value& v, int32_t& out);
bool cast_to_bool(const Value& v, bool& out);
Value cast_to_string(const Value& v);

}  // namespace sluice::filter::detail
