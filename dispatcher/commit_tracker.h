// Per-partition commit tracker: commits only the contiguous prefix of finished
// deliveries, so a crash never skips an event that had not finished.
//
// Works on delivered offsets in delivery order, not on offset arithmetic, so gaps
// (compacted Kafka topics, transaction markers, filtered streams) never stall it.
// Owned by the dispatcher thread; not thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>

namespace sluice::dispatcher {

class CommitTracker {
 public:
  // Records a delivery; offsets must increase (a lower or equal one is ignored and
  // reported false: a redelivery of something already tracked).
  bool delivered(int64_t offset);
  // Marks `offset` finished. Returns the next offset to commit when the finished
  // prefix advanced (last finished offset of the prefix + 1), else nullopt.
  std::optional<int64_t> finished(int64_t offset);
  size_t outstanding() const { return window_.size(); }
  // Everything tracked is forgotten (partition revoked).
  void reset() {
    window_.clear();
    last_delivered_ = -1;
  }

 private:
  struct Slot {
    int64_t offset;
    bool done;
  };
  std::deque<Slot> window_;
  int64_t last_delivered_ = -1;
};

}  // namespace sluice::dispatcher
