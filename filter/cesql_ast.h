// The compiled form of a CESQL expression: a tree of nodes in one vector (children by
// index), attribute names resolved to a context-attribute slot or an extension name,
// functions resolved to a built-in (or to "missing": a missingFunction error when
// evaluated), LIKE patterns compiled. Built by the parser, then immutable.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "filter/attribute.h"
#include "filter/cesql.h"
#include "filter/cesql_like.h"

namespace sluice::filter::detail {

enum class Op : uint8_t {
  literal, attribute, exists,
  not_, negate, like, in,
  mul, div, mod, add, sub,
  eq, ne, lt, le, gt, ge,
  and_, or_, xor_,
  call, missing_function,
};

enum class Fn : uint8_t {
  abs, length, concat, concat_ws, lower, upper, trim, left, right, substring2, substring3,
  int_, bool_, string_, is_bool, is_int,
};

struct Node {
  Op op = Op::literal;
  bool negated = false;                // NOT LIKE, NOT IN
  Attr attr = Attr::extension;         // attribute, exists
  Fn fn = Fn::abs;                     // call
  Value literal;                       // literal (a String owns its text)
  std::string name;                    // attribute or function name, as written
  std::optional<LikePattern> pattern;  // like
  uint32_t lhs = 0, rhs = 0;           // operands
  std::vector<uint32_t> args;          // call arguments; the IN set
  int depth = 1;                       // 1 + the deepest child's depth
};

struct Program {
  std::string text;
  std::vector<Node> nodes;
  uint32_t root = 0;
  std::vector<ParseError> unknown_functions;  // Expression::unknown_functions()
};

}  // namespace sluice::filter::detail
