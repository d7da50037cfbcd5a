#include "dispatcher/commit_tracker.h"

#include <algorithm>

namespace sluice::dispatcher {

bool CommitTracker::delivered(int64_t offset) {
  if (offset <= last_delivered_) return false;
  last_delivered_ = offset;
  window_.push_back({offset, false});
  return true;
}

std::optional<int64_t> CommitTracker::finished(int64_t offset) {
  if (window_.empty()) return std::nullopt;
  // Mostly the oldest finishes first (a quick function, ordered lanes): no search.
  auto it = window_.front().offset == offset
                ? window_.begin()
                : std::lower_bound(window_.begin(), window_.end(), offset,
                                   [](const Slot& s, int64_t o) { return s.offset < o; });
  if (it == window_.end() || it->offset != offset) return std::nullopt;
  it->done = true;
  std::optional<int64_t> next;
  while (!window_.empty() && window_.front().done) {
    next = window_.front().offset + 1;
    window_.pop_front();
  }
  return next;
}

}  // namespace sluice::dispatcher
