// The CESQL grammar (specification section 2) by recursive descent with precedence
// climbing. Precedence, tightest first (section 3.6): function calls, NOT, unary -,
// LIKE, EXISTS, IN, * / %, + -, comparisons, AND OR XOR. Operators of equal precedence
// group left to right (`a OR b AND c` is `(a OR b) AND c`). Nesting deeper than
// kMaxDepth and input longer than kMaxExpressionBytes are parse errors, so neither the
// parser nor the evaluator recurses without bound. Pure function; any thread.
#pragma once

#include <string_view>

#include "filter/cesql_ast.h"

namespace sluice::filter::detail {

boost::outcome_v2::result<Program, ParseError, boost::outcome_v2::policy::terminate>
parse(std::string_view text);

}  // namespace sluice::filter::detail
