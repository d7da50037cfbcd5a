#include "broker-adapters/local/murmur2.h"

namespace sluice::local {

int32_t murmur2(std::string_view data) noexcept {
  // Java's int arithmetic wraps; unsigned arithmetic here does the same, and `>>>`
  // (logical shift) is a plain shift of the unsigned value.
  const uint32_t m = 0x5bd1e995u;
  const int r = 24;
  const size_t len = data.size();
  const auto* b = reinterpret_cast<const unsigned char*>(data.data());
  uint32_t h = 0x9747b28cu ^ static_cast<uint32_t>(len);
  const size_t len4 = len / 4;
  for (size_t i = 0; i < len4; ++i) {
    const size_t i4 = i * 4;
    uint32_t k = uint32_t{b[i4]} | (uint32_t{b[i4 + 1]} << 8) | (uint32_t{b[i4 + 2]} << 16) |
                 (uint32_t{b[i4 + 3]} << 24);
    k *= m;
    k ^= k >> r;
    k *= m;
    h *= m;
    h ^= k;
  }
  const size_t tail = len & ~size_t{3};
  switch (len % 4) {
    case 3: h ^= uint32_t{b[tail + 2]} << 16; [[fallthrough]];
    case 2: h ^= uint32_t{b[tail + 1]} << 8; [[fallthrough]];
    case 1:
      h ^= uint32_t{b[tail]};
      h *= m;
  }
  h ^= h >> 13;
  h *= m;
  h ^= h >> 15;
  return static_cast<int32_t>(h);
}

int32_t partition_for_key(std::string_view key, int32_t partitions) noexcept {
  const uint32_t positive = static_cast<uint32_t>(murmur2(key)) & 0x7fffffffu;
  return static_cast<int32_t>(positive % static_cast<uint32_t>(partitions));
}

}  // namespace sluice::local
