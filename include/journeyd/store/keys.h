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

// Settles a batch of send jobs after delivery. KEYS: outbox, retry, dead, events. ARGV: the
// outbox group, then operations, each starting with its letter and the job's outbox entry id:
//   a <id>                                   delivered: acknowledge
//   r <id> <due ms> <fields as JSON array>   retry later: into the retry set
//   d <id> <n> <n fields>                    given up: into the dead stream
//   b <id> <n> <n fields> <m> <m fields>     bounced: dead stream plus a `bounce` event
// Each applies only when its XACK does now, so a job settled by another instance (after a
// claim) is not settled twice; deliveries are acknowledged together, in one XACK per few
// thousand. Returns the number applied.
inline constexpr std::string_view kSettleScript = R"lua(
local group = ARGV[1]
local i = 2
local applied = 0
local delivered = {}
while i <= #ARGV do
  local op, id = ARGV[i], ARGV[i + 1]
  i = i + 2
  if op == 'a' then
    delivered[#delivered + 1] = id
  end
  local ok = op ~= 'a' and redis.call('XACK', KEYS[1], group, id) == 1
  if ok then applied = applied + 1 end
  if op == 'r' then
    if ok then redis.call('ZADD', KEYS[2], ARGV[i], ARGV[i + 1]) end
    i = i + 2
  elseif op == 'd' or op == 'b' then
    local n = tonumber(ARGV[i]); i = i + 1
    if ok then redis.call('XADD', KEYS[3], '*', unpack(ARGV, i, i + n - 1)) end
    i = i + n
    if op == 'b' then
      local m = tonumber(ARGV[i]); i = i + 1
      if ok then redis.call('XADD', KEYS[4], '*', unpack(ARGV, i, i + m - 1)) end
      i = i + m
    end
  end
end
for from = 1, #delivered, 4000 do
  applied = applied + redis.call('XACK', KEYS[1], group,
                                 unpack(delivered, from, math.min(from + 3999, #delivered)))
end
return applied
)lua";

// Moves send jobs whose retry is due back into the outbox. KEYS: retry, outbox. ARGV: now in
// ms, the most to move. Returns the number moved.
inline constexpr std::string_view kPromoteScript = R"lua(
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(due) do
  redis.call('ZREM', KEYS[1], m)
  redis.call('XADD', KEYS[2], '*', unpack(cjson.decode(m)))
end
return #due
)lua";

}  // namespace journeyd::store
