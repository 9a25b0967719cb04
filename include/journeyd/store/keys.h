// Redis key names (docs/design.md, "Redis keys"). Every key of partition N carries the hash tag
// {N}, so a partition's keys share one Redis Cluster slot and change together in one script.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "journeyd/common/hash.h"

namespace journeyd::store {

class Keys {
 public:
  Keys(std::string prefix, int partition)
      : p_(std::move(prefix) + ":{" + std::to_string(partition) + "}:") {}

  std::string events() const { return p_ + "events"; }
  std::string outbox() const { return p_ + "outbox"; }
  std::string dead() const { return p_ + "dead"; }
  // Timers (docs/design.md, "Timers"), in two tiers. `timers` is a sorted set of customers by wake
  // time (ms), holding only wakes up to about two wheel buckets ahead; later wakes wait in the
  // timing wheel: one list per bucket of kWheelBucketMs, `wheel:<bucket start ms>`, of
  // "<wake ms>:<customer id>" entries, indexed by the sorted set `wheel` (member and score:
  // the bucket's start). `wheel_moved` holds the start of the last bucket moved into `timers`;
  // nothing is added to a bucket up to it. Those are empty, except buckets that had ended when
  // the wheel moved: their entries fire from the list. A list entry costs about a fifth of a
  // sorted-set member.
  std::string timers() const { return p_ + "timers"; }
  std::string wheel() const { return p_ + "wheel"; }
  std::string wheel_bucket(std::string_view start_ms) const { return Join("wheel:", start_ms); }
  std::string wheel_moved() const { return p_ + "wheel_moved"; }
  std::string retry() const { return p_ + "retry"; }  // send jobs waiting for an SMTP retry
  std::string lease() const { return p_ + "lease"; }
  std::string fence() const { return p_ + "fence"; }
  // Per-step journey counts: field "<flow>\t<step>\t<kind>\t<reason>" → count.
  std::string stats() const { return p_ + "stats"; }
  std::string customer(std::string_view id) const { return Join(kCustomer, id); }
  // What every customer's key starts with: a commit writes its customers' keys into its
  // commands from this and their ids (RespArgs::Arg(a, b)), with no string per key.
  std::string customer_prefix() const { return Join(kCustomer, ""); }

 private:
  static constexpr std::string_view kCustomer = "c:";
  // The prefix, then `kind`, then `name`.
  std::string Join(std::string_view kind, std::string_view name) const {
    std::string key;
    key.reserve(p_.size() + kind.size() + name.size());
    key.append(p_).append(kind).append(name);
    return key;
  }

  std::string p_;
};

inline int PartitionOf(std::string_view customer_id, int partitions) {
  return static_cast<int>(Crc32(customer_id) % static_cast<uint32_t>(partitions));
}

inline constexpr std::string_view kEventsGroup = "journeyd";
inline constexpr std::string_view kOutboxGroup = "senders";

// The timing wheel's bucket width: a power of ten, so that the scripts find a wake's bucket
// by replacing its last six digits with zeros (no number formatting in Lua).
inline constexpr int64_t kWheelBucketMs = 1000000;  // 16 min 40 s
// The bucket a wake time (ms since the epoch) falls in.
inline constexpr int64_t WheelBucket(int64_t wake_ms) {
  return wake_ms - (wake_ms % kWheelBucketMs + kWheelBucketMs) % kWheelBucketMs;
}

}  // namespace journeyd::store
