#include "journeyd/store/wheel.h"

#include <algorithm>
#include <charconv>
#include <unordered_set>

#include "journeyd/store/await.h"

namespace journeyd::store {

namespace asio = boost::asio;

TimerWheel::TimerWheel(const Keys& keys, WheelLimits limits, const std::atomic<bool>* stopping)
    : keys_(keys), limits_(limits), stopping_(stopping) {}

void TimerWheel::Reset() {
  move_at_.reset();
  wheel_moved_.reset();
  past_more_ = false;
  past_bucket_.reset();
}

// Moves the wheel's buckets of now and the next one into the timers set, so a wake is in the
// set at least one bucket width before it is due. Buckets that ended before now (the wheel did
// not move for a while: this instance just took the partition over, or the clock jumped) stay
// where they are: every entry in them is due, so TakePastBucket fires them from their lists.
asio::awaitable<std::string> TimerWheel::Move(RedisConnection& conn, const std::string& token,
                                              TimePoint now) {
  const int64_t from = WheelBucket(ToUnixMillis(now));
  const int64_t target = from + kWheelBucketMs;
  while (!(stopping_ && *stopping_)) {
    Result r = co_await Script(
        conn, sha_, kWheelScript,
        Cmd("4", keys_.lease(), keys_.timers(), keys_.wheel(), keys_.wheel_moved(), token,
            std::to_string(target), std::to_string(limits_.move), std::to_string(from)));
    if (!r.ok()) co_return "moving the timing wheel: " + r.what();
    if (r.reply.elements.size() < 2) co_return "moving the timing wheel: unexpected reply";
    if (r.reply.elements[1].integer != 0) continue;
    move_at_ = FromUnixMillis(target);
    // The script leaves wheel_moved alone when it already stood further (a clock behind the
    // last owner's): read what it holds.
    Result moved = co_await Call(conn, Cmd("GET", keys_.wheel_moved()));
    if (!moved.ok()) co_return "reading wheel_moved: " + moved.what();
    wheel_moved_ = std::strtoll(moved.reply.str.c_str(), nullptr, 10);
    past_until_ = from - kWheelBucketMs;
    past_more_ = true;
    break;
  }
  co_return "";
}

// Takes the entries at the head of the oldest bucket that ended before the wheel's last move,
// if any is left: all of them are due. Their commit trims them off the list; the bucket leaves
// the wheel once the list is empty. A customer listed twice in the slice (an entry left by a
// wake that changed) fires once.
asio::awaitable<std::string> TimerWheel::TakePastBucket(RedisConnection& conn, TimePoint now,
                                                        engine::Batch* batch, DueTimers* due) {
  for (int round = 0; round < 100 && past_more_; ++round) {
    if (!past_bucket_) {
      Result head = co_await Call(conn, Cmd("ZRANGEBYSCORE", keys_.wheel(), "-inf",
                                            std::to_string(past_until_), "LIMIT", "0", "1"));
      if (!head.ok()) co_return "ZRANGEBYSCORE: " + head.what();
      if (head.reply.elements.empty()) {
        past_more_ = false;
        break;
      }
      past_bucket_ = head.reply.elements[0].str;
    }
    Result items = co_await Call(conn, Cmd("LRANGE", keys_.wheel_bucket(*past_bucket_), "0",
                                           std::to_string(limits_.take - 1)));
    if (!items.ok()) co_return "LRANGE: " + items.what();
    if (items.reply.elements.empty()) {
      // Emptied by the last commit. Nothing adds to a bucket the wheel has moved past.
      Result z = co_await Call(conn, Cmd("ZREM", keys_.wheel(), *past_bucket_));
      if (!z.ok()) co_return "ZREM: " + z.what();
      past_bucket_.reset();
      continue;
    }
    const int64_t now_ms = ToUnixMillis(now);
    std::unordered_set<std::string_view> seen;  // into items.reply
    for (const Reply& e : items.reply.elements) {
      const std::string_view entry = e.str;
      const size_t colon = entry.find(':');
      if (colon == std::string_view::npos) continue;
      int64_t wake_ms = 0;
      std::from_chars(entry.data(), entry.data() + colon, wake_ms);
      const std::string_view customer = entry.substr(colon + 1);
      if (!seen.insert(customer).second) continue;
      batch->AddTimer(customer, FromUnixMillis(wake_ms));
      ++due->count;
      due->lateness.push_back(static_cast<double>(std::max<int64_t>(0, now_ms - wake_ms)) / 1000);
    }
    // Set even when no entry in the slice could be read, so that the commit trims them.
    due->take = WheelTake{*past_bucket_, items.reply.elements.size()};
    co_return "";
  }
  co_return "";
}

// What is due in the timers set, and the first wake after it, in one round trip.
asio::awaitable<std::string> TimerWheel::TakeFromSet(RedisConnection& conn, TimePoint now,
                                                     std::chrono::steady_clock::time_point real_now,
                                                     engine::Batch* batch, DueTimers* due) {
  const std::string now_ms = std::to_string(ToUnixMillis(now));
  const std::vector<RespCommand> query = {
      RespCommand::Of({"ZRANGEBYSCORE", keys_.timers(), "-inf", now_ms, "WITHSCORES", "LIMIT", "0",
                       std::to_string(limits_.take)}),
      RespCommand::Of(
          {"ZRANGEBYSCORE", keys_.timers(), "(" + now_ms, "+inf", "WITHSCORES", "LIMIT", "0", "1"}),
  };
  std::vector<Result> r = co_await CallAll(conn, query);
  for (const Result& x : r) {
    if (!x.ok()) co_return "ZRANGEBYSCORE: " + x.what();
  }
  const auto& taken = r[0].reply.elements;
  for (size_t i = 0; i + 1 < taken.size(); i += 2) {
    double due_ms = 0;  // the score: a wake time in ms, as the commit wrote it
    const std::string& score = taken[i + 1].str;
    std::from_chars(score.data(), score.data() + score.size(), due_ms);
    batch->AddTimer(taken[i].str, FromUnixMillis(static_cast<int64_t>(due_ms)));
    ++due->count;
    due->lateness.push_back(std::max(0.0, static_cast<double>(ToUnixMillis(now)) - due_ms) / 1000);
  }
  if (due->count >= static_cast<size_t>(limits_.take)) {
    next_wake_ = now;  // a full batch: more may be due
    co_return "";
  }
  const auto& next = r[1].reply.elements;
  if (next.size() == 2) {
    next_wake_ = FromUnixMillis(std::strtoll(next[1].str.c_str(), nullptr, 10));
  } else {
    next_wake_.reset();
  }
  // The wheel's next move is due then too.
  if (move_at_ && (!next_wake_ || *move_at_ < *next_wake_)) next_wake_ = move_at_;
  fire_after_ = real_now + std::chrono::milliseconds(limits_.tick_ms);
  co_return "";
}

asio::awaitable<std::string> TimerWheel::TakeDue(RedisConnection& conn, const std::string& token,
                                                 TimePoint now, engine::Batch* batch,
                                                 DueTimers* due) {
  const bool move = !move_at_ || *move_at_ <= now;
  if (!move && next_wake_ && *next_wake_ > now) co_return "";
  const auto real_now = std::chrono::steady_clock::now();
  if (!move && real_now < fire_after_) co_return "";
  if (move) {
    std::string err = co_await Move(conn, token, now);
    if (!err.empty()) co_return err;
  }
  // Past buckets first. The timers set's due entries wait until those are fired (late, not
  // lost): taking them along in the same commits made each timer cost journeyd more.
  if (past_more_) {
    std::string err = co_await TakePastBucket(conn, now, batch, due);
    if (!err.empty()) co_return err;
    if (due->take) {
      next_wake_ = now;  // more may be due
      co_return "";
    }
  }
  co_return co_await TakeFromSet(conn, now, real_now, batch, due);
}

}  // namespace journeyd::store
