#include "filter/cesql_like.h"

#include <string>

namespace sluice::filter::detail {
namespace {

constexpr size_t npos = std::string_view::npos;
bool is_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// One code point forward from `pos` (< size); an invalid byte counts as one character.
size_t next_char(std::string_view s, size_t pos) {
  ++pos;
  while (pos < s.size() && is_continuation(static_cast<unsigned char>(s[pos]))) ++pos;
  return pos;
}
// One code point back from `pos` (> 0).
size_t prev_char(std::string_view s, size_t pos) {
  --pos;
  while (pos > 0 && is_continuation(static_cast<unsigned char>(s[pos]))) --pos;
  return pos;
}

}  // namespace

LikePattern::LikePattern(std::string_view p) {
  segments_.emplace_back();
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '%') {
      if (!segments_.back().empty() || segments_.size() == 1) segments_.emplace_back();
      continue;
    }
    if (c == '_') {
      segments_.back().push_back(kAnyChar);
      continue;
    }
    if (c == '\\' && i + 1 < p.size() && (p[i + 1] == '%' || p[i + 1] == '_' || p[i + 1] == '\\')) {
      segments_.back().push_back(static_cast<unsigned char>(p[++i]));
      continue;
    }
    segments_.back().push_back(static_cast<unsigned char>(c));
  }
  // "a%%b" and "%%" collapse: an empty segment between two '%' runs adds nothing. A
  // leading '%' leaves an empty first segment, a trailing one an empty last segment.
  for (const Segment& seg : segments_) {
    Literal lit;
    for (int16_t item : seg) {
      if (item == kAnyChar) lit.plain = false;
      else lit.text += static_cast<char>(item);
    }
    literals_.push_back(std::move(lit));
  }
}

size_t LikePattern::match_at(const Segment& seg, std::string_view text, size_t pos) {
  for (int16_t item : seg) {
    if (pos >= text.size()) return npos;
    if (item == kAnyChar) {
      pos = next_char(text, pos);
    } else {
      if (static_cast<unsigned char>(text[pos]) != item) return npos;
      ++pos;
    }
  }
  return pos;
}

size_t LikePattern::match_ending_at(const Segment& seg, std::string_view text, size_t end) {
  for (auto it = seg.rbegin(); it != seg.rend(); ++it) {
    if (end == 0) return npos;
    if (*it == kAnyChar) {
      end = prev_char(text, end);
    } else {
      if (static_cast<unsigned char>(text[end - 1]) != *it) return npos;
      --end;
    }
  }
  return end;
}

bool LikePattern::matches(std::string_view text) const {
  if (segments_.size() == 1) return match_at(segments_[0], text, 0) == text.size();
  size_t pos = match_at(segments_.front(), text, 0);
  if (pos == npos) return false;
  size_t tail = match_ending_at(segments_.back(), text, text.size());
  if (tail == npos || tail < pos) return false;
  for (size_t k = 1; k + 1 < segments_.size(); ++k) {
    const Segment& seg = segments_[k];
    size_t found = npos;
    if (literals_[k].plain) {
      const size_t at = text.substr(0, tail).find(literals_[k].text, pos);
      if (at == npos) return false;
      pos = at + literals_[k].text.size();
      continue;
    }
    for (size_t start = pos; start < tail; start = next_char(text, start)) {
      size_t end = match_at(seg, text.substr(0, tail), start);
      if (end != npos) {
        found = end;
        break;
      }
    }
    if (found == npos) return false;
    pos = found;
  }
  return true;
}

}  // namespace sluice::filter::detail
