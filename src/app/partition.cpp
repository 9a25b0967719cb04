#include "partition.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <charconv>
#include <chrono>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "journeyd/engine/state.h"
#include "journeyd/store/fence.h"
#include "journeyd/store/keys.h"
#include "journeyd/store/outbox.h"
#include "journeyd/store/resp.h"
#include "sender.h"

namespace journeyd::app::internal {

using asio::awaitable;
using store::Call;
using store::Keys;
using store::Reply;
using store::Result;

namespace {

// Stream entries read at a time (fresh, pending or claimed), and due timers taken at a time.
// A batch of events holds their replies, states and commit at once: 250 of them run at less
// CPU per event than 500 (the working set stays in the core's cache), while timers, whose
// commits are mostly outbox entries, go as well or better in 500s (journeyd-bench, README).
constexpr int kBatch = 250;
constexpr int kTimerBatch = 500;
// While a timer is due within a BLOCK's granularity, how long the loop sleeps between reads.
constexpr int64_t kPollMs = 10;
// How often the timers set is looked at while timers keep coming due (TakeDueTimers).
constexpr int64_t kTimerTickMs = 10;
// Events read with due timers: few, so that the timers' commit is quick.
constexpr int kBatchWithTimers = 100;
// Wheel entries moved per script call: a few milliseconds of Redis at a time.
constexpr int kWheelMoveBatch = 2000;

class Worker final : public PartitionWorker {
 public:
  Worker(asio::io_context& io, Shared& shared, int partition)
      : io_(io), s_(shared), partition_(partition), keys_(shared.config.redis.prefix, partition) {}

  awaitable<void> Run() override {
    store::RedisOptions o = RedisOptionsOf(s_.config);
    conn_ = store::RedisConnection::Create(io_, o);
    blocking_ = store::RedisConnection::Create(io_, o);
    Duration backoff{100};
    while (!s_.stopping) {
      std::string err = co_await Connect(*conn_);
      if (err.empty()) err = co_await Connect(*blocking_);
      if (!err.empty()) {
        s_.stats.redis_ok = false;
        spdlog::warn("partition {}: {}; retrying in {} ms", partition_, err, backoff.count());
        co_await Sleep(backoff);
        backoff = std::min(backoff * 2, Duration{5000});
        continue;
      }
      backoff = Duration{100};
      s_.stats.redis_ok = true;
      std::string why = co_await Own();
      if (owned_) {
        owned_ = false;
        --s_.stats.partitions_owned;
      }
      if (s_.stopping) break;
      spdlog::warn("partition {}: {}", partition_, why);
      co_await Sleep(Duration{200});
    }
    // Give the partition up at once so another instance takes over without waiting.
    if (conn_->connected() && !token_.empty()) {
      co_await Call(*conn_, Cmd("EVAL",
                                "if redis.call('GET', KEYS[1]) == ARGV[1] then return "
                                "redis.call('DEL', KEYS[1]) end return 0",
                                "1", keys_.lease(), token_));
    }
    // Let the outbox sender finish its batch and close its connection first: a coroutine
    // left waiting on Redis when the loop stops would never be freed.
    for (int i = 0; i < 300 && senders_ > 0; ++i) co_await Sleep(Duration{20});
    conn_->Close();
    blocking_->Close();
  }

 private:
  // Takes the lease and works the partition until the lease or the connection is lost.
  awaitable<std::string> Own() {
    const int lease_ms = s_.config.redis.lease_ms;
    // Take the lease: a new fencing token, then SET NX.
    while (!s_.stopping) {
      Result fence = co_await Call(*conn_, Cmd("INCR", keys_.fence()));
      if (!fence.ok()) co_return "cannot get a fencing token: " + fence.what();
      std::string token = std::to_string(fence.reply.integer);
      Result set = co_await Call(
          *conn_, Cmd("SET", keys_.lease(), token, "NX", "PX", std::to_string(lease_ms)));
      if (!set.error.empty()) co_return set.error;
      if (set.reply.type == Reply::Type::kStatus) {
        token_ = token;
        break;
      }
      co_await Sleep(Duration{lease_ms / 3});
    }
    if (s_.stopping) co_return "stopping";
    owned_ = true;
    move_at_.reset();  // move the wheel first: the last owner may have stopped long ago
    wheel_moved_.reset();
    past_more_ = false;
    past_bucket_.reset();
    ++s_.stats.partitions_owned;
    lease_renewed_ = std::chrono::steady_clock::now();
    spdlog::info("partition {}: owned (fencing token {})", partition_, token_);
    std::vector<std::pair<std::string, std::string_view>> groups;
    groups.emplace_back(keys_.events(), store::kEventsGroup);
    groups.emplace_back(keys_.outbox(), store::kOutboxGroup);
    for (const auto& [stream, group] : groups) {
      Result r = co_await Call(
          *conn_, Cmd("XGROUP", "CREATE", stream, std::string(group), "0", "MKSTREAM"));
      if (!r.error.empty()) co_return r.error;
      if (r.reply.is_error() && r.reply.str.rfind("BUSYGROUP", 0) != 0) {
        co_return "cannot create consumer group: " + r.reply.str;
      }
    }
    Result sha = co_await Call(*conn_, Cmd("SCRIPT", "LOAD", store::kCommitScript));
    if (!sha.ok()) co_return "cannot load the commit script: " + sha.what();
    commit_sha_ = sha.reply.str;

    // Our own pending entries first (a crash between read and commit), then a dead owner's.
    std::string err = co_await DrainPending();
    if (!err.empty()) co_return err;
    err = co_await ClaimAbandoned();
    if (!err.empty()) co_return err;

    // The sender runs on the main thread, with the SMTP pool and the admin server.
    ++senders_;
    behind_ = false;
    asio::co_spawn(*s_.main_io, RunOutboxSender(*s_.main_io, s_, partition_, owned_, behind_),
                   [this](std::exception_ptr) { --senders_; });
    auto last_claim = std::chrono::steady_clock::now();
    while (!s_.stopping) {
      err = co_await RenewIfDue();
      if (!err.empty()) co_return err;
      if (std::chrono::steady_clock::now() - last_claim > std::chrono::milliseconds(lease_ms)) {
        err = co_await ClaimAbandoned();
        if (!err.empty()) co_return err;
        last_claim = std::chrono::steady_clock::now();
        // Keep the streams from growing forever: drop what every reader has acknowledged.
        err = co_await Trim(keys_.events(), store::kEventsGroup);
        if (!err.empty()) co_return err;
        // Sent mails stay in the outbox as a recent audit trail until it holds 100k entries.
        Result len = co_await Call(*conn_, Cmd("XLEN", keys_.outbox()));
        if (len.ok() && len.reply.integer > 100000) {
          err = co_await Trim(keys_.outbox(), store::kOutboxGroup);
        }
        if (!err.empty()) co_return err;
      }
      // The timers due now are committed together with the events read next.
      Due due;
      err = co_await TakeDueTimers(&due);
      if (!err.empty()) co_return err;
      // Wait for events, but not past the next timer. Redis ends a BLOCK only at its own
      // event-loop tick (up to 100 ms late), so a BLOCK ends at least that long before the
      // next timer, and a timer due sooner is waited for here, on a local timer, in steps of
      // kPollMs each followed by a read that does not block: events that arrive meanwhile
      // wait no longer than a step.
      int64_t until = 300;  // ms until something is due (at most 300)
      if (!due.work.empty()) {
        until = 0;
      } else if (next_wake_) {
        until =
            std::clamp<int64_t>(s_.clock.RealDelay(*next_wake_ - s_.clock.Now()).count(), 0, 300);
        // Not before the timer tick is over (TakeDueTimers).
        const auto tick = std::chrono::ceil<std::chrono::milliseconds>(
                              fire_after_ - std::chrono::steady_clock::now())
                              .count();
        until = std::clamp<int64_t>(std::max<int64_t>(until, tick), 0, 300);
      }
      Result r;
      int count = kBatch;
      if (until >= 250) {
        const int64_t block = std::min<int64_t>(200, until - 100);
        r = co_await Call(*blocking_, ReadFresh(block), Duration{block + 5000});
      } else {
        if (until > 0) co_await Sleep(Duration{std::min<int64_t>(until, kPollMs)});
        // Timers due: a short batch of events with them, so that their commit is quick;
        // behind a backlog, a whole one, so that the backlog shrinks.
        count = due.work.empty() || backlog_ ? kBatch : kBatchWithTimers;
        r = co_await Call(*blocking_, ReadFresh(0, count));
      }
      if (!r.error.empty()) co_return r.error;
      if (r.reply.is_error()) co_return "XREADGROUP: " + r.reply.str;
      if (s_.stopping && r.reply.is_nil()) break;
      backlog_ = EntryCount(r.reply) >= static_cast<size_t>(count);
      // More timers are due than one take holds (a full batch, or a bucket the wheel moved
      // past), or more events wait than one read took: the outbox sender yields (sender.cpp).
      const bool more_due =
          due.take.has_value() || due.work.size() >= static_cast<size_t>(kTimerBatch);
      err = co_await ProcessStreamReply(r.reply, Mode::kFresh, std::move(due.work), !backlog_,
                                        due.take ? &*due.take : nullptr);
      if (!err.empty()) co_return err;
      behind_ = backlog_ || more_due;
      s_.stats.timers += due.lateness.size();
      s_.metrics.timer_lateness_seconds.ObserveMany(due.lateness);
    }
    co_return "stopping";
  }

  // XREADGROUP of new entries, blocking up to `block` ms (0: not at all).
  std::vector<std::string> ReadFresh(int64_t block, int count = kBatch) const {
    std::vector<std::string> read = Cmd("XREADGROUP", "GROUP", std::string(store::kEventsGroup),
                                        s_.consumer, "COUNT", std::to_string(count));
    if (block > 0) {
      read.push_back("BLOCK");
      read.push_back(std::to_string(block));
    }
    read.push_back("STREAMS");
    read.push_back(keys_.events());
    read.push_back(">");
    return read;
  }

  // Removes the entries below both the oldest pending entry and the last one delivered.
  awaitable<std::string> Trim(std::string stream, std::string_view group) {
    Result pending = co_await Call(*conn_, Cmd("XPENDING", stream, std::string(group)));
    if (!pending.ok()) co_return "XPENDING: " + pending.what();
    std::string min_id;
    if (pending.reply.elements.size() >= 2 && pending.reply.elements[0].integer > 0) {
      min_id = pending.reply.elements[1].str;
    } else {
      Result info = co_await Call(*conn_, Cmd("XINFO", "GROUPS", stream));
      if (!info.ok()) co_return "XINFO: " + info.what();
      for (const Reply& g : info.reply.elements) {
        std::string name, last;
        for (size_t i = 0; i + 1 < g.elements.size(); i += 2) {
          if (g.elements[i].str == "name") name = g.elements[i + 1].str;
          if (g.elements[i].str == "last-delivered-id") last = g.elements[i + 1].str;
        }
        if (name == group) min_id = last;
      }
    }
    if (min_id.empty() || min_id == "0-0") co_return "";
    Result t = co_await Call(*conn_, Cmd("XTRIM", stream, "MINID", "~", min_id));
    if (!t.ok()) co_return "XTRIM: " + t.what();
    co_return "";
  }

  awaitable<std::string> RenewIfDue() {
    auto now = std::chrono::steady_clock::now();
    const int lease_ms = s_.config.redis.lease_ms;
    if (now - lease_renewed_ < std::chrono::milliseconds(lease_ms / 3)) co_return "";
    Result r = co_await Call(*conn_, Cmd("EVAL", std::string(store::kRenewScript), "1",
                                         keys_.lease(), token_, std::to_string(lease_ms)));
    if (!r.ok()) co_return "cannot renew the lease: " + r.what();
    if (r.reply.integer != 1) co_return "lost the lease to another instance";
    lease_renewed_ = now;
    co_return "";
  }

  awaitable<std::string> DrainPending() {
    while (!s_.stopping) {
      Result r = co_await Call(
          *conn_, Cmd("XREADGROUP", "GROUP", std::string(store::kEventsGroup), s_.consumer, "COUNT",
                      std::to_string(kBatch), "STREAMS", keys_.events(), "0"));
      if (!r.ok()) co_return "reading pending entries: " + r.what();
      size_t n = EntryCount(r.reply);
      if (n == 0) co_return "";
      std::string err = co_await ProcessStreamReply(r.reply, Mode::kReplay);
      if (!err.empty()) co_return err;
    }
    co_return "";
  }

  awaitable<std::string> ClaimAbandoned() {
    std::string cursor = "0-0";
    for (int round = 0; round < 1000 && !s_.stopping; ++round) {
      Result r =
          co_await Call(*conn_, Cmd("XAUTOCLAIM", keys_.events(), std::string(store::kEventsGroup),
                                    s_.consumer, std::to_string(s_.config.redis.lease_ms), cursor,
                                    "COUNT", std::to_string(kBatch)));
      if (!r.ok()) co_return "XAUTOCLAIM: " + r.what();
      if (r.reply.elements.size() < 2) co_return "";
      cursor = r.reply.elements[0].str;
      const Reply& entries = r.reply.elements[1];
      if (!entries.elements.empty()) {
        spdlog::info("partition {}: took over {} entries of another instance", partition_,
                     entries.elements.size());
        std::string err = co_await ProcessEntries(&entries, Mode::kReplay);
        if (!err.empty()) co_return err;
      }
      if (cursor == "0-0") break;
    }
    co_return "";
  }

  // How the commit script acknowledges a batch's entries (see kCommitScript).
  enum class Mode {
    kFresh,   // read with ">": delivered for the first time, so nothing can be a replay
    kReplay,  // pending entries read again or claimed: some may be committed already
  };

  struct Work {
    std::string customer;
    std::vector<std::string> sources;
    std::vector<engine::Input> inputs;  // its events, in stream order
    // Taken from the timers set or a wheel bucket: the timer fires in the commit, among the
    // events by when it was due (Commit), and the set must then follow the state.
    bool fired = false;
    TimePoint due{};  // fired: the entry's wake time
  };

  // Entries fired straight from the head of a wheel bucket's list (TakeDueTimers); the commit
  // that fires them trims them off.
  struct WheelTake {
    std::string bucket;  // its start, ms
    size_t entries = 0;
  };

  // `fired`: timers taken from the set, committed with the entries (Mode::kFresh only).
  // `fire_over_wakes`: the read left no entries behind, so wakes that are over once a
  // customer's entries are in fire in this commit (Commit).
  awaitable<std::string> ProcessStreamReply(const Reply& r, Mode mode, std::vector<Work> fired = {},
                                            bool fire_over_wakes = false,
                                            const WheelTake* take = nullptr) {
    const Reply* entries = nullptr;
    if (r.type == Reply::Type::kArray && !r.elements.empty() &&
        r.elements[0].elements.size() >= 2) {
      entries = &r.elements[0].elements[1];
    }
    co_return co_await ProcessEntries(entries, mode, std::move(fired), fire_over_wakes, take);
  }

  // Commits the stream entries `entries` (may be null) and the timers `work` holds already.
  awaitable<std::string> ProcessEntries(const Reply* entries, Mode mode,
                                        std::vector<Work> work = {}, bool fire_over_wakes = false,
                                        const WheelTake* take = nullptr) {
    static const Reply kNoEntries;
    // Each customer's place in `work`, keyed by views of the customers' ids there: room is
    // made for every entry first, so that `work` never moves while the views are in use.
    const size_t entry_count = (entries ? *entries : kNoEntries).elements.size();
    work.reserve(work.size() + entry_count);
    std::unordered_map<std::string_view, size_t> index;
    index.reserve(work.size() + entry_count);
    for (size_t i = 0; i < work.size(); ++i) index.emplace(work[i].customer, i);
    std::vector<std::pair<std::string, std::vector<std::string>>> dead;  // source, fields
    std::vector<std::pair<std::string, std::string>> dead_labels;        // type, reason
    const TimePoint now = s_.clock.Now();
    std::vector<engine::FieldView> fields;  // views into the reply, entry by entry
    for (const Reply& e : (entries ? *entries : kNoEntries).elements) {
      if (e.elements.size() < 2) continue;
      const std::string& id = e.elements[0].str;
      fields.clear();
      const Reply& f = e.elements[1];
      for (size_t i = 0; i + 1 < f.elements.size(); i += 2) {
        fields.emplace_back(f.elements[i].str, f.elements[i + 1].str);
      }
      int64_t id_ms = 0;  // the entry id's milliseconds, before its '-'
      std::from_chars(id.data(), id.data() + id.size(), id_ms);
      const TimePoint id_time = FromUnixMillis(id_ms);
      engine::EventError err;
      auto ev = engine::EventFromFields(fields, id_time, now, &err);
      if (!ev) {
        spdlog::warn("partition {}: entry {} goes to the dead stream: {}", partition_, id,
                     err.ToString());
        std::vector<std::string> df;
        for (const auto& [k, v] : fields) {
          if (k == "error" || k == "source_id") continue;
          df.emplace_back(k);
          df.emplace_back(v);
        }
        df.push_back("error");
        df.push_back(err.ToString());
        df.push_back("source_id");
        df.push_back(id);
        dead.emplace_back(id, std::move(df));
        ++s_.stats.dead;
        std::string type;
        for (const auto& [k, v] : fields) {
          if (k == "type") type = v;
        }
        dead_labels.emplace_back(engine::ValidEventType(type) ? type : "invalid",
                                 AppMetrics::DeadReason(err.field));
        continue;
      }
      size_t at = work.size();
      if (auto it = index.find(ev->customer_id); it != index.end()) {
        at = it->second;
      } else {
        work.push_back({ev->customer_id, {}, {}});
        index.emplace(work.back().customer, at);
      }
      Work& w = work[at];
      w.sources.push_back(id);
      w.inputs.push_back(engine::EventInput{std::move(*ev)});
      ++s_.stats.events;
    }
    std::string err = co_await Commit(work, dead, mode, fire_over_wakes, take);
    if (err.empty()) {
      for (const auto& [type, reason] : dead_labels) {
        s_.metrics.CountEvent(type, "dead");
        s_.metrics.CountDead(reason);
      }
    }
    co_return err;
  }

  // Moves the timing wheel's buckets of now and the next one into the timers set, so a wake
  // is in the set at least one bucket width before it is due. Buckets that ended before now
  // (the wheel did not move for a while: this instance just took the partition over, or the
  // clock jumped) stay where they are: every entry in them is due, so TakeDueTimers fires
  // them straight from their lists.
  awaitable<std::string> MoveWheel(TimePoint now) {
    const int64_t from = store::WheelBucket(ToUnixMillis(now));
    const int64_t target = from + store::kWheelBucketMs;
    while (!s_.stopping) {
      Result r = co_await Script(
          *conn_, wheel_sha_, store::kWheelScript,
          Cmd("4", keys_.lease(), keys_.timers(), keys_.wheel(), keys_.wheel_moved(), token_,
              std::to_string(target), std::to_string(kWheelMoveBatch), std::to_string(from)));
      if (!r.ok()) co_return "moving the timing wheel: " + r.what();
      if (r.reply.elements.size() < 2) co_return "moving the timing wheel: unexpected reply";
      if (r.reply.elements[1].integer == 0) {
        move_at_ = FromUnixMillis(target);
        // The script leaves wheel_moved alone when it already stood further (a clock behind
        // the last owner's): read what it holds.
        Result moved = co_await Call(*conn_, Cmd("GET", keys_.wheel_moved()));
        if (!moved.ok()) co_return "reading wheel_moved: " + moved.what();
        wheel_moved_ = std::strtoll(moved.reply.str.c_str(), nullptr, 10);
        past_until_ = from - store::kWheelBucketMs;
        past_more_ = true;
        break;
      }
    }
    co_return "";
  }

  // Timers taken from the set, for the next commit.
  struct Due {
    std::vector<Work> work;
    std::vector<double> lateness;   // seconds of virtual time past each wake time
    std::optional<WheelTake> take;  // fired from a wheel bucket's list instead of the set
  };

  // Takes the entries at the head of the oldest bucket that ended before the wheel's last
  // move, if any is left (MoveWheel): all of them are due. Their commit trims them off the
  // list; the bucket leaves the wheel once the list is empty. A customer listed twice in the
  // slice (an entry left by a wake that changed) fires once.
  awaitable<std::string> TakePastBucket(TimePoint now, Due* due) {
    for (int round = 0; round < 100 && past_more_; ++round) {
      if (!past_bucket_) {
        Result head = co_await Call(*conn_, Cmd("ZRANGEBYSCORE", keys_.wheel(), "-inf",
                                                std::to_string(past_until_), "LIMIT", "0", "1"));
        if (!head.ok()) co_return "ZRANGEBYSCORE: " + head.what();
        if (head.reply.elements.empty()) {
          past_more_ = false;
          break;
        }
        past_bucket_ = head.reply.elements[0].str;
      }
      Result items = co_await Call(*conn_, Cmd("LRANGE", keys_.wheel_bucket(*past_bucket_), "0",
                                               std::to_string(kTimerBatch - 1)));
      if (!items.ok()) co_return "LRANGE: " + items.what();
      if (items.reply.elements.empty()) {
        // Emptied by the last commit. Nothing adds to a bucket the wheel has moved past.
        Result z = co_await Call(*conn_, Cmd("ZREM", keys_.wheel(), *past_bucket_));
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
        due->work.push_back({std::string(customer), {}, {}, true, FromUnixMillis(wake_ms)});
        due->lateness.push_back(static_cast<double>(std::max<int64_t>(0, now_ms - wake_ms)) / 1000);
      }
      // Set even when no entry in the slice could be read, so that the commit trims them.
      due->take = WheelTake{*past_bucket_, items.reply.elements.size()};
      co_return "";
    }
    co_return "";
  }

  // Takes the timers due now (moving the timing wheel first when its time has come), and
  // learns when the next one is due. Once it took fewer than a batch, it waits a timer tick
  // before it looks again: timers due meanwhile fire together, a tick late at most.
  awaitable<std::string> TakeDueTimers(Due* due) {
    TimePoint now = s_.clock.Now();
    const bool move = !move_at_ || *move_at_ <= now;
    if (!move && next_wake_ && *next_wake_ > now) co_return "";
    const auto real_now = std::chrono::steady_clock::now();
    if (!move && real_now < fire_after_) co_return "";
    if (move) {
      std::string err = co_await MoveWheel(now);
      if (!err.empty()) co_return err;
    }
    // Past buckets first. The timers set's due entries wait until those are fired (late, not
    // lost): taking them along in the same commits made each timer cost journeyd more.
    if (past_more_) {
      std::string err = co_await TakePastBucket(now, due);
      if (!err.empty()) co_return err;
      if (due->take) {
        next_wake_ = now;  // more may be due
        co_return "";
      }
    }
    const std::string now_ms = std::to_string(ToUnixMillis(now));
    // What is due, and the first wake after it, in one round trip.
    const std::vector<store::RespCommand> query = {
        store::RespCommand::Of({"ZRANGEBYSCORE", keys_.timers(), "-inf", now_ms, "WITHSCORES",
                                "LIMIT", "0", std::to_string(kTimerBatch)}),
        store::RespCommand::Of({"ZRANGEBYSCORE", keys_.timers(), "(" + now_ms, "+inf", "WITHSCORES",
                                "LIMIT", "0", "1"}),
    };
    std::vector<Result> r = co_await store::CallAll(*conn_, query);
    for (const Result& x : r) {
      if (!x.ok()) co_return "ZRANGEBYSCORE: " + x.what();
    }
    const auto& taken = r[0].reply.elements;
    for (size_t i = 0; i + 1 < taken.size(); i += 2) {
      double due_ms = 0;  // the score: a wake time in ms, as the commit wrote it
      const std::string& score = taken[i + 1].str;
      std::from_chars(score.data(), score.data() + score.size(), due_ms);
      due->work.push_back(
          {taken[i].str, {}, {}, true, FromUnixMillis(static_cast<int64_t>(due_ms))});
      due->lateness.push_back(std::max(0.0, static_cast<double>(ToUnixMillis(now)) - due_ms) /
                              1000);
    }
    if (due->work.size() >= static_cast<size_t>(kTimerBatch)) {
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
    fire_after_ = real_now + std::chrono::milliseconds(kTimerTickMs);
    co_return "";
  }

  awaitable<std::string> Commit(
      std::vector<Work>& work,
      const std::vector<std::pair<std::string, std::vector<std::string>>>& dead, Mode mode,
      bool fire_over_wakes, const WheelTake* take) {
    if (work.empty() && dead.empty() && !take) co_return "";
    // One flow set for the whole batch, even if a reload swaps it while it waits on Redis.
    const std::shared_ptr<const flow::FlowSet> flows = s_.Flows();
    std::vector<engine::CustomerState>& states = states_;
    states.resize(work.size());
    std::vector<bool> existed(work.size(), false);
    std::vector<std::optional<TimePoint>> old_wake(work.size());
    // The customers' keys: read here, then the commit's KEYS after the fixed six.
    store::RespArgs keys_fixed;
    keys_fixed.Arg(keys_.events()).Arg(keys_.outbox()).Arg(keys_.dead());
    keys_fixed.Arg(keys_.timers()).Arg(keys_.lease()).Arg(keys_.stats());
    keys_fixed.Arg(keys_.wheel()).Arg(keys_.wheel_moved());
    store::RespArgs keys = keys_fixed;  // kCommitScript: then every customer's key
    // Fresh entries and fired timers (once the wheel has moved since we took the lease) are
    // committed as plain commands in MULTI/EXEC, fenced by WATCH (store/fence.h); replays go
    // to kCommitScript customer by customer.
    const bool bulk = mode == Mode::kFresh && wheel_moved_.has_value();
    if (take && !bulk) co_return "entries fired from a wheel bucket outside a bulk commit";
    const store::Fence fence{keys_.lease(), token_, keys_.wheel_moved(), wheel_moved_.value_or(0)};
    std::vector<store::RespCommand> reads;
    if (bulk) reads = store::FenceWatch(fence);
    if (!work.empty()) {
      store::RespArgs names;
      names.Reserve(work.size() * 40);
      for (const auto& w : work) names.Arg(customer_prefix_, w.customer);
      keys.Append(names);
      store::RespArgs mget_name;
      mget_name.Arg("MGET");
      reads.push_back(store::RespCommand::Join(mget_name, names));
    }
    std::vector<Result> read = co_await store::CallAll(*conn_, reads);
    auto refuse = [&](std::string why) -> awaitable<std::string> {
      if (bulk) co_await Call(*conn_, Cmd("UNWATCH"));  // the next transaction starts clean
      co_return why;
    };
    if (bulk) {
      std::string why = store::FenceCheck(fence, read);
      if (!why.empty()) {
        if (why.rfind("STALE", 0) == 0) ++s_.stats.stale_commits;
        co_return co_await refuse("commit refused: " + why);
      }
    }
    if (!work.empty()) {
      const Result& r = read.back();
      if (!r.ok()) co_return co_await refuse("MGET: " + r.what());
      for (size_t i = 0; i < work.size(); ++i) {
        static const Reply kNil;
        const Reply& v = i < r.reply.elements.size() ? r.reply.elements[i] : kNil;
        if (v.type == Reply::Type::kString) {
          std::string err;
          if (!engine::DecodeState(v.str, &states[i], &err)) {
            // Never lose the customer's events for a state we cannot read: stop and say so.
            co_return co_await refuse(fmt::format("customer {}: {}", work[i].customer, err));
          }
          existed[i] = true;
          old_wake[i] = states[i].wake;
        } else {
          states[i].Clear();
        }
        if (states[i].id.empty()) states[i].id = work[i].customer;
      }
    }
    const TimePoint now = s_.clock.Now();
    // The journey counts of the batch: one field per distinct (flow, step, kind, reason), with
    // each customer's share referenced by index so that a replayed customer is left out.
    std::vector<std::pair<std::string, int64_t>> stats;
    std::unordered_map<std::string, size_t> stat_index;
    store::RespArgs cust;  // kCommitScript: the per-customer part of ARGV
    struct {
      store::RespArgs acks, mset, zadd, zrem;
      std::map<int64_t, store::RespArgs> buckets;  // wheel bucket → its new entries
      std::vector<store::RespCommand> jobs;        // one XADD each
    } f;  // the bulk commit: one command per kind of effect
    (bulk ? f.mset : cust).Reserve(work.size() * 256);
    // For the metrics once the commit is in, in customer order: the events (the customer's
    // index, the type, a view into `work`, whether a duplicate) and the flows of the jobs.
    struct Counted {
      size_t customer;
      std::string_view type;
      bool duplicate;
    };
    std::vector<Counted> events_of;
    events_of.reserve(work.size());
    std::vector<std::pair<size_t, std::string>> mails_of;
    std::vector<double> fired_late(work.size(), -1);  // over wakes fired here: how late (s)
    size_t mails = 0;
    std::string field;
    const std::string outbox = keys_.outbox();
    std::vector<engine::SendJob> jobs;             // the customer's, emptied for the next
    std::vector<std::pair<size_t, int64_t>> mine;  // the customer's: stat index → count
    std::string state_bytes;                       // the customer's state, encoded
    for (size_t i = 0; i < work.size(); ++i) {
      engine::CustomerState& st = states[i];
      bool changed = false;
      jobs.clear();
      mine.clear();
      auto apply = [&](const engine::Input& in) {
        engine::Decisions d = engine::Step(*flows, s_.policy, st, in, now);
        changed = changed || d.changed;
        if (const auto* ev = std::get_if<engine::EventInput>(&in)) {
          events_of.push_back({i, ev->event.type, d.duplicate});
        }
        for (const auto& w : d.warnings) spdlog::warn("{}", w);
        for (const auto& rec : d.records) {
          if (spdlog::should_log(spdlog::level::debug)) {
            spdlog::debug("customer={} flow={} step={} {} {}", rec.customer_id, rec.flow, rec.step,
                          engine::RecordKindName(rec.kind), rec.reason);
          }
          field.clear();
          field.append(rec.flow).append(1, '\t').append(rec.step).append(1, '\t');
          field.append(engine::RecordKindName(rec.kind)).append(1, '\t').append(rec.reason);
          auto [it, fresh] = stat_index.try_emplace(field, stats.size());
          if (fresh) stats.emplace_back(field, 0);
          ++stats[it->second].second;
          auto m = std::find_if(mine.begin(), mine.end(),
                                [&](const auto& p) { return p.first == it->second; });
          if (m == mine.end()) {
            mine.emplace_back(it->second, 1);
          } else {
            ++m->second;
          }
        }
        for (auto& j : d.sends) jobs.push_back(std::move(j));
      };
      if (work[i].fired) {
        // The events that happened by the time the timer was due go first. That time is the
        // state's wake when it is due: an entry's own can be an old one, left behind when the
        // wake changed. When the state's wake is not due, the entry's time orders as before:
        // the timer fires nothing, and a wake the later events arm in the past fires only as
        // over wakes do (below).
        const TimePoint due = st.wake && *st.wake <= now ? *st.wake : work[i].due;
        auto by_due = [&](const engine::Input& in) {
          return std::get<engine::EventInput>(in).event.ts <= due;
        };
        for (const auto& in : work[i].inputs) {
          if (by_due(in)) apply(in);
        }
        apply(engine::TimerInput{});
        for (const auto& in : work[i].inputs) {
          if (!by_due(in)) apply(in);
        }
      } else {
        for (const auto& in : work[i].inputs) apply(in);
      }
      // A wake that is over once the customer's events are in (a trigger read after its first
      // wait ended) fires in this commit, after those events, when the read left no entries
      // behind; else it goes through the timers set, and fires with the next read, after that
      // read's events that happened by then.
      if (fire_over_wakes && st.wake && *st.wake <= now) {
        fired_late[i] = std::chrono::duration<double>(now - *st.wake).count();
        apply(engine::TimerInput{});
      }
      // What to write: the state (unless unchanged), and what the timers must do.
      const bool write_state = changed || !existed[i];
      if (write_state) engine::EncodeState(st, &state_bytes);
      enum class WakeOp { kKeep, kSet, kReassert, kRemove } op = WakeOp::kSet;
      if (st.wake == old_wake[i] && existed[i]) {
        // A fired entry may be an old one from the wheel, earlier than the state's wake: put
        // the state's wake back in its place.
        op = !work[i].fired ? WakeOp::kKeep : st.wake ? WakeOp::kReassert : WakeOp::kRemove;
      } else if (!st.wake) {
        op = WakeOp::kRemove;
      }
      const int64_t wake_ms = st.wake ? ToUnixMillis(*st.wake) : 0;
      if (bulk) {
        for (const auto& src : work[i].sources) f.acks.Arg(src);
        if (write_state) f.mset.Arg(customer_prefix_, work[i].customer).Arg(state_bytes);
        // Whether the customer can be in the timers set: its old wake is in a moved bucket
        // (or it fired from there). An old entry we do not know of fires early, and its
        // commit (fired) sets the set right.
        const bool in_timers =
            work[i].fired ||
            (old_wake[i] && store::WheelBucket(ToUnixMillis(*old_wake[i])) <= *wheel_moved_);
        if (op == WakeOp::kRemove) {
          if (in_timers) f.zrem.Arg(work[i].customer);
        } else if (op == WakeOp::kSet || op == WakeOp::kReassert) {
          const int64_t bucket = store::WheelBucket(wake_ms);
          if (bucket <= *wheel_moved_) {
            f.zadd.Arg(wake_ms).Arg(work[i].customer);
          } else {
            if (in_timers) f.zrem.Arg(work[i].customer);
            if (op == WakeOp::kSet) {
              char entry[24];
              auto end = std::to_chars(entry, entry + sizeof entry, wake_ms).ptr;
              *end++ = ':';
              f.buckets[bucket].Arg(std::string(entry, end) + work[i].customer);
            }
          }
        }
        for (const auto& j : jobs) {
          auto xadd = store::RespCommand::Build(512);
          xadd.Arg("XADD").Arg(outbox).Arg("*");
          store::ForEachOutboxField(
              j, [&xadd](std::string_view k, std::string_view v) { xadd.Arg(k).Arg(v); });
          f.jobs.push_back(std::move(xadd).Done());
          mails_of.emplace_back(i, j.flow);
        }
      } else {
        cust.Arg(static_cast<int64_t>(work[i].sources.size()));
        for (const auto& src : work[i].sources) cust.Arg(src);
        cust.Arg(write_state ? std::string_view(state_bytes) : std::string_view("="));
        switch (op) {
          case WakeOp::kKeep:
            cust.Arg("=");
            break;
          case WakeOp::kRemove:
            cust.Arg("");
            break;
          case WakeOp::kSet:
            cust.Arg(wake_ms);
            break;
          case WakeOp::kReassert:
            cust.Arg("~" + std::to_string(wake_ms));
            break;
        }
        cust.Arg(work[i].customer);
        cust.Arg(static_cast<int64_t>(jobs.size()));
        for (const auto& j : jobs) {
          std::vector<std::string> fields = store::OutboxFields(j);
          cust.Arg(static_cast<int64_t>(fields.size()));
          for (const auto& x : fields) cust.Arg(x);
          mails_of.emplace_back(i, j.flow);
        }
        cust.Arg(static_cast<int64_t>(mine.size()));
        for (const auto& [index, count] : mine) {
          cust.Arg(static_cast<int64_t>(index + 1));
          cust.Arg(count);
        }
      }
      mails += jobs.size();
      if (st.wake && (!next_wake_ || *st.wake < *next_wake_)) next_wake_ = st.wake;
    }
    auto started = std::chrono::steady_clock::now();
    std::vector<bool> skipped(work.size(), false);  // acknowledged before: a replay
    if (bulk) {
      // Nothing in a fresh batch can have been committed before (we hold the lease): every
      // customer applies, one command per kind of effect.
      using store::RespCommand;
      std::vector<RespCommand> body;
      for (const auto& [name, count] : stats) {
        body.push_back(RespCommand::Of({"HINCRBY", keys_.stats(), name, std::to_string(count)}));
      }
      for (const auto& d : dead) f.acks.Arg(d.first);
      const size_t nacks = f.acks.count();
      if (nacks > 0) {
        body.push_back(RespCommand::Join({"XACK", keys_.events(), store::kEventsGroup}, f.acks));
      }
      if (f.mset.count() > 0) body.push_back(RespCommand::Join({"MSET"}, f.mset));
      if (f.zadd.count() > 0) body.push_back(RespCommand::Join({"ZADD", keys_.timers()}, f.zadd));
      if (f.zrem.count() > 0) body.push_back(RespCommand::Join({"ZREM", keys_.timers()}, f.zrem));
      for (const auto& [bucket, entries] : f.buckets) {
        const std::string start = std::to_string(bucket);
        body.push_back(RespCommand::Join({"RPUSH", keys_.wheel_bucket(start)}, entries));
        body.push_back(RespCommand::Of({"ZADD", keys_.wheel(), "NX", start, start}));
      }
      for (auto& j : f.jobs) body.push_back(std::move(j));
      if (take) {
        body.push_back(RespCommand::Of(
            {"LTRIM", keys_.wheel_bucket(take->bucket), std::to_string(take->entries), "-1"}));
      }
      for (const auto& [src, fields] : dead) {
        store::RespArgs df;
        for (const auto& x : fields) df.Arg(x);
        body.push_back(RespCommand::Join({"XADD", keys_.dead(), "*"}, df));
      }
      std::vector<Result> replies =
          co_await store::CallAll(*conn_, store::InTransaction(std::move(body)));
      const Reply* exec = nullptr;
      std::string why = store::TransactionError(replies, &exec);
      if (!why.empty()) {
        if (why.rfind("STALE", 0) == 0) {
          ++s_.stats.stale_commits;
          co_return "commit refused: " + why;
        }
        co_return "commit: " + why;
      }
      const size_t xack_at = stats.size();  // the XACK's place among EXEC's replies
      if (nacks > 0 && xack_at < exec->elements.size() &&
          exec->elements[xack_at].integer < static_cast<long long>(nacks)) {
        spdlog::warn("partition {}: {} fresh entries were already acknowledged by someone else",
                     partition_, static_cast<long long>(nacks) - exec->elements[xack_at].integer);
      }
    } else {
      store::RespArgs tail;
      tail.Arg(static_cast<int64_t>(dead.size()));
      for (const auto& [src, fields] : dead) {
        tail.Arg(src).Arg(static_cast<int64_t>(fields.size()));
        for (const auto& x : fields) tail.Arg(x);
      }
      store::RespArgs head;  // EVALSHA, the SHA1, the key count
      store::RespArgs argv;  // token, group, then the batch's counts
      head.Arg("EVALSHA").Arg(commit_sha_).Arg(static_cast<int64_t>(keys.count()));
      argv.Arg(token_).Arg(store::kEventsGroup).Arg(mode == Mode::kFresh ? "f" : "r");
      argv.Arg(static_cast<int64_t>(stats.size()));
      for (const auto& [name, count] : stats) argv.Arg(name).Arg(count);
      argv.Arg(static_cast<int64_t>(work.size()));
      const store::RespCommand command = store::RespCommand::Join(head, keys, argv, cust, tail);
      Result r = co_await Call(*conn_, &command);
      if (r.reply.is_error() && r.reply.str.rfind("NOSCRIPT", 0) == 0) {
        // Redis lost its scripts (a restart or SCRIPT FLUSH): load it again; same SHA1.
        Result sha = co_await Call(*conn_, Cmd("SCRIPT", "LOAD", store::kCommitScript));
        if (!sha.ok()) co_return "cannot load the commit script: " + sha.what();
        if (sha.reply.str != commit_sha_) co_return "the commit script's SHA1 changed on reload";
        started = std::chrono::steady_clock::now();
        r = co_await Call(*conn_, &command);
      }
      if (!r.error.empty()) co_return "commit: " + r.error;
      if (r.reply.is_error()) {
        if (r.reply.str.rfind("STALE", 0) == 0) ++s_.stats.stale_commits;
        co_return "commit refused: " + r.reply.str;
      }
      if (r.reply.elements.size() >= 4 && r.reply.elements[3].integer > 0) {
        spdlog::warn("partition {}: {} fresh entries were already acknowledged by someone else",
                     partition_, r.reply.elements[3].integer);
      }
      if (r.reply.elements.size() >= 3) {
        for (const Reply& x : r.reply.elements[2].elements) {
          if (x.integer >= 0 && static_cast<size_t>(x.integer) < work.size()) {
            skipped[static_cast<size_t>(x.integer)] = true;
          }
        }
      }
    }
    s_.metrics.commit_seconds.Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    ++s_.stats.commits;
    s_.stats.mails_queued += mails;
    // Customers whose entries were acknowledged before (a replay) changed nothing.
    Tally events, queued;
    std::vector<double> late;
    for (const auto& [i, type, duplicate] : events_of) {
      events.Add(type, skipped[i] || duplicate ? "duplicate" : "processed");
    }
    for (const auto& [i, flow] : mails_of) {
      if (!skipped[i]) queued.Add(flow, "queued");
    }
    for (size_t i = 0; i < work.size(); ++i) {
      if (!skipped[i] && fired_late[i] >= 0) late.push_back(fired_late[i]);  // as from the set
    }
    s_.metrics.CountEvents(events);
    s_.metrics.CountMails(queued);
    s_.stats.timers += late.size();
    s_.metrics.timer_lateness_seconds.ObserveMany(late);
    co_return "";
  }

  asio::io_context& io_;
  Shared& s_;
  int partition_;
  Keys keys_;
  const std::string customer_prefix_ = keys_.customer_prefix();  // declared after keys_
  std::shared_ptr<store::RedisConnection> conn_, blocking_;
  std::string token_;
  std::string commit_sha_;
  std::string wheel_sha_;
  // The batch's customer states, kept from commit to commit: DecodeState reuses the room
  // they hold for the states it reads next.
  std::vector<engine::CustomerState> states_;
  // The wheel_moved value in Redis, known once we moved the wheel since taking the lease.
  std::optional<int64_t> wheel_moved_;
  std::optional<TimePoint> move_at_;  // when the timing wheel must move next (unset: at once)
  // Buckets starting at or before past_until_ had ended when the wheel last moved; past_more_
  // while some may be left, past_bucket_ the one being fired (TakePastBucket).
  int64_t past_until_ = 0;
  bool past_more_ = false;
  std::optional<std::string> past_bucket_;
  std::atomic<bool> owned_{false};  // read by the sender, on the main thread
  // Working through a backlog of due timers or events (Own): read by the sender, which yields.
  std::atomic<bool> behind_{false};
  std::atomic<int> senders_{0};  // outbox senders still running
  std::chrono::steady_clock::time_point lease_renewed_;
  std::optional<TimePoint> next_wake_;
  std::chrono::steady_clock::time_point fire_after_;  // the timer tick (TakeDueTimers)
  // Whether the last fresh read filled its batch (more entries were waiting).
  bool backlog_ = false;
};

}  // namespace

std::unique_ptr<PartitionWorker> PartitionWorker::Create(asio::io_context& io, Shared& shared,
                                                         int partition) {
  return std::make_unique<Worker>(io, shared, partition);
}

}  // namespace journeyd::app::internal
