// Kafka's key hash, so a key lands on the same partition number in the local queue
// as with Kafka's default partitioner (same partition count assumed).
#pragma once

#include <cstdint>
#include <string_view>

namespace sluice::local {

// org.apache.kafka.common.utils.Utils.murmur2: MurmurHash2, seed 0x9747b28c, over
// the key bytes; returns the signed 32-bit value Java returns.
int32_t murmur2(std::string_view data) noexcept;

// Utils.toPositive(murmur2(key)) % partitions. `partitions` must be > 0.
int32_t partition_for_key(std::string_view key, int32_t partitions) noexcept;

}  // namespace sluice::local
