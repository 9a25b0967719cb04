// A partition's timers, in two tiers: `journeyd:{N}:timers`, a sorted set of customers by wake
// time, holds the wakes up to about two wheel buckets ahead; later ones wait in the timing
// wheel's per-bucket lists (keys.h) and move into the set before they are due. TimerWheel
// moves the wheel when its time comes, takes what is due into a batch (engine/batch.h) and
// learns when the next wake is, so the worker knows how long it may wait for events.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "journeyd/common/time.h"
#include "journeyd/engine/batch.h"
#include "journeyd/store/commit.h"
#include "journeyd/store/keys.h"
#include "journeyd/store/redis.h"

namespace journeyd::store {

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

// Timers taken for the next commit.
struct DueTimers {
  size_t count = 0;               // customers taken
  std::vector<double> lateness;   // seconds of virtual time past each wake time
  std::optional<WheelTake> take;  // fired from a wheel bucket's list instead of the set
};

// Timers taken at a time, wheel entries moved per script call (a few ms of Redis), and how long
// after a take of less than a batch the set is looked at again.
struct WheelLimits {
  int take = 500;
  int move = 2000;
  int64_t tick_ms = 10;
};

class TimerWheel {
 public:
  // `stopping`, when given, ends a long move of the wheel early (the daemon is stopping).
  explicit TimerWheel(const Keys& keys, WheelLimits limits = {},
                      const std::atomic<bool>* stopping = nullptr);

  // Forgets what it knew of the wheel (a lease just taken: the last owner may have stopped
  // long ago), so the next TakeDue moves it first.
  void Reset();

  // Takes the timers due at `now` into `batch` (moving the wheel first when its time has
  // come) and learns when the next one is due. Once it took fewer than a batch, it waits a
  // timer tick before it looks again: timers due meanwhile fire together, a tick late at most.
  // `token` fences the wheel's move. "" or why not.
  boost::asio::awaitable<std::string> TakeDue(RedisConnection& conn, const std::string& token,
                                              TimePoint now, engine::Batch* batch, DueTimers* due);

  // A wake a commit wrote: the next one may be sooner.
  void NoteWake(std::optional<TimePoint> wake) {
    if (wake && (!next_wake_ || *wake < *next_wake_)) next_wake_ = wake;
  }
  // When the next timer (or the wheel's next move) is due; unset: nothing is.
  std::optional<TimePoint> next_wake() const { return next_wake_; }
  // Not before this is the set looked at again (the timer tick).
  std::chrono::steady_clock::time_point fire_after() const { return fire_after_; }
  // The wheel_moved value in Redis, known once this instance moved the wheel.
  std::optional<int64_t> wheel_moved() const { return wheel_moved_; }

 private:
  boost::asio::awaitable<std::string> Move(RedisConnection& conn, const std::string& token,
                                           TimePoint now);
  boost::asio::awaitable<std::string> TakePastBucket(RedisConnection& conn, TimePoint now,
                                                     engine::Batch* batch, DueTimers* due);
  boost::asio::awaitable<std::string> TakeFromSet(RedisConnection& conn, TimePoint now,
                                                  std::chrono::steady_clock::time_point real_now,
                                                  engine::Batch* batch, DueTimers* due);

  const Keys keys_;
  const WheelLimits limits_;
  const std::atomic<bool>* stopping_;
  std::string sha_;
  std::optional<int64_t> wheel_moved_;
  std::optional<TimePoint> move_at_;  // when the wheel must move next (unset: at once)
  // Buckets starting at or before past_until_ had ended when the wheel last moved; past_more_
  // while some may be left, past_bucket_ the one being fired (TakePastBucket).
  int64_t past_until_ = 0;
  bool past_more_ = false;
  std::optional<std::string> past_bucket_;
  std::optional<TimePoint> next_wake_;
  std::chrono::steady_clock::time_point fire_after_;
};

}  // namespace journeyd::store
