#include "filter/cesql_lexer.h"

#include <cctype>
#include <limits>
#include <optional>

namespace sluice::filter::detail {
namespace {

using LexResult =
    boost::outcome_v2::result<std::vector<Token>, ParseError, boost::outcome_v2::policy::terminate>;

bool is_lower_or_digit(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_word(char c) { return is_alpha(c) || is_digit(c) || c == '_'; }
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::toupper(static_cast<unsigned char>(a[i])) != b[i]) return false;
  return true;
}

struct Keyword {
  std::string_view upper;
  Tok tok;
};
constexpr Keyword kKeywords[] = {
    {"AND", Tok::kw_and},     {"OR", Tok::kw_or},         {"XOR", Tok::kw_xor},
    {"NOT", Tok::kw_not},     {"LIKE", Tok::kw_like},     {"EXISTS", Tok::kw_exists},
    {"IN", Tok::kw_in},       {"TRUE", Tok::kw_true},     {"FALSE", Tok::kw_false},
};

// Can the previous token end an operand (then a following '-' is an operator)?
bool ends_operand(const std::vector<Token>& out) {
  if (out.empty()) return false;
  switch (out.back().tok) {
    case Tok::integer: case Tok::string: case Tok::identifier: case Tok::rparen:
    case Tok::kw_true: case Tok::kw_false:
      return true;
    default:
      return false;
  }
}

ParseError error_at(size_t pos, std::string msg) { return ParseError{std::move(msg), pos + 1}; }

// The attribute naming rule of CloudEvents: lower-case letters and digits.
std::optional<ParseError> bad_attribute_name(std::string_view word, size_t pos) {
  for (char d : word)
    if (!is_lower_or_digit(d))
      return error_at(pos, "attribute names are lower-case letters and digits: '" +
                               std::string(word) + "'");
  return std::nullopt;
}

}  // namespace

std::string describe(const Token& t) {
  switch (t.tok) {
    case Tok::end: return "end of input";
    case Tok::string: return "a string literal";
    case Tok::integer: return "the integer " + std::to_string(t.ival);
    case Tok::identifier: return "the attribute '" + t.text + "'";
    case Tok::function: return "the function '" + t.text + "'";
    default: return "'" + t.text + "'";
  }
}

LexResult lex(std::string_view s) {
  std::vector<Token> out;
  size_t i = 0;
  const size_t n = s.size();
  auto push = [&](Tok tok, size_t start, size_t len) {
    Token t;
    t.tok = tok;
    t.text = std::string(s.substr(start, len));
    t.column = start + 1;
    out.push_back(std::move(t));
  };
  while (i < n) {
    const char c = s[i];
    if (is_space(c)) { ++i; continue; }
    const size_t start = i;
    // Integer literal, with a glued sign where an operand is expected.
    if (is_digit(c) || ((c == '-' || c == '+') && i + 1 < n && is_digit(s[i + 1]) &&
                        !ends_operand(out))) {
      bool neg = c == '-';
      if (c == '-' || c == '+') ++i;
      size_t j = i;
      while (j < n && is_word(s[j])) ++j;
      std::string_view word = s.substr(i, j - i);
      bool all_digits = true;
      for (char d : word) all_digits = all_digits && is_digit(d);
      if (!all_digits) {
        // [a-z0-9]+ starting with a digit is an attribute name ("1st"); not with a sign.
        if (start != i) return error_at(start, "a sign must be followed by digits only");
        if (auto bad = bad_attribute_name(word, start)) return *bad;
        push(Tok::identifier, start, j - start);
        i = j;
        continue;
      }
      int64_t v = 0;
      for (char d : word) {
        v = v * 10 + (d - '0');
        if (v > int64_t{std::numeric_limits<int32_t>::max()} + 1) break;
      }
      if (neg) v = -v;
      if (v > std::numeric_limits<int32_t>::max() || v < std::numeric_limits<int32_t>::min())
        return error_at(start, "integer literal '" + std::string(s.substr(start, j - start)) +
                                   "' is outside the 32-bit range");
      push(Tok::integer, start, j - start);
      out.back().ival = static_cast<int32_t>(v);
      i = j;
      continue;
    }
    if (is_alpha(c) || c == '_') {
      size_t j = i;
      while (j < n && is_word(s[j])) ++j;
      std::string_view word = s.substr(i, j - i);
      Tok kw = Tok::end;
      for (const auto& k : kKeywords)
        if (iequals(word, k.upper)) kw = k.tok;
      if (kw != Tok::end) {
        push(kw, start, j - start);
        i = j;
        continue;
      }
      size_t k = j;
      while (k < n && is_space(s[k])) ++k;
      if (k < n && s[k] == '(') {
        for (char d : word)
          if (!is_alpha(d) && d != '_')
            return error_at(start, "function names are letters and '_': '" + std::string(word) +
                                       "'");
        if (!is_alpha(word[0]))
          return error_at(start,
                          "a function name starts with a letter: '" + std::string(word) + "'");
        push(Tok::function, start, j - start);
        for (auto& ch : out.back().text)
          ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        i = j;
        continue;
      }
      if (auto bad = bad_attribute_name(word, start)) return *bad;
      push(Tok::identifier, start, j - start);
      i = j;
      continue;
    }
    if (c == '\'' || c == '"') {
      std::string value;
      size_t j = i + 1;
      bool closed = false;
      while (j < n) {
        const char d = s[j];
        if (d == '\\' && j + 1 < n) {
          if (s[j + 1] == c) value += c;                    // \' or \"
          else { value += d; value += s[j + 1]; }           // any other pair stays as written
          j += 2;
          continue;
        }
        if (d == c) {
          if (j + 1 < n && s[j + 1] == c) { value += c; j += 2; continue; }  // '' or ""
          closed = true;
          ++j;
          break;
        }
        value += d;
        ++j;
      }
      if (!closed) return error_at(start, "unterminated string literal");
      Token t;
      t.tok = Tok::string;
      t.text = std::move(value);
      t.column = start + 1;
      out.push_back(std::move(t));
      i = j;
      continue;
    }
    auto two = [&](char next) { return i + 1 < n && s[i + 1] == next; };
    switch (c) {
      case '(': push(Tok::lparen, i, 1); ++i; continue;
      case ')': push(Tok::rparen, i, 1); ++i; continue;
      case ',': push(Tok::comma, i, 1); ++i; continue;
      case '*': push(Tok::star, i, 1); ++i; continue;
      case '/': push(Tok::slash, i, 1); ++i; continue;
      case '%': push(Tok::percent, i, 1); ++i; continue;
      case '+': push(Tok::plus, i, 1); ++i; continue;
      case '-': push(Tok::minus, i, 1); ++i; continue;
      case '=': push(Tok::eq, i, 1); ++i; continue;
      case '!':
        if (two('=')) { push(Tok::ne, i, 2); i += 2; continue; }
        break;
      case '<':
        if (two('=')) { push(Tok::le, i, 2); i += 2; continue; }
        if (two('>')) { push(Tok::ne, i, 2); i += 2; continue; }
        push(Tok::lt, i, 1); ++i; continue;
      case '>':
        if (two('=')) { push(Tok::ge, i, 2); i += 2; continue; }
        push(Tok::gt, i, 1); ++i; continue;
      default:
        break;
    }
    const unsigned char u = static_cast<unsigned char>(c);
    std::string shown = (u >= 0x20 && u < 0x7f) ? std::string(1, c) : "\\x" + [&] {
      const char* hex = "0123456789abcdef";
      return std::string{hex[u >> 4], hex[u & 15]};
    }();
    return error_at(i, "unexpected character '" + shown + "'");
  }
  Token e;
  e.tok = Tok::end;
  e.column = n + 1;
  out.push_back(std::move(e));
  return out;
}

}  // namespace sluice::filter::detail
