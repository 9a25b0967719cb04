// Redis key names (SPEC §3). Every key of partition N carries the hash tag {N}, so a
// partition's keys share one Redis Cluster slot and change together in one script.
#pragma once

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
  std::string timers() const { return p_ + "timers"; }
  std::string retry() const { return p_ + "retry"; }  // send jobs waiting for an SMTP retry
  std::string lease() const { return p_ + "lease"; }
  std::string fence() const { return p_ + "fence"; }
  // Per-step journey counts: field "<flow>\t<step>\t<kind>\t<reason>" → count.
  std::string stats() const { return p_ + "stats"; }
  std::string customer(std::string_view id) const { return p_ + "c:" + std::string(id); }

 private:
  std::string p_;
};

inline int PartitionOf(std::string_view customer_id, int partitions) {
  return static_cast<int>(Crc32(customer_id) % static_cast<uint32_t>(partitions));
}

inline constexpr std::string_view kEventsGroup = "journeyd";
inline constexpr std::string_view kOutboxGroup = "senders";

// The batch commit (DESIGN.md §2). KEYS: events, outbox, dead, timers, lease, stats, then one
// customer key per customer in the batch. ARGV: fence token, group; the batch's journey
// counts: number of fields, then per field its name and total; the customer count, then per
// customer: number of source ids, the ids, state ("" deletes, "=" unchanged), wake score
// ("" none, "=" unchanged), timer member, number of jobs, and per job its field count and
// fields, then the number of its count references and per reference a field's 1-based index
// and the customer's share of it; then the number of dead entries and per entry its source
// id, field count and fields.
// A customer's effects (counts included) apply only when XACK acknowledges its entries now (a
// replay of an entry already committed changes nothing). When every customer applies, each
// count field gets one HINCRBY with the batch total; only after a replay are the applied
// customers' shares summed here instead.
// Returns {customers applied, dead entries added, 0-based indexes of customers not applied}.
inline constexpr std::string_view kCommitScript = R"lua(
if redis.call('GET', KEYS[5]) ~= ARGV[1] then
  return redis.error_reply('STALE this instance no longer owns the partition')
end
local group = ARGV[2]
local i = 3
local nstats = tonumber(ARGV[i]); i = i + 1
local stats_at = i
i = i + 2 * nstats
local n = tonumber(ARGV[i]); i = i + 1
local applied = 0
local skipped = {}
local refs_at = {}
for c = 1, n do
  local nsrc = tonumber(ARGV[i]); i = i + 1
  local acked = 0
  for s = 1, nsrc do
    acked = acked + redis.call('XACK', KEYS[1], group, ARGV[i]); i = i + 1
  end
  local apply = (nsrc == 0) or (acked > 0)
  local state, wake, member = ARGV[i], ARGV[i + 1], ARGV[i + 2]; i = i + 3
  local njobs = tonumber(ARGV[i]); i = i + 1
  if apply then
    if state == '' then
      redis.call('DEL', KEYS[6 + c])
    elseif state ~= '=' then
      redis.call('SET', KEYS[6 + c], state)
    end
    if wake == '' then
      redis.call('ZREM', KEYS[4], member)
    elseif wake ~= '=' then
      redis.call('ZADD', KEYS[4], wake, member)
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
local ndead = tonumber(ARGV[i]); i = i + 1
local dead_added = 0
for d = 1, ndead do
  local src = ARGV[i]; local nf = tonumber(ARGV[i + 1]); i = i + 2
  if redis.call('XACK', KEYS[1], group, src) == 1 then
    redis.call('XADD', KEYS[3], '*', unpack(ARGV, i, i + nf - 1))
    dead_added = dead_added + 1
  end
  i = i + nf
end
return {applied, dead_added, skipped}
)lua";

// Renews the lease only while it still holds our token. KEYS: lease. ARGV: token, ms.
inline constexpr std::string_view kRenewScript = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
)lua";

// Settles a batch of send jobs after delivery. KEYS: outbox, retry, dead, events. ARGV: the
// outbox group, then operations, each starting with its letter and the job's outbox entry id:
//   a <id>                                   delivered: acknowledge
//   r <id> <due ms> <fields as JSON array>   retry later: into the retry set
//   d <id> <n> <n fields>                    given up: into the dead stream
//   b <id> <n> <n fields> <m> <m fields>     bounced: dead stream plus a `bounce` event
// Each applies only when its XACK does now, so a job settled by another instance (after a
// claim) is not settled twice. Returns the number applied.
inline constexpr std::string_view kSettleScript = R"lua(
local group = ARGV[1]
local i = 2
local applied = 0
while i <= #ARGV do
  local op, id = ARGV[i], ARGV[i + 1]
  i = i + 2
  local ok = redis.call('XACK', KEYS[1], group, id) == 1
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
