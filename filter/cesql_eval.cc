#include "filter/cesql_eval.h"

#include <charconv>
#include <limits>

namespace sluice::filter::detail {
namespace {

constexpr int32_t kIntMin = std::numeric_limits<int32_t>::min();
constexpr int32_t kIntMax = std::numeric_limits<int32_t>::max();

struct Ctx {
  const Program& p;
  const Event& e;
  std::optional<ErrorKind> err;
  void fail(ErrorKind k) {
    if (!err) err = k;
  }
};

// ---- UTF-8 characters (code points; an invalid byte counts as one character) ----

bool is_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

size_t char_count(std::string_view s) {
  size_t n = 0;
  for (char c : s) n += !is_continuation(static_cast<unsigned char>(c));
  return n;
}
// Byte offset of character `k` (0-based; k <= char_count).
size_t char_offset(std::string_view s, size_t k) {
  size_t i = 0;
  while (k > 0 && i < s.size()) {
    ++i;
    while (i < s.size() && is_continuation(static_cast<unsigned char>(s[i]))) ++i;
    --k;
  }
  return i;
}
// The code point at `i` and its length; an invalid sequence is one byte, code point -1.
std::pair<int32_t, size_t> decode(std::string_view s, size_t i) {
  const auto b = static_cast<unsigned char>(s[i]);
  int len = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
  if (len == 0 || i + len > s.size()) return {-1, 1};
  if (len == 1) return {b, 1};
  int32_t cp = b & (0x3F >> (len - 1));
  for (int k = 1; k < len; ++k) {
    const auto c = static_cast<unsigned char>(s[i + k]);
    if (!is_continuation(c)) return {-1, 1};
    cp = (cp << 6) | (c & 0x3F);
  }
  return {cp, static_cast<size_t>(len)};
}
// Unicode White_Space.
bool is_unicode_space(int32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}
std::string_view trim(std::string_view s) {
  size_t b = 0;
  while (b < s.size()) {
    auto [cp, len] = decode(s, b);
    if (!is_unicode_space(cp)) break;
    b += len;
  }
  size_t e = s.size();
  while (e > b) {
    size_t start = e - 1;
    while (start > b && is_continuation(static_cast<unsigned char>(s[start]))) --start;
    auto [cp, len] = decode(s, start);
    if (start + len != e || !is_unicode_space(cp)) break;
    e = start;
  }
  return s.substr(b, e - b);
}

std::string_view substring_of(std::string_view s, size_t from, size_t count_chars, bool to_end) {
  const size_t b = char_offset(s, from);
  if (to_end) return s.substr(b);
  const size_t e = b + char_offset(s.substr(b), count_chars);
  return s.substr(b, e - b);
}

// `part` (a piece of `whole`'s text) as a value: a view when `whole` views text that
// outlives it, a copy when `whole` owns its text.
Value slice(const Value& whole, std::string_view part) {
  if (!whole.owns_text()) return Value::view(part);
  return Value::owned(std::string(part));
}

Value eval(uint32_t idx, Ctx& c);

// Evaluates node `idx` and casts it; false (with the error kept in `c`) on any error.
bool eval_int(uint32_t idx, Ctx& c, int32_t& out) {
  Value v = eval(idx, c);
  if (c.err) return false;
  if (!cast_to_int(v, out)) { c.fail(ErrorKind::cast); return false; }
  return true;
}
bool eval_bool(uint32_t idx, Ctx& c, bool& out) {
  Value v = eval(idx, c);
  if (c.err) return false;
  if (!cast_to_bool(v, out)) { c.fail(ErrorKind::cast); return false; }
  return true;
}
bool eval_string(uint32_t idx, Ctx& c, Value& out) {
  Value v = eval(idx, c);
  if (c.err) return false;
  out = cast_to_string(v);
  return true;
}

// Casts `v` to `t` (the IN and `=` rule: the other side's type decides).
bool cast_to(const Value& v, Type t, Value& out) {
  switch (t) {
    case Type::boolean: {
      bool b;
      if (!cast_to_bool(v, b)) return false;
      out = Value::boolean(b);
      return true;
    }
    case Type::integer: {
      int32_t i;
      if (!cast_to_int(v, i)) return false;
      out = Value::integer(i);
      return true;
    }
    case Type::string: out = cast_to_string(v); return true;
  }
  return false;
}

Value arithmetic(const Node& n, Ctx& c) {
  int32_t a, b;
  if (!eval_int(n.lhs, c, a) || !eval_int(n.rhs, c, b)) return Value::integer(0);
  int64_t r = 0;
  switch (n.op) {
    case Op::add: r = int64_t{a} + b; break;
    case Op::sub: r = int64_t{a} - b; break;
    case Op::mul: r = int64_t{a} * b; break;
    case Op::div:
    case Op::mod:
      if (b == 0) { c.fail(ErrorKind::math); return Value::integer(0); }
      r = n.op == Op::div ? int64_t{a} / b : int64_t{a} % b;  // truncated, sign of a
      break;
    default: break;
  }
  if (r < kIntMin || r > kIntMax) { c.fail(ErrorKind::math); return Value::integer(0); }
  return Value::integer(static_cast<int32_t>(r));
}

Value compare(const Node& n, Ctx& c) {
  if (n.op == Op::eq || n.op == Op::ne) {
    Value x = eval(n.lhs, c);
    if (c.err) return Value::boolean(false);
    Value y = eval(n.rhs, c);
    if (c.err) return Value::boolean(false);
    Value xc;
    if (!cast_to(x, y.type(), xc)) { c.fail(ErrorKind::cast); return Value::boolean(false); }
    const bool eq = xc == y;
    return Value::boolean(n.op == Op::eq ? eq : !eq);
  }
  int32_t a, b;
  if (!eval_int(n.lhs, c, a) || !eval_int(n.rhs, c, b)) return Value::boolean(false);
  switch (n.op) {
    case Op::lt: return Value::boolean(a < b);
    case Op::le: return Value::boolean(a <= b);
    case Op::gt: return Value::boolean(a > b);
    default: return Value::boolean(a >= b);
  }
}

Value logic(const Node& n, Ctx& c) {
  bool a, b;
  if (!eval_bool(n.lhs, c, a)) return Value::boolean(false);
  if (n.op == Op::and_ && !a) return Value::boolean(false);  // short circuit
  if (n.op == Op::or_ && a) return Value::boolean(true);
  if (!eval_bool(n.rhs, c, b)) return Value::boolean(false);
  return Value::boolean(n.op == Op::xor_ ? a != b : b);
}

Value in_set(const Node& n, Ctx& c) {
  Value x = eval(n.lhs, c);
  if (c.err) return Value::boolean(false);
  for (uint32_t a : n.args) {
    Value y = eval(a, c);
    if (c.err) return Value::boolean(false);
    Value yc;
    if (!cast_to(y, x.type(), yc)) { c.fail(ErrorKind::cast); return Value::boolean(false); }
    if (yc == x) return Value::boolean(!n.negated);  // stops at the first match, as OR does
  }
  return Value::boolean(n.negated);
}

Value call(const Node& n, Ctx& c) {
  const auto& args = n.args;
  switch (n.fn) {
    case Fn::abs: {
      int32_t x;
      if (!eval_int(args[0], c, x)) return Value::integer(0);
      if (x == kIntMin) { c.fail(ErrorKind::math); return Value::integer(kIntMax); }
      return Value::integer(x < 0 ? -x : x);
    }
    case Fn::length: {
      Value s;
      if (!eval_string(args[0], c, s)) return Value::integer(0);
      return Value::integer(static_cast<int32_t>(char_count(s.as_string())));
    }
    case Fn::concat:
    case Fn::concat_ws: {
      const bool ws = n.fn == Fn::concat_ws;
      Value delim;
      if (ws && !eval_string(args[0], c, delim)) return Value::view("");
      const size_t first = ws ? 1 : 0;
      if (args.size() == first) return Value::view("");
      std::string out;
      for (size_t i = first; i < args.size(); ++i) {
        Value s;
        if (!eval_string(args[i], c, s)) return Value::view("");
        if (args.size() == first + 1) return s;  // one part: no copy
        const std::string_view sep = i > first ? delim.as_string() : std::string_view();
        if (out.size() + sep.size() + s.as_string().size() > kMaxConcatBytes) {
          c.fail(ErrorKind::function_evaluation);
          return Value::view("");
        }
        out += sep;
        out += s.as_string();
      }
      return Value::owned(std::move(out));
    }
    case Fn::lower:
    case Fn::upper: {
      Value s;
      if (!eval_string(args[0], c, s)) return Value::view("");
      std::string out(s.as_string());
      for (auto& ch : out) {
        if (n.fn == Fn::lower && ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
        if (n.fn == Fn::upper && ch >= 'a' && ch <= 'z') ch = static_cast<char>(ch - 'a' + 'A');
      }
      return Value::owned(std::move(out));
    }
    case Fn::trim: {
      Value s;
      if (!eval_string(args[0], c, s)) return Value::view("");
      std::string_view t = trim(s.as_string());
      return slice(s, t);
    }
    case Fn::left:
    case Fn::right: {
      Value s;
      int32_t y;
      if (!eval_string(args[0], c, s) || !eval_int(args[1], c, y)) return Value::view("");
      if (y < 0) { c.fail(ErrorKind::function_evaluation); return s; }
      const size_t len = char_count(s.as_string());
      if (static_cast<size_t>(y) >= len) return s;
      const size_t from = n.fn == Fn::left ? 0 : len - static_cast<size_t>(y);
      return slice(s, substring_of(s.as_string(), from, static_cast<size_t>(y), false));
    }
    case Fn::substring2:
    case Fn::substring3: {
      Value s;
      int32_t pos, len = 0;
      if (!eval_string(args[0], c, s) || !eval_int(args[1], c, pos)) return Value::view("");
      if (n.fn == Fn::substring3 && !eval_int(args[2], c, len)) return Value::view("");
      const int64_t count = static_cast<int64_t>(char_count(s.as_string()));
      if (pos > count || pos < -count || len < 0) {
        c.fail(ErrorKind::function_evaluation);
        return Value::view("");
      }
      if (pos == 0) return Value::view("");
      const size_t from = static_cast<size_t>(pos > 0 ? pos - 1 : count + pos);
      return slice(s, substring_of(s.as_string(), from, static_cast<size_t>(len),
                                   n.fn == Fn::substring2));
    }
    case Fn::int_: {
      int32_t x;
      if (!eval_int(args[0], c, x)) return Value::integer(0);
      return Value::integer(x);
    }
    case Fn::bool_: {
      bool x;
      if (!eval_bool(args[0], c, x)) return Value::boolean(false);
      return Value::boolean(x);
    }
    case Fn::string_: {
      Value s;
      if (!eval_string(args[0], c, s)) return Value::view("");
      return s;
    }
    case Fn::is_bool:
    case Fn::is_int: {
      Value s;
      if (!eval_string(args[0], c, s)) return Value::boolean(false);
      bool b;
      int32_t i;
      return Value::boolean(n.fn == Fn::is_bool ? cast_to_bool(s, b) : cast_to_int(s, i));
    }
  }
  return Value::boolean(false);
}

Value eval(uint32_t idx, Ctx& c) {
  const Node& n = c.p.nodes[idx];
  switch (n.op) {
    case Op::literal:
      return n.literal.type() == Type::string ? Value::view(n.literal.as_string()) : n.literal;
    case Op::attribute: {
      auto v = lookup(c.e, n.attr, n.name);
      if (!v) { c.fail(ErrorKind::missing_attribute); return Value::boolean(false); }
      return Value::view(*v);
    }
    case Op::exists:
      return Value::boolean(lookup(c.e, n.attr, n.name).has_value());
    case Op::not_: {
      bool b;
      if (!eval_bool(n.lhs, c, b)) return Value::boolean(false);
      return Value::boolean(!b);
    }
    case Op::negate: {
      int32_t i;
      if (!eval_int(n.lhs, c, i)) return Value::integer(0);
      if (i == kIntMin) { c.fail(ErrorKind::math); return Value::integer(kIntMax); }
      return Value::integer(-i);
    }
    case Op::like: {
      Value s;
      if (!eval_string(n.lhs, c, s)) return Value::boolean(false);
      const bool m = n.pattern->matches(s.as_string());
      return Value::boolean(n.negated ? !m : m);
    }
    case Op::in:
      return in_set(n, c);
    case Op::mul: case Op::div: case Op::mod: case Op::add: case Op::sub:
      return arithmetic(n, c);
    case Op::eq: case Op::ne: case Op::lt: case Op::le: case Op::gt: case Op::ge:
      return compare(n, c);
    case Op::and_: case Op::or_: case Op::xor_:
      return logic(n, c);
    case Op::call:
      return call(n, c);
    case Op::missing_function:
      c.fail(ErrorKind::missing_function);
      return Value::boolean(false);
  }
  return Value::boolean(false);
}

}  // namespace

bool cast_to_int(const Value& v, int32_t& out) {
  switch (v.type()) {
    case Type::integer: out = v.as_int(); return true;
    case Type::boolean: out = v.as_bool() ? 1 : 0; return true;
    case Type::string: {
      std::string_view s = v.as_string();
      bool neg = false;
      if (!s.empty() && (s[0] == '+' || s[0] == '-')) { neg = s[0] == '-'; s.remove_prefix(1); }
      if (s.empty()) return false;
      int64_t r = 0;
      for (char ch : s) {
        if (ch < '0' || ch > '9') return false;
        r = r * 10 + (ch - '0');
        if (r > int64_t{kIntMax} + 1) return false;
      }
      if (neg) r = -r;
      if (r < kIntMin || r > kIntMax) return false;
      out = static_cast<int32_t>(r);
      return true;
    }
  }
  return false;
}

bool cast_to_bool(const Value& v, bool& out) {
  switch (v.type()) {
    case Type::boolean: out = v.as_bool(); return true;
    case Type::integer: out = v.as_int() != 0; return true;
    case Type::string: {
      auto is = [](std::string_view s, std::string_view lower) {
        if (s.size() != lower.size()) return false;
        for (size_t i = 0; i < s.size(); ++i) {
          char ch = s[i];
          if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
          if (ch != lower[i]) return false;
        }
        return true;
      };
      if (is(v.as_string(), "true")) { out = true; return true; }
      if (is(v.as_string(), "false")) { out = false; return true; }
      return false;
    }
  }
  return false;
}

Value cast_to_string(const Value& v) {
  switch (v.type()) {
    case Type::string: return v;
    case Type::boolean: return Value::view(v.as_bool() ? "true" : "false");
    case Type::integer: {
      char buf[16];
      auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v.as_int());
      return Value::owned(std::string(buf, end));  // fits the small-string buffer
    }
  }
  return Value::view("");
}

Evaluation evaluate(const Program& p, const Event& e) {
  Ctx c{p, e, std::nullopt};
  Value v = eval(p.root, c);
  return Evaluation{std::move(v), c.err};
}

}  // namespace sluice::filter::detail
