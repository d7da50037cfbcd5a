// The LIKE pattern (specification section 3.4.3), compiled once: `%` is any run of
// characters, `_` one character (a UTF-8 code point), `\%`, `\_` and `\\` the character
// itself; any other backslash is a backslash. Matching splits the pattern at `%` into
// segments: the first is anchored at the start, the last at the end, the ones between
// are found leftmost in turn (string_view::find for a segment without `_`). No
// backtracking beyond one segment, no allocation.
// Immutable after compile; any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::filter::detail {

class LikePattern {
 public:
  explicit LikePattern(std::string_view pattern);
  bool matches(std::string_view text) const;

 private:
  static constexpr int16_t kAnyChar = -1;
  using Segment = std::vector<int16_t>;  // bytes 0..255, or kAnyChar
  // A segment without `_` as text, searched with string_view::find (memchr-fast).
  struct Literal {
    bool plain = true;
    std::string text;
  };
  // Matches `seg` at `pos`; the end position, or npos.
  static size_t match_at(const Segment& seg, std::string_view text, size_t pos);
  // Matches `seg` so that it ends at `end`; its start, or npos.
  static size_t match_ending_at(const Segment& seg, std::string_view text, size_t end);
  std::vector<Segment> segments_;  // size() == number of '%' runs + 1
  std::vector<Literal> literals_;  // one per segment
};

}  // namespace sluice::filter::detail
