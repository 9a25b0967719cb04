// Stable hashes: the same bytes give the same value on every machine and in every version,
// because job ids, A/B splits and partitions are derived from them.
#pragma once

#include <cstdint>
#include <string_view>

namespace journeyd {

// CRC-32/IEEE as zlib's crc32() computes it: the partition of a customer id.
uint32_t Crc32(std::string_view bytes);

// 64-bit FNV-1a of the bytes followed by the splitmix64 finalizer; `seed` varies the result.
uint64_t StableHash64(std::string_view bytes, uint64_t seed = 0);

}  // namespace journeyd
