#include "partition.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <chrono>
#include <optional>

#include "journeyd/engine/batch.h"
#include "journeyd/store/commit.h"
#include "journeyd/store/entries.h"
#include "journeyd/store/events.h"
#include "journeyd/store/keys.h"
#include "journeyd/store/lease.h"
#include "journeyd/store/streams.h"
#include "journeyd/store/wheel.h"
#include "sender.h"

namespace journeyd::app::internal {

using asio::awaitable;
using store::CommitMode;
using store::Keys;
using store::Reply;
using store::Result;

namespace {

// Stream entries read at a time (fresh, pending or claimed), and due timers taken at a time.
// A batch of events holds their replies, states and commit at once: 250 of them run at less
// CPU per event than 500 (the working set stays in the core's cache), while timers, whose
// commits are mostly outbox entries, go as well or better in 500s (docs/performance.md).
constexpr int kBatch = 250;
constexpr int kTimerBatch = 500;
// While a timer is due within a BLOCK's granularity, how long the loop sleeps between reads.
constexpr int64_t kPollMs = 10;
// Events read with due timers: few, so that the timers' commit is quick.
constexpr int kBatchWithTimers = 100;
// Sent mails stay in the outbox as a recent audit trail until it holds this many entries.
constexpr int64_t kOutboxKept = 100000;

// The worker of one partition: read → plan → commit. Redis is reached only through the
// store's operations (lease, event stream, timer wheel, batch commit); the plan is pure
// (engine::PlanBatch).
class Worker final : public PartitionWorker {
 public:
  Worker(asio::io_context& io, Shared& shared, int partition)
      : io_(io),
        s_(shared),
        partition_(partition),
        keys_(shared.config.redis.prefix, partition),
        lease_(keys_, shared.config.redis.lease_ms),
        events_(keys_, shared.consumer),
        wheel_(keys_, store::WheelLimits{.take = kTimerBatch}, &shared.stopping),
        committer_(keys_) {}

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
      StopSender();
      if (owned_) {
        owned_ = false;
        --s_.stats.partitions_owned;
      }
      if (s_.stopping) break;
      spdlog::warn("partition {}: {}", partition_, why);
      co_await Sleep(Duration{200});
    }
    StopSender();
    // Give the partition up at once so another instance takes over without waiting.
    co_await lease_.Release(*conn_);
    // Let the outbox sender finish its batch and close its connection first: a coroutine
    // left waiting on Redis when the loop stops would never be freed.
    for (int i = 0; i < 300 && senders_ > 0; ++i) co_await Sleep(Duration{20});
    conn_->Close();
    blocking_->Close();
  }

 private:
  // Takes the lease and works the partition until the lease or the connection is lost.
  awaitable<std::string> Own() {
    std::string err = co_await TakeLease();
    if (!err.empty() || s_.stopping) co_return s_.stopping ? "stopping" : err;
    err = co_await Prepare();
    if (!err.empty()) co_return err;
    last_claim_ = std::chrono::steady_clock::now();
    while (!s_.stopping) {
      StartSender();
      bool done = false;
      err = co_await Turn(&done);
      if (!err.empty()) co_return err;
      if (done) break;
    }
    co_return "stopping";
  }

  // Starts the partition's outbox sender, on the main thread with the SMTP pool and the admin
  // server, unless one runs. One at a time: a sender of an earlier ownership first settles the
  // batch it has out (it stops at its next round), or a new one would read that batch again
  // from the consumer's pending entries and send it twice.
  void StartSender() {
    if (licence_ || senders_ > 0) return;
    licence_ = std::make_shared<SenderLicence>();
    licence_->Renewed(lease_renewed_, lease_.lease_ms());
    ++senders_;
    behind_ = false;
    asio::co_spawn(*s_.main_io, RunOutboxSender(*s_.main_io, s_, partition_, licence_, behind_),
                   [this](std::exception_ptr) { --senders_; });
  }

  // Tells the sender to stop once its batch out is settled.
  void StopSender() {
    if (!licence_) return;
    licence_->on = false;
    licence_.reset();
  }

  // Waits until the lease is ours (or the daemon stops). "" or why not.
  awaitable<std::string> TakeLease() {
    while (!s_.stopping) {
      bool taken = false;
      const auto asked = std::chrono::steady_clock::now();
      std::string err = co_await lease_.TryTake(*conn_, &taken);
      if (!err.empty()) co_return err;
      if (taken) {
        lease_renewed_ = asked;
        break;
      }
      co_await Sleep(Duration{lease_.lease_ms() / 3});
    }
    if (s_.stopping) co_return "";
    owned_ = true;
    wheel_.Reset();  // move the wheel first: the last owner may have stopped long ago
    ++s_.stats.partitions_owned;
    spdlog::info("partition {}: owned (fencing token {})", partition_, lease_.token());
    co_return "";
  }

  // The groups and the commit script, then what an earlier run left: our own pending entries
  // first (a crash between read and commit), then a dead owner's.
  awaitable<std::string> Prepare() {
    std::string err = co_await events_.EnsureGroup(*conn_);
    if (err.empty()) err = co_await store::EnsureGroup(*conn_, keys_.outbox(), store::kOutboxGroup);
    if (err.empty()) err = co_await committer_.LoadScript(*conn_);
    if (err.empty()) err = co_await DrainPending();
    if (err.empty()) err = co_await ClaimAbandoned();
    co_return err;
  }

  // Renews the lease when a third of it has passed. "" or why it is lost.
  awaitable<std::string> RenewIfDue() {
    auto now = std::chrono::steady_clock::now();
    if (now - lease_renewed_ < std::chrono::milliseconds(lease_.lease_ms() / 3)) co_return "";
    std::string err = co_await lease_.Renew(*conn_);
    if (err.empty()) {
      lease_renewed_ = now;
      if (licence_) licence_->Renewed(now, lease_.lease_ms());
    }
    co_return err;
  }

  // Once a lease length: entries a dead instance left, and the streams trimmed of what every
  // reader has acknowledged (the outbox only once it holds kOutboxKept entries).
  awaitable<std::string> Housekeeping() {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_claim_ <= std::chrono::milliseconds(lease_.lease_ms())) co_return "";
    std::string err = co_await ClaimAbandoned();
    if (!err.empty()) co_return err;
    last_claim_ = std::chrono::steady_clock::now();
    err = co_await events_.Trim(*conn_);
    if (!err.empty()) co_return err;
    if (co_await store::StreamLength(*conn_, keys_.outbox()) > kOutboxKept) {
      err = co_await store::TrimAcknowledged(*conn_, keys_.outbox(), store::kOutboxGroup);
    }
    co_return err;
  }

  // How long the next read may wait for events (ms, at most 300): not past the next timer,
  // nor (once a take found less than a batch) before the timer tick is over.
  int64_t WaitMs(bool timers_due) const {
    if (timers_due) return 0;
    const std::optional<TimePoint> next = wheel_.next_wake();
    if (!next) return 300;
    const int64_t until =
        std::clamp<int64_t>(s_.clock.RealDelay(*next - s_.clock.Now()).count(), 0, 300);
    const auto tick = std::chrono::ceil<std::chrono::milliseconds>(wheel_.fire_after() -
                                                                   std::chrono::steady_clock::now())
                          .count();
    return std::clamp<int64_t>(std::max<int64_t>(until, tick), 0, 300);
  }

  // One turn of the loop: the lease renewed, the due timers taken, events read (waiting no
  // longer than the next timer), all committed together. `*done` when the daemon stops.
  awaitable<std::string> Turn(bool* done) {
    std::string err = co_await RenewIfDue();
    if (err.empty()) err = co_await Housekeeping();
    if (!err.empty()) co_return err;
    // The timers due now are committed together with the events read next.
    batch_.Clear();
    store::DueTimers due;
    err = co_await wheel_.TakeDue(*conn_, lease_.token(), s_.clock.Now(), &batch_, &due);
    if (!err.empty()) co_return err;
    // Redis ends a BLOCK only at its own event-loop tick (up to 100 ms late), so a BLOCK ends
    // at least that long before the next timer, and a timer due sooner is waited for here, on
    // a local timer, in steps of kPollMs each followed by a read that does not block: events
    // that arrive meanwhile wait no longer than a step.
    const int64_t until = WaitMs(due.count > 0);
    Result r;
    int count = kBatch;
    if (until >= 250) {
      r = co_await events_.ReadNew(*blocking_, kBatch, std::min<int64_t>(200, until - 100));
    } else {
      if (until > 0) co_await Sleep(Duration{std::min<int64_t>(until, kPollMs)});
      // Timers due: a short batch of events with them, so that their commit is quick; behind
      // a backlog, a whole one, so that the backlog shrinks.
      count = due.count == 0 || backlog_ ? kBatch : kBatchWithTimers;
      r = co_await events_.ReadNew(*blocking_, count);
    }
    if (!r.error.empty()) co_return r.error;
    if (r.reply.is_error()) co_return "XREADGROUP: " + r.reply.str;
    if (s_.stopping && r.reply.is_nil()) {
      *done = true;
      co_return "";
    }
    backlog_ = store::EntryCount(r.reply) >= static_cast<size_t>(count);
    // More timers are due than one take holds (a full batch, or a bucket the wheel moved
    // past), or more events wait than one read took: the outbox sender yields (sender.cpp).
    const bool more_due = due.take.has_value() || due.count >= static_cast<size_t>(kTimerBatch);
    err = co_await ProcessEntries(store::StreamEntries(r.reply), CommitMode::kFresh, !backlog_,
                                  due.take ? &*due.take : nullptr);
    if (!err.empty()) co_return err;
    behind_ = backlog_ || more_due;
    s_.stats.timers += due.lateness.size();
    s_.metrics.timer_lateness_seconds.ObserveMany(due.lateness);
    co_return "";
  }

  awaitable<std::string> DrainPending() {
    while (!s_.stopping) {
      Result r = co_await events_.ReadPending(*conn_, kBatch);
      if (!r.ok()) co_return "reading pending entries: " + r.what();
      if (store::EntryCount(r.reply) == 0) co_return "";
      batch_.Clear();
      std::string err = co_await ProcessEntries(store::StreamEntries(r.reply), CommitMode::kReplay);
      if (!err.empty()) co_return err;
    }
    co_return "";
  }

  awaitable<std::string> ClaimAbandoned() {
    std::string cursor = "0-0";
    for (int round = 0; round < 1000 && !s_.stopping; ++round) {
      Result r;
      const Reply* entries = nullptr;
      std::string err = co_await events_.ClaimAbandoned(*conn_, s_.config.redis.lease_ms, kBatch,
                                                        &cursor, &r, &entries);
      if (!err.empty()) co_return err;
      if (entries) {
        spdlog::info("partition {}: took over {} entries of another instance", partition_,
                     entries->elements.size());
        batch_.Clear();
        err = co_await ProcessEntries(entries, CommitMode::kReplay);
        if (!err.empty()) co_return err;
      }
      if (cursor == "0-0") break;
    }
    co_return "";
  }

  // Adds the stream entries `entries` (may be null) to the batch, beside the timers it holds
  // already, and commits it. `fire_over_wakes`: the read left no entries behind, so wakes that
  // are over once a customer's entries are in fire in this commit.
  awaitable<std::string> ProcessEntries(const Reply* entries, CommitMode mode,
                                        bool fire_over_wakes = false,
                                        const store::WheelTake* take = nullptr) {
    const TimePoint now = s_.clock.Now();
    if (entries) {
      batch_.Reserve(entries->elements.size());
      store::ForEachEntry(*entries, [&](std::string_view id, const auto& fields) {
        if (!batch_.AddEntry(id, fields, now)) {
          spdlog::warn("partition {}: entry {} goes to the dead stream: {}", partition_, id,
                       batch_.dead().back().error);
        }
      });
    }
    s_.stats.events += batch_.events();
    s_.stats.dead += batch_.dead().size();
    std::string err = co_await Commit(mode, fire_over_wakes, take);
    if (err.empty()) {
      for (const auto& d : batch_.dead()) {
        s_.metrics.CountEvent(d.type, "dead");
        s_.metrics.CountDead(AppMetrics::DeadReason(d.error_field));
      }
    }
    co_return err;
  }

  // Read → plan → commit, for the batch as it stands.
  awaitable<std::string> Commit(CommitMode mode, bool fire_over_wakes,
                                const store::WheelTake* take) {
    if (batch_.empty() && !take) co_return "";
    // One flow set for the whole batch, even if a reload swaps it while it waits on Redis.
    const std::shared_ptr<const flow::FlowSet> flows = s_.Flows();
    const store::CommitContext context{mode, lease_.token(), wheel_.wheel_moved()};
    bool stale = false;
    std::string err = co_await committer_.ReadStates(*conn_, context, batch_, &stale);
    if (!err.empty()) {
      if (stale) ++s_.stats.stale_commits;
      co_return err;
    }
    const engine::PlanOptions options{fire_over_wakes, spdlog::should_log(spdlog::level::debug)};
    engine::PlanBatch(*flows, s_.policy, s_.clock.Now(), options, &batch_);
    LogPlan();
    wheel_.NoteWake(batch_.earliest_wake());
    const auto started = std::chrono::steady_clock::now();
    store::CommitOutcome out = co_await committer_.Write(*conn_, context, batch_, take);
    if (!out.error.empty()) {
      if (out.stale) ++s_.stats.stale_commits;
      co_return out.error;
    }
    if (out.already_acked > 0) {
      spdlog::warn("partition {}: {} fresh entries were already acknowledged by someone else",
                   partition_, out.already_acked);
    }
    s_.metrics.commit_seconds.Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    CountCommitted(out.skipped);
    co_return "";
  }

  void LogPlan() const {
    for (const auto& w : batch_.warnings()) spdlog::warn("{}", w);
    for (const auto& rec : batch_.records()) {
      spdlog::debug("customer={} flow={} step={} {} {}", rec.customer_id, rec.flow, rec.step,
                    engine::RecordKindName(rec.kind), rec.reason);
    }
  }

  // The metrics of a committed batch. Customers whose entries were acknowledged before (a
  // replay) changed nothing.
  void CountCommitted(const std::vector<bool>& skipped) {
    ++s_.stats.commits;
    s_.stats.mails_queued += batch_.mails();
    Tally events, queued;
    std::vector<double> late;
    for (const auto& [i, type, duplicate] : batch_.counted_events()) {
      events.Add(type, skipped[i] || duplicate ? "duplicate" : "processed");
    }
    const auto customers = batch_.customers();
    for (size_t i = 0; i < customers.size(); ++i) {
      if (skipped[i]) continue;
      for (const auto& j : customers[i].jobs) queued.Add(j.flow, "queued");
      if (customers[i].fired_late >= 0) late.push_back(customers[i].fired_late);  // as from the set
    }
    s_.metrics.CountEvents(events);
    s_.metrics.CountMails(queued);
    s_.stats.timers += late.size();
    s_.metrics.timer_lateness_seconds.ObserveMany(late);
  }

  asio::io_context& io_;
  Shared& s_;
  int partition_;
  Keys keys_;
  store::Lease lease_;
  store::EventStream events_;
  store::TimerWheel wheel_;
  store::BatchCommitter committer_;
  std::shared_ptr<store::RedisConnection> conn_, blocking_;
  // The batch being read, planned and committed: kept from commit to commit for the room its
  // customers and their states hold.
  engine::Batch batch_;
  std::atomic<bool> owned_{false};
  // The running sender's go-ahead (null when it was told to stop): read on the main thread.
  std::shared_ptr<SenderLicence> licence_;
  // Working through a backlog of due timers or events (Turn): read by the sender, which yields.
  std::atomic<bool> behind_{false};
  std::atomic<int> senders_{0};  // outbox senders still running
  // When the call that took or last renewed the lease started: the lease lasts from then.
  std::chrono::steady_clock::time_point lease_renewed_;
  std::chrono::steady_clock::time_point last_claim_;
  // Whether the last fresh read filled its batch (more entries were waiting).
  bool backlog_ = false;
};

}  // namespace

std::unique_ptr<PartitionWorker> PartitionWorker::Create(asio::io_context& io, Shared& shared,
                                                         int partition) {
  return std::make_unique<Worker>(io, shared, partition);
}

}  // namespace journeyd::app::internal
