// A partition's batch commit: the customers' states read behind the fence, then the plan
// (engine/batch.h) written in one atomic step. Fresh entries and fired timers (once the timing
// wheel has moved under this instance's lease) go as plain commands in MULTI/EXEC, fenced by
// WATCH (fence.h); replays (pending entries read again, entries claimed from a dead owner) go
// to kCommitScript, which acknowledges customer by customer and applies only what it
// acknowledges now, so a replay changes nothing twice.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "journeyd/engine/batch.h"
#include "journeyd/store/fence.h"
#include "journeyd/store/keys.h"
#include "journeyd/store/redis.h"
#include "journeyd/store/resp.h"

namespace journeyd::store {

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

// The batch commit (docs/design.md, "The commit"). KEYS: events, outbox, dead, timers, lease,
// stats, wheel, wheel_moved, then one customer key per customer in the batch. ARGV: fence token,
// group, mode; the batch's journey counts: number of fields, then per field its name and total; the
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
// commands in MULTI/EXEC, fenced by WATCH (fence.h).
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

// How a batch's entries were read, which decides how the commit acknowledges them.
enum class CommitMode {
  kFresh,   // read with ">": delivered for the first time, so nothing can be a replay
  kReplay,  // pending entries read again or claimed: some may be committed already
};

// Entries fired straight from the head of a wheel bucket's list (wheel.h); the commit that
// fires them trims them off.
struct WheelTake {
  std::string bucket;  // its start, ms
  size_t entries = 0;
};

// What the commit needs to know of the partition's owner.
struct CommitContext {
  CommitMode mode = CommitMode::kFresh;
  std::string token;  // this instance's fencing token
  // The wheel_moved value in Redis, once this instance moved the wheel under its lease: a
  // fresh batch is then committed in bulk (MULTI/EXEC).
  std::optional<int64_t> wheel_moved;
  bool bulk() const { return mode == CommitMode::kFresh && wheel_moved.has_value(); }
};

struct CommitOutcome {
  std::string error;   // "" when committed
  bool stale = false;  // refused: the lease (or the wheel) is not this instance's any more
  // Customers whose entries were acknowledged before (a replay): they changed nothing.
  std::vector<bool> skipped;
  int64_t already_acked = 0;  // fresh entries something else had acknowledged
};

// The commands of a bulk commit (MULTI, one command per kind of effect, EXEC): counts, XACK,
// MSET, ZADD/ZREM on the timers, RPUSH per wheel bucket, one XADD per mail, the wheel take's
// LTRIM, one XADD per dead letter. `wheel_moved` places each wake in the timers or a bucket.
std::vector<RespCommand> BulkCommit(const Keys& keys, const engine::Batch& batch,
                                    int64_t wheel_moved, const WheelTake* take);

// The EVALSHA of kCommitScript for `batch`.
RespCommand ScriptCommit(const Keys& keys, std::string_view sha, const CommitContext& context,
                         const engine::Batch& batch);

// One partition's commits, on its connection.
class BatchCommitter {
 public:
  explicit BatchCommitter(Keys keys);

  // Loads kCommitScript (once per lease: Redis may have lost it).
  boost::asio::awaitable<std::string> LoadScript(RedisConnection& conn);

  // Reads the batch's customers' states (one MGET), behind the fence in the same round trip
  // when the commit is a bulk one, and decodes them into the batch. On a refusal the fence is
  // dropped (UNWATCH). "" or why not; `*stale` when the lease is not ours.
  boost::asio::awaitable<std::string> ReadStates(RedisConnection& conn,
                                                 const CommitContext& context, engine::Batch& batch,
                                                 bool* stale);

  // Writes the planned batch (after ReadStates).
  boost::asio::awaitable<CommitOutcome> Write(RedisConnection& conn, const CommitContext& context,
                                              const engine::Batch& batch, const WheelTake* take);

 private:
  boost::asio::awaitable<CommitOutcome> WriteBulk(RedisConnection& conn,
                                                  const CommitContext& context,
                                                  const engine::Batch& batch,
                                                  const WheelTake* take);
  boost::asio::awaitable<CommitOutcome> WriteScript(RedisConnection& conn,
                                                    const CommitContext& context,
                                                    const engine::Batch& batch);
  Fence FenceOf(const CommitContext& context) const;

  Keys keys_;
  std::string customer_prefix_;
  std::string sha_;
};

}  // namespace journeyd::store
