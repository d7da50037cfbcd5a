#include "filter/cesql_parser.h"

#include <algorithm>
#include <optional>

#include "filter/cesql_lexer.h"

namespace sluice::filter::detail {
namespace {

using ParseResult =
    boost::outcome_v2::result<Program, ParseError, boost::outcome_v2::policy::terminate>;
using Index = boost::outcome_v2::result<uint32_t, ParseError, boost::outcome_v2::policy::terminate>;

struct Builtin {
  std::string_view name;
  Fn fn;
  int min_args, max_args;  // max -1: variadic
};
constexpr Builtin kBuiltins[] = {
    {"ABS", Fn::abs, 1, 1},          {"LENGTH", Fn::length, 1, 1},
    {"CONCAT", Fn::concat, 0, -1},   {"CONCAT_WS", Fn::concat_ws, 1, -1},
    {"LOWER", Fn::lower, 1, 1},      {"UPPER", Fn::upper, 1, 1},
    {"TRIM", Fn::trim, 1, 1},        {"LEFT", Fn::left, 2, 2},
    {"RIGHT", Fn::right, 2, 2},      {"SUBSTRING", Fn::substring2, 2, 2},
    {"SUBSTRING", Fn::substring3, 3, 3},
    {"INT", Fn::int_, 1, 1},         {"BOOL", Fn::bool_, 1, 1},
    {"STRING", Fn::string_, 1, 1},   {"IS_BOOL", Fn::is_bool, 1, 1},
    {"IS_INT", Fn::is_int, 1, 1},
};

class Parser {
 public:
  Parser(std::vector<Token> toks, Program& prog) : t_(std::move(toks)), p_(prog) {}

  ParseResult run() {
    auto root = expression(0);
    if (!root) return root.error();
    if (peek().tok != Tok::end) return unexpected(peek());
    p_.root = root.value();
    return std::move(p_);
  }

 private:
  const Token& peek(size_t ahead = 0) const { return t_[std::min(i_ + ahead, t_.size() - 1)]; }
  const Token& take() { return t_[std::min(i_++, t_.size() - 1)]; }

  static ParseError at(const Token& t, std::string msg) {
    return ParseError{std::move(msg), t.column};
  }
  static ParseError unexpected(const Token& t) { return at(t, "unexpected " + describe(t)); }

  ParseError too_deep(const Token& t) const {
    return at(t, "expression nested deeper than " + std::to_string(kMaxDepth) + " levels");
  }

  Index add(Node n, const Token& where) {
    n.depth = 1;
    auto child = [&](uint32_t c) { n.depth = std::max(n.depth, p_.nodes[c].depth + 1); };
    switch (n.op) {
      case Op::literal: case Op::attribute: case Op::exists: break;
      case Op::not_: case Op::negate: case Op::like: child(n.lhs); break;
      case Op::in: child(n.lhs); for (auto a : n.args) child(a); break;
      case Op::call: case Op::missing_function: for (auto a : n.args) child(a); break;
      default: child(n.lhs); child(n.rhs); break;
    }
    if (n.depth > kMaxDepth) return too_deep(where);
    p_.nodes.push_back(std::move(n));
    return static_cast<uint32_t>(p_.nodes.size() - 1);
  }

  static int binary_precedence(Tok t, Op& op) {
    switch (t) {
      case Tok::star: op = Op::mul; return 4;
      case Tok::slash: op = Op::div; return 4;
      case Tok::percent: op = Op::mod; return 4;
      case Tok::plus: op = Op::add; return 3;
      case Tok::minus: op = Op::sub; return 3;
      case Tok::eq: op = Op::eq; return 2;
      case Tok::ne: op = Op::ne; return 2;
      case Tok::lt: op = Op::lt; return 2;
      case Tok::le: op = Op::le; return 2;
      case Tok::gt: op = Op::gt; return 2;
      case Tok::ge: op = Op::ge; return 2;
      case Tok::kw_and: op = Op::and_; return 1;
      case Tok::kw_or: op = Op::or_; return 1;
      case Tok::kw_xor: op = Op::xor_; return 1;
      default: return -1;
    }
  }
  static constexpr int kInPrecedence = 5;
  static constexpr int kLikePrecedence = 7;

  Index expression(int min_prec) {
    if (++depth_ > kMaxDepth) return too_deep(peek());
    auto left = unary();
    if (!left) return left;
    uint32_t l = left.value();
    for (;;) {
      const Token& t = peek();
      bool negated = false;
      Tok kind = t.tok;
      if (kind == Tok::kw_not && (peek(1).tok == Tok::kw_like || peek(1).tok == Tok::kw_in)) {
        negated = true;
        kind = peek(1).tok;
      }
      if (kind == Tok::kw_like && kLikePrecedence >= min_prec) {
        const Token& where = t;
        if (negated) take();
        take();
        const Token& pat = take();
        if (pat.tok != Tok::string)
          return at(pat, "LIKE needs a string literal pattern, found " + describe(pat));
        Node n;
        n.op = Op::like;
        n.negated = negated;
        n.lhs = l;
        n.pattern.emplace(pat.text);
        auto idx = add(std::move(n), where);
        if (!idx) return idx;
        l = idx.value();
        continue;
      }
      if (kind == Tok::kw_in && kInPrecedence >= min_prec) {
        const Token& where = t;
        if (negated) take();
        take();
        if (peek().tok != Tok::lparen)
          return at(peek(), "IN needs a parenthesised list, found " + describe(peek()));
        take();
        Node n;
        n.op = Op::in;
        n.negated = negated;
        n.lhs = l;
        if (auto bad = list(n.args, "the IN list")) return *bad;
        auto idx = add(std::move(n), where);
        if (!idx) return idx;
        l = idx.value();
        continue;
      }
      Op op;
      const int prec = binary_precedence(t.tok, op);
      if (prec < 0 || prec < min_prec) break;
      const Token& where = take();
      auto right = expression(prec + 1);
      if (!right) return right;
      Node n;
      n.op = op;
      n.lhs = l;
      n.rhs = right.value();
      auto idx = add(std::move(n), where);
      if (!idx) return idx;
      l = idx.value();
    }
    --depth_;
    return l;
  }

  // `expression (, expression)* )`, after the '('; the error, if any.
  std::optional<ParseError> list(std::vector<uint32_t>& out, const std::string& what) {
    for (;;) {
      auto e = expression(0);
      if (!e) return e.error();
      out.push_back(e.value());
      if (peek().tok == Tok::comma) { take(); continue; }
      if (peek().tok == Tok::rparen) { take(); return std::nullopt; }
      return at(peek(), "expected ',' or ')' in " + what + ", found " + describe(peek()));
    }
  }

  Index unary() {
    const Token& t = peek();
    if (t.tok == Tok::kw_not || t.tok == Tok::minus) {
      if (++depth_ > kMaxDepth) return too_deep(t);
      take();
      auto operand = unary();
      if (!operand) return operand;
      --depth_;
      Node n;
      n.op = t.tok == Tok::kw_not ? Op::not_ : Op::negate;
      n.lhs = operand.value();
      return add(std::move(n), t);
    }
    return primary();
  }

  Index primary() {
    const Token& t = take();
    Node n;
    switch (t.tok) {
      case Tok::integer:
        n.literal = Value::integer(t.ival);
        return add(std::move(n), t);
      case Tok::string:
        n.literal = Value::owned(t.text);
        return add(std::move(n), t);
      case Tok::kw_true:
      case Tok::kw_false:
        n.literal = Value::boolean(t.tok == Tok::kw_true);
        return add(std::move(n), t);
      case Tok::identifier:
        n.op = Op::attribute;
        n.name = t.text;
        n.attr = resolve_attribute(t.text);
        return add(std::move(n), t);
      case Tok::kw_exists: {
        const Token& id = take();
        if (id.tok != Tok::identifier)
          return at(id, "EXISTS needs an attribute name, found " + describe(id));
        n.op = Op::exists;
        n.name = id.text;
        n.attr = resolve_attribute(id.text);
        return add(std::move(n), t);
      }
      case Tok::function:
        return call(t);
      case Tok::lparen: {
        auto inner = expression(0);
        if (!inner) return inner;
        if (peek().tok != Tok::rparen)
          return at(peek(), "expected ')' to close the '(' at column " + std::to_string(t.column) +
                                ", found " + describe(peek()));
        take();
        return inner;
      }
      case Tok::end:
        return at(t, "expected an expression, found end of input");
      default:
        return at(t, "expected an expression, found " + describe(t));
    }
  }

  Index call(const Token& fname) {
    take();  // '(' (the lexer made a function token only before one)
    if (++depth_ > kMaxDepth) return too_deep(fname);
    Node n;
    n.name = fname.text;
    if (peek().tok == Tok::rparen) {
      take();
    } else if (auto bad = list(n.args, "the arguments of " + fname.text)) {
      return *bad;
    }
    --depth_;
    n.op = Op::missing_function;
    const int argc = static_cast<int>(n.args.size());
    bool known_name = false;
    for (const auto& b : kBuiltins) {
      known_name = known_name || b.name == n.name;
      if (b.name == n.name && argc >= b.min_args && (b.max_args < 0 || argc <= b.max_args)) {
        n.op = Op::call;
        n.fn = b.fn;
      }
    }
    if (n.op == Op::missing_function) {
      const std::string args = std::to_string(argc) + (argc == 1 ? " argument" : " arguments");
      p_.unknown_functions.push_back(
          at(fname, known_name ? "function " + n.name + " does not take " + args
                               : "unknown function " + n.name + " (with " + args + ")"));
    }
    return add(std::move(n), fname);
  }

  std::vector<Token> t_;
  size_t i_ = 0;
  int depth_ = 0;
  Program& p_;
};

}  // namespace

ParseResult parse(std::string_view text) {
  if (text.size() > kMaxExpressionBytes)
    return ParseError{"expression longer than " + std::to_string(kMaxExpressionBytes) + " bytes",
                      kMaxExpressionBytes + 1};
  auto toks = lex(text);
  if (!toks) return toks.error();
  Program prog;
  prog.text = std::string(text);
  Parser parser(std::move(toks).value(), prog);
  return parser.run();
}

}  // namespace sluice::filter::detail
