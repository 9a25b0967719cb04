// Redis key names (SPEC §3). Every key of partition N carries the hash tag {N}, so a
// partition's keys share one Redis Cluster slot and change together in one script.
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
  // Timers (DESIGN.md §2), in two tiers. `timers` is a sorted set of customers by wake time
  // (ms), holding only wakes up to about two wheel buckets ahead; later wakes wait in the
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

// kCommitScript's last part: dead entries, each added only when its XACK succeeds now.
// ARGV from i: the count, then per entry its source id, field count and fields.
inline constexpr std::string_view kDeadLettersLua = R"lua(
local ndead = count()
local dead_added = 0
for d = 1, ndead do
  local src = ARGV[i]; local nf = tonumber(ARGV[i + 1]); i = i + 2
  if redis.call('XACK', KEYS[1], group, src) == 1 then
    redis.call('XADD', KEYS[3], '*', unpack(ARGV, i, i + nf - 1))
    dead_added = dead_added + 1
  end
  i = i + nf
end
)lua";

// The batch commit (DESIGN.md §2). KEYS: events, outbox, dead, timers, lease, stats, wheel,
// wheel_moved, then one customer key per customer in the batch. ARGV: fence token, group,
// mode; the batch's journey counts: number of fields, then per field its name and total; the
// customer count, then per customer: number of source ids, the ids, state ("" deletes, "="
// unchanged), wake ms ("" none, "=" unchanged, "~<ms>" unchanged but the timers set must
// agree: a fired timer's entry goes), timer member, number of jobs, and per job its field count and
// fields, then the number of its count references and per reference a field's 1-based index
// and the customer's share of it; then the number of dead entries and per entry its source
// id, field count and fields.
// A customer's effects (counts included) apply only when XACK acknowledges its entries now (a
// replay of an entry already committed changes nothing). Mode "r" (entries read again after a
// restart or taken over from another instance) acknowledges each customer's entries on their
// own to find such replays. Mode "f" (entries read fresh with ">", which nobody can have
// acknowledged yet while we hold the lease) applies every customer and acknowledges all the
// batch's entries in one XACK; states, wake times and deletions also go in one MSET, ZADD,
// ZREM and DEL per batch. A wake in a bucket already moved (up to `wheel_moved`) goes into
// `timers`; a later one into its wheel bucket (and out of `timers`), one RPUSH per bucket. When
// every customer applies, each count field gets one HINCRBY with the batch total; only after a
// replay are the applied customers' shares summed here instead. Returns {customers applied, dead
// entries added, 0-based indexes of customers not applied, fresh entries XACK did not find pending
// (0 unless something else acknowledged them)}. The daemon sends mode "f" here only before the
// timing wheel has moved under its lease; after that, fresh batches are committed as plain
// commands in MULTI/EXEC, fenced by WATCH (store/fence.h).
inline const std::string kCommitScript = std::string(R"lua(
if redis.call('GET', KEYS[5]) ~= ARGV[1] then
  return redis.error_reply('STALE this instance no longer owns the partition')
end
local group = ARGV[2]
local fresh = ARGV[3] == 'f'
local i = 4
local nstats = tonumber(ARGV[i]); i = i + 1
local stats_at = i
i = i + 2 * nstats
local n = tonumber(ARGV[i]); i = i + 1
local applied = 0
local skipped = {}
local refs_at = {}
local acks, sets, dels, zadds, zrems = {}, {}, {}, {}, {}
local moved = tonumber(redis.call('GET', KEYS[8]) or '0')
local buckets, bucket_order = {}, {}
local function place(w, member, push)
  local b = string.sub(w, 1, -7) .. '000000'
  if tonumber(b) <= moved then
    zadds[#zadds + 1] = w
    zadds[#zadds + 1] = member
    return
  end
  zrems[#zrems + 1] = member
  if not push then return end
  local list = buckets[b]
  if not list then
    list = {}
    buckets[b] = list
    bucket_order[#bucket_order + 1] = b
  end
  list[#list + 1] = w .. ':' .. member
end
for c = 1, n do
  local nsrc = tonumber(ARGV[i]); i = i + 1
  local apply = true
  if fresh then
    for s = i, i + nsrc - 1 do acks[#acks + 1] = ARGV[s] end
  elseif nsrc > 0 then
    apply = redis.call('XACK', KEYS[1], group, unpack(ARGV, i, i + nsrc - 1)) > 0
  end
  i = i + nsrc
  local state, wake, member = ARGV[i], ARGV[i + 1], ARGV[i + 2]; i = i + 3
  local njobs = tonumber(ARGV[i]); i = i + 1
  if apply then
    if state == '' then
      dels[#dels + 1] = KEYS[8 + c]
    elseif state ~= '=' then
      sets[#sets + 1] = KEYS[8 + c]
      sets[#sets + 1] = state
    end
    if wake == '' then
      zrems[#zrems + 1] = member
    elseif string.sub(wake, 1, 1) == '~' then
      place(string.sub(wake, 2), member, false)
    elseif wake ~= '=' then
      place(wake, member, true)
    end
    applied = applied + 1
  else
    skipped[#skipped + 1] = c - 1
  end
  for j = 1, njobs do
    local nf = tonumber(ARGV[i]); i = i + 1
    if apply then
      redis.call('XADD', KEYS[2], '*', unpack(ARGV, i, i + nf - 1))
    end
    i = i + nf
  end
  local nrefs = tonumber(ARGV[i]); i = i + 1
  if apply and nrefs > 0 then refs_at[#refs_at + 1] = i end
  i = i + 2 * nrefs
end
-- One call per command and batch, in slices that stay far below Lua's stack limit.
local function each_slice(list, call)
  local from = 1
  while from <= #list do
    local to = math.min(from + 3999, #list)
    call(from, to)
    from = to + 1
  end
end
local unacked = 0
each_slice(acks, function(a, b)
  unacked = unacked + (b - a + 1) - redis.call('XACK', KEYS[1], group, unpack(acks, a, b))
end)
each_slice(sets, function(a, b) redis.call('MSET', unpack(sets, a, b)) end)
each_slice(dels, function(a, b) redis.call('DEL', unpack(dels, a, b)) end)
each_slice(zadds, function(a, b) redis.call('ZADD', KEYS[4], unpack(zadds, a, b)) end)
each_slice(zrems, function(a, b) redis.call('ZREM', KEYS[4], unpack(zrems, a, b)) end)
for _, b in ipairs(bucket_order) do
  local list = buckets[b]
  each_slice(list, function(x, y)
    redis.call('RPUSH', KEYS[7] .. ':' .. b, unpack(list, x, y))
  end)
  redis.call('ZADD', KEYS[7], 'NX', b, b)
end
if #skipped == 0 then
  for s = 0, nstats - 1 do
    redis.call('HINCRBY', KEYS[6], ARGV[stats_at + 2 * s], ARGV[stats_at + 2 * s + 1])
  end
elseif nstats > 0 then
  local sums = {}
  for _, at in ipairs(refs_at) do
    local nrefs = tonumber(ARGV[at - 1])
    for r = 0, nrefs - 1 do
      local f = tonumber(ARGV[at + 2 * r])
      sums[f] = (sums[f] or 0) + tonumber(ARGV[at + 2 * r + 1])
    end
  end
  for f = 1, nstats do
    if sums[f] then redis.call('HINCRBY', KEYS[6], ARGV[stats_at + 2 * (f - 1)], sums[f]) end
  end
end
local function count()
  local n = tonumber(ARGV[i]); i = i + 1
  return n
end
)lua") + std::string(kDeadLettersLua) + R"lua(
return {applied, dead_added, skipped, unacked}
)lua";

// Moves the timing wheel's due buckets into the timers set. KEYS: lease, timers, wheel,
// wheel_moved. ARGV: fence token, target (a bucket start, ms), the most entries to move, and
// the first bucket to move (optional; buckets before it stay, for the daemon to fire from their
// lists). Every bucket starting from there up to the target is emptied in order; an entry is added
// with ZADD LT, so an old entry never pushes back a customer's earlier wake (a customer woken early
// by one finds nothing due, and its commit sets the timers set right). Once every such bucket
// is empty, wheel_moved becomes the target. Returns {entries moved, 1 if more remain}.
inline constexpr std::string_view kWheelScript = R"lua(
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('STALE this instance no longer owns the partition')
end
local target = tonumber(ARGV[2])
local budget = tonumber(ARGV[3])
local from = ARGV[4] or '-inf'
local moved = 0
while moved < budget do
  local head = redis.call('ZRANGEBYSCORE', KEYS[3], from, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  if #head == 0 or tonumber(head[2]) > target then
    if tonumber(redis.call('GET', KEYS[4]) or '0') < target then
      redis.call('SET', KEYS[4], ARGV[2])
    end
    return {moved, 0}
  end
  local list = KEYS[3] .. ':' .. head[1]
  local items = redis.call('LPOP', list, math.min(budget - moved, 2000))
  if items then
    local z = {}
    for _, e in ipairs(items) do
      local at = string.find(e, ':', 1, true)
      z[#z + 1] = string.sub(e, 1, at - 1)
      z[#z + 1] = string.sub(e, at + 1)
    end
    redis.call('ZADD', KEYS[2], 'LT', unpack(z))
    moved = moved + #items
  end
  if redis.call('EXISTS', list) == 0 then redis.call('ZREM', KEYS[3], head[1]) end
end
return {moved, 1}
)lua";

// Renews the lease only while it still holds our token. KEYS: lease. ARGV: token, ms.
inline constexpr std::string_view kRenewScript = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
)lua";

}  // namespace journeyd::store
