// CESQL tokens (the lexical grammar of the specification, section 2, and the ANTLR
// lexer cesql/CESQLLexer.g4 of the specification repository).
//
// Keywords are case-insensitive. A `-` or `+` glued to digits is part of an integer
// literal where an operand is expected (`-4`, `NOT -1`, `3 * -2`) and an operator after
// an operand (`4-1` is 4 - 1). String literals take '...' or "..."; inside them `\'`
// and `''` (single-quoted) or `\"` and `""` (double-quoted) stand for the quote, and any
// other backslash is kept as it is (so a LIKE pattern keeps its `\%` and `\_`).
// Pure functions; any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "filter/cesql.h"

namespace sluice::filter::detail {

enum class Tok : uint8_t {
  end,
  lparen, rparen, comma,
  star, slash, percent, plus, minus,
  eq, ne, lt, le, gt, ge,
  kw_and, kw_or, kw_xor, kw_not, kw_like, kw_exists, kw_in, kw_true, kw_false,
  integer,     // ival
  string,      // text: the value, escapes resolved
  identifier,  // text: an attribute name ([a-z0-9]+)
  function,    // text: the function name in upper case (a name followed by '(')
};

struct Token {
  Tok tok = Tok::end;
  std::string text;
  int32_t ival = 0;
  size_t column = 1;  // 1-based
};

// What a token looks like in an error message: `'AND'`, `end of input`, ...
std::string describe(const Token& t);

// The tokens of `text`, ending with Tok::end; a ParseError on a bad character, an
// unterminated string, an integer outside 32 bits or a malformed name.
boost::outcome_v2::result<std::vector<Token>, ParseError, boost::outcome_v2::policy::terminate>
lex(std::string_view text);

}  // namespace sluice::filter::detail
