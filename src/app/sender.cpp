#include "sender.h"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <filesystem>
#include <map>
#include <random>

#include "journeyd/app/turns.h"
#include "journeyd/engine/render.h"
#include "journeyd/mail/message.h"
#include "journeyd/mail/sink.h"
#include "journeyd/store/keys.h"
#include "journeyd/store/outbox.h"
#include "journeyd/store/outbox_queue.h"

namespace journeyd::app::internal {

using asio::awaitable;
using store::OutboxEntry;
using store::OutboxFrom;
using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr int kOutboxBatch = 200;
constexpr int kPromoteAtOnce = 100;  // due retries moved back into the outbox per round
// The turn of delivery and of a backlogged partition's worker (app/turns.h): delivery pauses
// for at most a second at a stretch.
constexpr auto kTurn = std::chrono::seconds(1);

int64_t RealNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// One outbox entry on its way out.
struct Outgoing {
  OutboxEntry entry;
  engine::SendJob job;
  std::optional<mail::BuiltMessage> message;
  std::string build_error;
  mail::SendOutcome outcome;
  bool done = false;  // delivered with a verdict, to be settled
};

// A job as the commit wrote it: rendered here from its template and vars (engine/render.h),
// with the flows loaded now, and a marketing mail's unsubscribe link signed now (entries that
// earlier versions wrote with a link keep theirs). An entry that carries its mail instead
// (subject, text and html, as earlier versions wrote it) is sent as it is.
Outgoing Parse(OutboxEntry entry, const flow::FlowSet& flows, const mail::MessageOptions& options,
               TimePoint date, const Shared& s) {
  Outgoing o;
  o.entry = std::move(entry);
  const OutboxEntry& e = o.entry;
  bool has_vars = false;
  for (const auto& f : e.fields) has_vars = has_vars || f.first == "vars";
  engine::SendJob& job = o.job;
  job.job_id = e.Field("job_id");
  job.customer_id = e.Field("customer_id");
  job.flow = e.Field("flow");
  job.to = e.Field("to");
  job.vars = e.Field("vars");
  const std::string& packed = e.Field("job");
  if (!packed.empty()) {
    if (!store::ReadOutboxJob(packed, &job, &o.build_error)) return o;
  } else {
    // As versions before the `job` field wrote it (store/outbox.h).
    job.step = e.Field("step");
    job.run = static_cast<uint32_t>(std::strtoul(e.Field("run").c_str(), nullptr, 10));
    job.marketing = e.Field("marketing") == "1";
    job.template_name = e.Field("template");
    job.locale = e.Field("locale");
    job.unsubscribe_url = e.Field("unsubscribe_url");
    auto at = ParseTimestamp(e.Field("at"));
    job.at = at ? *at : date;
  }
  const bool id_ok =
      !job.job_id.empty() && job.job_id.find_first_not_of("0123456789abcdef") == std::string::npos;
  if (!id_ok) {
    o.build_error = "bad job id";
    return o;
  }
  if (job.marketing && job.unsubscribe_url.empty() && s.unsubscribe_url) {
    job.unsubscribe_url = s.unsubscribe_url(job.customer_id, job.flow);
  }
  if (has_vars) {
    if (!engine::RenderSendJob(flows.templates(), job, &o.build_error)) return o;
  } else {
    job.subject = e.Field("subject");
    job.text = e.Field("text");
    job.html = e.Field("html");
  }
  o.message = mail::BuildMessage(job, options, date, &o.build_error);
  return o;
}

// A batch of jobs on its way out: `left` deliveries still running.
struct Batch {
  std::vector<Outgoing> items;
  int left = 0;
};

// A partition's outbox sender, in three steps a round: the next jobs (due retries promoted,
// abandoned ones claimed, or new ones read) rendered into a batch, the batch handed to the sink
// all at once, and each outcome settled in Redis as soon as it is known: a settle call takes
// every outcome that came in while the one before it ran, so that a crash leaves at most the
// mails on the open connections to be sent again. The next batch is read and built while the
// last one is being delivered; it goes out once the last one is delivered and settled.
class OutboxSender {
 public:
  OutboxSender(asio::io_context& io, Shared& s, int partition)
      : io_(io),
        s_(s),
        partition_(partition),
        cfg_(s.config.smtp),
        smtp_(cfg_.mode == "smtp" && s.smtp),
        conn_(store::RedisConnection::Create(io, RedisOptionsOf(s.config))),
        queue_(store::Keys(s.config.redis.prefix, partition), s.consumer),
        sink_(MakeSink()),
        schedule_{cfg_.retry_delay, cfg_.max_attempts, cfg_.max_age},
        options_{cfg_.from, cfg_.unsubscribe_mailto},
        rng_(std::random_device{}()),
        last_claim_(SteadyClock::now() - std::chrono::hours(1)),
        unsettled_(queue_.Settlement()),
        wake_(io, asio::steady_timer::time_point::max()) {}

  awaitable<void> Run(std::shared_ptr<const SenderLicence> licence,
                      const std::atomic<bool>& behind);

 private:
  // The daemon's one sink, shared by every partition's sender (its state is the relay's or
  // the folder's, not a partition's); one of this sender's own when there is none.
  std::shared_ptr<mail::Sink> MakeSink() const {
    if (s_.sink) return s_.sink;
    return MakeMailSink(s_.config, s_.smtp);
  }

  awaitable<void> PromoteRetries();
  awaitable<bool> NextJobs(std::vector<OutboxEntry>* jobs);
  std::unique_ptr<Batch> Build(std::vector<OutboxEntry> jobs) const;
  void Deliver(Batch& b);
  awaitable<void> DeliverOne(Outgoing* o, Batch* b);
  void Flush();
  awaitable<void> SettleLoop();
  void Wake() { wake_.cancel(); }
  awaitable<void> Settle();
  awaitable<void> WaitForRelay();
  void Account(const Outgoing& o, int64_t now_ms, store::OutboxSettlement& settlement,
               std::map<std::string, int>& deferred);
  void GiveUp(const Outgoing& o, const std::string& why, store::OutboxSettlement& settlement);

  asio::io_context& io_;
  Shared& s_;
  const int partition_;
  const Config::Smtp& cfg_;
  const bool smtp_;
  std::shared_ptr<store::RedisConnection> conn_;
  store::OutboxQueue queue_;
  std::shared_ptr<mail::Sink> sink_;
  const store::RetrySchedule schedule_;
  const mail::MessageOptions options_;
  std::mt19937_64 rng_;
  OutboxFrom from_ = OutboxFrom::kOwnPending;  // our pending jobs first
  SteadyClock::time_point last_claim_;
  // A batch whose deliveries are under way.
  std::unique_ptr<Batch> flight_;
  // Its outcomes known but not yet sent to Redis, whether a settle call is under way, and what
  // the batch out has come to so far (logged once it is settled).
  store::OutboxSettlement unsettled_;
  bool settling_ = false;
  struct Tally {
    std::map<std::string, int> deferred;  // reason → count
    int unreachable = 0;                  // not offered: the relay could not be reached
    int withheld = 0;                     // not offered: the lease had run out
    int not_written = 0;                  // no verdict: the mail folder could not be written
    bool settle_failed = false;
  } tally_;
  // Cancelled when a delivery ends or a settle call returns.
  asio::steady_timer wake_;
  std::shared_ptr<const SenderLicence> licence_;
};

awaitable<void> OutboxSender::Run(std::shared_ptr<const SenderLicence> licence,
                                  const std::atomic<bool>& behind) {
  licence_ = std::move(licence);
  const std::atomic<bool>& on = licence_->on;
  DeliveryTurns turns(kTurn);
  while (!s_.stopping && on) {
    if (!conn_->connected()) {
      std::string err = co_await Connect(*conn_);
      if (!err.empty()) {
        co_await Sleep(Duration{500});
        continue;
      }
    }
    // The worker is behind: it goes first (app/turns.h); the batch out is settled meanwhile.
    if (turns.Yield(behind.load(std::memory_order_relaxed), SteadyClock::now())) {
      if (flight_) {
        co_await Settle();
      } else {
        co_await Sleep(Duration{10});
      }
      continue;
    }
    // The lease ran out without a renewal (this process frozen, or its worker stalled): no
    // new delivery until the worker renews it, or stops this sender.
    if (!licence_->Holds(SteadyClock::now())) {
      if (flight_) co_await Settle();
      co_await Sleep(Duration{20});
      continue;
    }
    co_await WaitForRelay();
    co_await PromoteRetries();
    std::vector<OutboxEntry> jobs;
    if (!co_await NextJobs(&jobs)) continue;
    // Rendered and built while the batch before it is still being delivered.
    std::unique_ptr<Batch> next = Build(std::move(jobs));
    if (flight_) co_await Settle();
    Deliver(*next);
    flight_ = std::move(next);
  }
  // Stopping: the batch out finishes and is settled.
  if (flight_) co_await Settle();
  conn_->Close();
}

// Retries that are due go back into the outbox.
awaitable<void> OutboxSender::PromoteRetries() {
  store::OutboxCount moved = co_await queue_.PromoteDueRetries(*conn_, RealNowMs(), kPromoteAtOnce);
  if (!moved.ok()) spdlog::warn("partition {}: moving due retries: {}", partition_, moved.error);
}

// The jobs of the next batch into `*jobs`; false when there are none now (the batch out, if
// any, settled meanwhile).
awaitable<bool> OutboxSender::NextJobs(std::vector<OutboxEntry>* jobs) {
  // Jobs a dead instance took but never finished: claim them once they sat for a lease.
  // Not while a batch is out: its own entries may have sat that long.
  const auto lease = std::chrono::milliseconds(s_.config.redis.lease_ms);
  if (!flight_ && SteadyClock::now() - last_claim_ > lease) {
    last_claim_ = SteadyClock::now();
    store::OutboxJobs claimed = co_await queue_.ClaimAbandoned(*conn_, lease, kOutboxBatch);
    *jobs = std::move(claimed.entries);
    sink_->CloseIdle();
    if (!jobs->empty()) co_return true;
  }
  // Reading our own pending entries would hand us the batch that is out again.
  if (flight_ && from_ == OutboxFrom::kOwnPending) {
    co_await Settle();
    co_return false;
  }
  // While a batch is out, read the next one without waiting: an empty outbox then lets the
  // batch out finish and settle at once.
  store::OutboxJobs read = co_await queue_.Read(*conn_, from_, kOutboxBatch, !flight_);
  if (!read.ok()) {
    if (flight_) co_await Settle();
    co_await Sleep(Duration{200});
    co_return false;
  }
  if (read.entries.empty()) {
    from_ = OutboxFrom::kNew;
    if (flight_) co_await Settle();
    co_return false;
  }
  *jobs = std::move(read.entries);
  co_return true;
}

// Each job rendered with the flows loaded now (a reload may swap them) and built.
std::unique_ptr<Batch> OutboxSender::Build(std::vector<OutboxEntry> jobs) const {
  auto next = std::make_unique<Batch>();
  next->items.reserve(jobs.size());
  const TimePoint date = s_.clock.Now();
  const std::shared_ptr<const flow::FlowSet> flows = s_.Flows();
  for (OutboxEntry& e : jobs)
    next->items.push_back(Parse(std::move(e), *flows, options_, date, s_));
  return next;
}

// Every built mail of the batch to the sink at once (the SMTP pool sends as many at a time as
// it allows); a job that could not be built is settled as dead at once.
void OutboxSender::Deliver(Batch& b) {
  const int64_t now_ms = RealNowMs();
  for (auto& o : b.items) {
    if (!o.message) {
      Account(o, now_ms, unsettled_, tally_.deferred);
      continue;
    }
    ++b.left;
    asio::co_spawn(io_, DeliverOne(&o, &b), asio::detached);
  }
  Flush();
}

awaitable<void> OutboxSender::DeliverOne(Outgoing* o, Batch* b) {
  const auto start = SteadyClock::now();
  // Checked when a session is ready, right before the transaction starts: the lease may run
  // out while the mail waits for one.
  mail::SmtpPool::Guard guard = [licence = licence_] {
    return licence->on && licence->Holds(SteadyClock::now());
  };
  o->outcome = co_await sink_->Send(*o->message, o->job.job_id, std::move(guard));
  const mail::SmtpResult& res = o->outcome.result;
  // Not offered: no verdict on the mail, which stays pending and goes out again from there.
  const bool offered = !o->outcome.withheld && !res.relay_unreachable;
  if (smtp_ && offered) {
    const auto took = SteadyClock::now() - start;
    s_.metrics.smtp_seconds.Observe(std::chrono::duration<double>(took).count());
    s_.stats.smtp_micros +=
        static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(took).count());
    ++s_.stats.smtp_transactions;
  }
  o->done = o->outcome.local_error.empty() && offered;
  if (!o->outcome.local_error.empty()) ++tally_.not_written;
  if (o->outcome.withheld) ++tally_.withheld;
  if (res.relay_unreachable) ++tally_.unreachable;
  Account(*o, RealNowMs(), unsettled_, tally_.deferred);
  --b->left;
  Flush();
  Wake();
}

// Starts a settle call for the outcomes known, unless one is under way (it takes them when it
// returns).
void OutboxSender::Flush() {
  if (settling_ || unsettled_.empty()) return;
  settling_ = true;
  asio::co_spawn(io_, SettleLoop(), asio::detached);
}

// Settles what is known, again and again while more comes in, in one script call each.
awaitable<void> OutboxSender::SettleLoop() {
  while (!unsettled_.empty()) {
    store::OutboxSettlement settlement = std::exchange(unsettled_, queue_.Settlement());
    store::OutboxCount settled = co_await queue_.Settle(*conn_, std::move(settlement));
    if (!settled.ok()) {
      // The jobs stay pending and come back (our pending first, or a claim): at least once.
      spdlog::error("partition {}: settling sent mails: {}", partition_, settled.error);
      tally_.settle_failed = true;
    }
  }
  settling_ = false;
  Wake();
}

// Waits for the batch out to be delivered and settled, and logs what became of it.
awaitable<void> OutboxSender::Settle() {
  std::unique_ptr<Batch> out = std::move(flight_);
  while (out->left > 0 || settling_) {
    wake_.expires_at(asio::steady_timer::time_point::max());
    co_await wake_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  Tally t = std::exchange(tally_, Tally{});
  for (const auto& [why, n] : t.deferred) {
    spdlog::warn("partition {}: {} mail(s) deferred for a retry: {}", partition_, n, why);
  }
  const auto wait = std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::milliseconds>(
                                             sink_->next_attempt() - SteadyClock::now())
                                             .count());
  if (t.unreachable > 0) {
    spdlog::warn(
        "partition {}: the relay cannot be reached; {} mail(s) wait for it, no attempt "
        "counted (next try in {} ms)",
        partition_, t.unreachable, wait);
  }
  if (t.not_written > 0) {
    spdlog::error(
        "partition {}: {}; {} mail(s) stay in the outbox, no attempt counted (next try in {} ms)",
        partition_, sink_->health().error, t.not_written, wait);
  }
  if (t.withheld > 0) {
    spdlog::warn("partition {}: {} mail(s) not offered: the lease ran out before they went out",
                 partition_, t.withheld);
  }
  // What has no verdict is read again from our pending entries.
  if (t.settle_failed || t.unreachable > 0 || t.withheld > 0 || t.not_written > 0) {
    from_ = OutboxFrom::kOwnPending;
  }
}

// While the relay cannot be reached, waits for the sink's next try of it: the jobs waiting on
// it are sent then, and none of their attempts is counted meanwhile.
awaitable<void> OutboxSender::WaitForRelay() {
  while (!s_.stopping && licence_->on) {
    const auto left = sink_->next_attempt() - SteadyClock::now();
    if (left <= SteadyClock::duration::zero()) co_return;
    co_await Sleep(std::min(std::chrono::ceil<Duration>(left), Duration{200}));
  }
}

// One job's outcome into the settlement, the stats and the log.
void OutboxSender::Account(const Outgoing& o, int64_t now_ms, store::OutboxSettlement& settlement,
                           std::map<std::string, int>& deferred) {
  const auto& job = o.job;
  if (!o.message) {
    spdlog::warn("customer={} flow={} step={} mail not sent: {}", job.customer_id, job.flow,
                 job.step, o.build_error);
    settlement.Dead(o.entry, o.build_error);
    ++s_.stats.mails_failed;
    s_.metrics.CountMail(job.flow, "failed");
    return;
  }
  if (!o.done) return;  // stays pending, to be sent again
  const mail::SmtpResult& res = o.outcome.result;
  if (res.sent()) {
    if (smtp_) {
      spdlog::info("customer={} flow={} step={} mail sent: {} ({})", job.customer_id, job.flow,
                   job.step, job.job_id, res.reply);
      ++s_.stats.mails_sent;
      s_.metrics.CountMail(job.flow, "sent");
    } else {
      spdlog::info("customer={} flow={} step={} mail written: {}.eml", job.customer_id, job.flow,
                   job.step, job.job_id);
      ++s_.stats.mails_written;
      s_.metrics.CountMail(job.flow, "written");
    }
    settlement.Delivered(o.entry);
    return;
  }
  const int attempt = o.entry.Attempt();
  const int64_t queued = o.entry.QueuedMs();
  const bool expired = schedule_.Expired(queued, now_ms);
  const bool transient = res.status == mail::SmtpResult::Status::kTransient;
  if (transient && schedule_.Retries(attempt, expired)) {
    const int64_t delay = schedule_.DelayMs(attempt, rng_());
    settlement.Retry(o.entry, now_ms + delay, attempt + 1, queued, res.ToString());
    ++s_.stats.mails_retried;
    s_.metrics.CountMail(job.flow, "retried");
    ++deferred[res.ToString()];
    spdlog::debug("customer={} flow={} step={} mail deferred (attempt {} of {}, next in {} s): {}",
                  job.customer_id, job.flow, job.step, attempt, cfg_.max_attempts, delay / 1000,
                  res.ToString());
    return;
  }
  std::string why = res.ToString();
  if (transient) {
    why = fmt::format("gave up after {} attempt(s){}: {}", attempt,
                      expired ? " and smtp.max_age" : "", why);
  }
  GiveUp(o, why, settlement);
}

// A job given up: dead, and a bounce when the relay refused the recipient.
void OutboxSender::GiveUp(const Outgoing& o, const std::string& why,
                          store::OutboxSettlement& settlement) {
  const auto& job = o.job;
  const mail::SmtpResult& res = o.outcome.result;
  ++s_.stats.mails_failed;
  if (res.recipient_rejected) {
    ++s_.stats.mails_bounced;
    s_.metrics.CountMail(job.flow, "bounced");
    spdlog::warn("customer={} flow={} step={} address {} bounced: {}", job.customer_id, job.flow,
                 job.step, job.to, why);
    settlement.Bounced(o.entry, why, res.reply);
    return;
  }
  spdlog::warn("customer={} flow={} step={} mail failed: {}", job.customer_id, job.flow, job.step,
               why);
  s_.metrics.CountMail(job.flow, "failed");
  settlement.Dead(o.entry, why);
}

}  // namespace

mail::SmtpOptions SmtpOptionsOf(const Config& config) {
  mail::SmtpOptions o;
  const auto& s = config.smtp;
  o.host = s.host;
  o.port = s.port;
  o.tls = s.tls == "tls"    ? mail::SmtpTls::kImplicit
          : s.tls == "none" ? mail::SmtpTls::kNone
                            : mail::SmtpTls::kStartTls;
  o.tls_verify = s.tls_verify;
  o.tls_ca_file = s.tls_ca_file;
  o.username = s.username;
  o.password = s.password;
  o.helo_name = s.helo_name;
  if (o.helo_name.empty()) {
    char host[256] = {0};
    if (gethostname(host, sizeof host - 1) == 0 && host[0] != 0) o.helo_name = host;
  }
  o.connections = s.connections;
  o.rate_per_sec = s.rate_per_sec;
  o.command_timeout = s.command_timeout;
  o.data_timeout = s.data_timeout;
  o.relay_backoff_max = s.retry_delay;
  return o;
}

std::shared_ptr<mail::Sink> MakeMailSink(const Config& config,
                                         std::shared_ptr<mail::SmtpPool> pool) {
  if (config.smtp.mode == "smtp" && pool) return std::make_shared<mail::SmtpSink>(std::move(pool));
  // A folder that cannot be made now fails each write, naming the path; the jobs wait.
  std::error_code ec;
  std::filesystem::create_directories(config.smtp.dir, ec);
  if (ec) spdlog::error("cannot create smtp.dir {}: {}", config.smtp.dir, ec.message());
  return std::make_shared<mail::FileSink>(config.smtp.dir, config.smtp.retry_delay);
}

void SenderLicence::Renewed(std::chrono::steady_clock::time_point asked, int lease_ms) {
  const auto lasts = std::chrono::milliseconds(lease_ms - lease_ms / 10);
  until = std::chrono::duration_cast<std::chrono::nanoseconds>((asked + lasts).time_since_epoch())
              .count();
}

bool SenderLicence::Holds(std::chrono::steady_clock::time_point now) const {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count() <
         until.load();
}

awaitable<void> RunOutboxSender(asio::io_context& io, Shared& s, int partition,
                                std::shared_ptr<const SenderLicence> licence,
                                const std::atomic<bool>& behind) {
  OutboxSender sender(io, s, partition);
  co_await sender.Run(std::move(licence), behind);
}

}  // namespace journeyd::app::internal
