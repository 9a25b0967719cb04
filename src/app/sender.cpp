#include "sender.h"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>

#include "journeyd/app/turns.h"
#include "journeyd/engine/render.h"
#include "journeyd/mail/message.h"
#include "journeyd/mail/sink.h"
#include "journeyd/store/keys.h"
#include "journeyd/store/outbox.h"

namespace journeyd::app::internal {

using asio::awaitable;
using store::Call;
using store::Keys;
using store::Reply;
using store::Result;

namespace {

constexpr int kOutboxBatch = 200;
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
  std::string id;  // the outbox entry id
  std::vector<std::pair<std::string, std::string>> fields;
  engine::SendJob job;
  std::optional<mail::BuiltMessage> message;
  std::string build_error;
  mail::SmtpResult result;
  bool done = false;

  std::string Field(std::string_view name) const {
    for (const auto& [k, v] : fields) {
      if (k == name) return v;
    }
    return "";
  }
};

// A job as the commit wrote it: rendered here from its template and vars (engine/render.h),
// with the flows loaded now, and a marketing mail's unsubscribe link signed now (entries that
// earlier versions wrote with a link keep theirs). An entry that carries its mail instead
// (subject, text and html, as earlier versions wrote it) is sent as it is.
Outgoing Parse(const Reply& entry, const flow::FlowSet& flows, const mail::MessageOptions& options,
               TimePoint date, const Shared& s) {
  Outgoing o;
  o.id = entry.elements[0].str;
  const Reply& f = entry.elements[1];
  bool has_vars = false;
  for (size_t i = 0; i + 1 < f.elements.size(); i += 2) {
    o.fields.emplace_back(f.elements[i].str, f.elements[i + 1].str);
    has_vars = has_vars || f.elements[i].str == "vars";
  }
  engine::SendJob& job = o.job;
  job.job_id = o.Field("job_id");
  job.customer_id = o.Field("customer_id");
  job.flow = o.Field("flow");
  job.to = o.Field("to");
  job.vars = o.Field("vars");
  const std::string packed = o.Field("job");
  if (!packed.empty()) {
    if (!store::ReadOutboxJob(packed, &job, &o.build_error)) return o;
  } else {
    // As versions before the `job` field wrote it (store/outbox.h).
    job.step = o.Field("step");
    job.run = static_cast<uint32_t>(std::strtoul(o.Field("run").c_str(), nullptr, 10));
    job.marketing = o.Field("marketing") == "1";
    job.template_name = o.Field("template");
    job.locale = o.Field("locale");
    job.unsubscribe_url = o.Field("unsubscribe_url");
    auto at = ParseTimestamp(o.Field("at"));
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
    job.subject = o.Field("subject");
    job.text = o.Field("text");
    job.html = o.Field("html");
  }
  o.message = mail::BuildMessage(job, options, date, &o.build_error);
  return o;
}

// A batch of jobs on its way out: `left` deliveries still running, `all` cancelled by the
// last one.
struct Batch {
  explicit Batch(asio::io_context& io) : all(io, asio::steady_timer::time_point::max()) {}
  std::vector<Outgoing> items;
  int left = 0;
  asio::steady_timer all;
};

// The job's fields with some replaced or added (the order kept, so dead entries read well).
std::vector<std::string> FieldsWith(const Outgoing& o,
                                    const std::vector<std::pair<std::string, std::string>>& set) {
  std::vector<std::string> out;
  for (const auto& [k, v] : o.fields) {
    bool replaced = false;
    for (const auto& s : set) replaced = replaced || s.first == k;
    if (replaced || k == "source_id") continue;
    out.push_back(k);
    out.push_back(v);
  }
  for (const auto& [k, v] : set) {
    out.push_back(k);
    out.push_back(v);
  }
  return out;
}

awaitable<void> DeliverOne(mail::SmtpPool& pool, Outgoing* o, int* left, asio::steady_timer* all,
                           Shared* shared) {
  DaemonStats* stats = &shared->stats;
  auto start = std::chrono::steady_clock::now();
  o->result =
      co_await pool.Send(o->message->envelope_from, o->message->envelope_to, o->message->data);
  shared->metrics.smtp_seconds.Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  stats->smtp_micros += static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                                  std::chrono::steady_clock::now() - start)
                                                  .count());
  ++stats->smtp_transactions;
  o->done = true;
  if (--*left == 0) all->cancel();
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
  return o;
}

awaitable<void> RunOutboxSender(asio::io_context& io, Shared& s, int partition,
                                const std::atomic<bool>& owned, const std::atomic<bool>& behind) {
  const Keys keys(s.config.redis.prefix, partition);
  const auto& cfg = s.config.smtp;
  const bool smtp = cfg.mode == "smtp" && s.smtp;
  auto conn = store::RedisConnection::Create(io, RedisOptionsOf(s.config));
  if (!smtp) std::filesystem::create_directories(cfg.dir);
  const mail::FileSink files(cfg.dir);
  std::string_view start = "0";  // our pending jobs first
  auto last_claim = std::chrono::steady_clock::now() - std::chrono::hours(1);
  mail::MessageOptions mo{cfg.from, cfg.unsubscribe_mailto};
  std::string settle_sha, promote_sha;
  std::mt19937_64 rng(std::random_device{}());
  const std::vector<std::string> settle_keys = {keys.outbox(), keys.retry(), keys.dead(),
                                                keys.events()};
  // A batch whose deliveries are under way; the next one is read and built meanwhile.
  std::unique_ptr<Batch> flight;
  // Waits for the batch out to be delivered, then settles every outcome in one script call.
  auto finish = [&]() -> awaitable<void> {
    std::unique_ptr<Batch> out = std::move(flight);
    Batch& b = *out;
    if (b.left > 0) co_await b.all.async_wait(asio::as_tuple(asio::use_awaitable));
    std::vector<std::string> args = {"4"};
    for (const auto& k : settle_keys) args.push_back(k);
    args.push_back(std::string(store::kOutboxGroup));
    const int64_t now_ms = RealNowMs();
    std::map<std::string, int> deferred;  // reason → count, logged once per batch
    for (auto& o : b.items) {
      const auto& job = o.job;
      if (!o.message) {
        spdlog::warn("customer={} flow={} step={} mail not sent: {}", job.customer_id, job.flow,
                     job.step, o.build_error);
        auto f = FieldsWith(o, {{"error", o.build_error}, {"source_id", o.id}});
        args.push_back("d");
        args.push_back(o.id);
        args.push_back(std::to_string(f.size()));
        for (auto& x : f) args.push_back(std::move(x));
        ++s.stats.mails_failed;
        s.metrics.CountMail(job.flow, "failed");
        continue;
      }
      if (!o.done) continue;  // stays pending; retried from the outbox
      const mail::SmtpResult& res = o.result;
      if (res.sent()) {
        if (smtp) {
          spdlog::info("customer={} flow={} step={} mail sent: {} ({})", job.customer_id, job.flow,
                       job.step, job.job_id, res.reply);
          ++s.stats.mails_sent;
          s.metrics.CountMail(job.flow, "sent");
        } else {
          spdlog::info("customer={} flow={} step={} mail written: {}.eml", job.customer_id,
                       job.flow, job.step, job.job_id);
          ++s.stats.mails_written;
          s.metrics.CountMail(job.flow, "written");
        }
        args.push_back("a");
        args.push_back(o.id);
        continue;
      }
      int attempt = std::max(1, std::atoi(o.Field("attempt").c_str()));
      int64_t queued = std::atoll(o.Field("queued_at").c_str());
      if (queued <= 0) queued = std::atoll(o.id.c_str());  // the entry id's milliseconds
      const bool expired = now_ms - queued >= cfg.max_age.count();
      if (res.status == mail::SmtpResult::Status::kTransient && attempt < cfg.max_attempts &&
          !expired) {
        // Exponential backoff with jitter: [d/2, d) where d doubles from smtp.retry_delay.
        int64_t d = cfg.retry_delay.count();
        for (int i = 1; i < attempt && d < kHour.count(); ++i) d *= 2;
        d = std::min<int64_t>(d, std::max(kHour.count(), cfg.retry_delay.count()));
        int64_t delay = d / 2 + static_cast<int64_t>(rng() % static_cast<uint64_t>(d / 2 + 1));
        auto f = FieldsWith(o, {{"attempt", std::to_string(attempt + 1)},
                                {"queued_at", std::to_string(queued)},
                                {"last_error", res.ToString()}});
        args.push_back("r");
        args.push_back(o.id);
        args.push_back(std::to_string(now_ms + delay));
        args.push_back(nlohmann::json(f).dump());
        ++s.stats.mails_retried;
        s.metrics.CountMail(job.flow, "retried");
        ++deferred[res.ToString()];
        spdlog::debug(
            "customer={} flow={} step={} mail deferred (attempt {} of {}, next in {} s): "
            "{}",
            job.customer_id, job.flow, job.step, attempt, cfg.max_attempts, delay / 1000,
            res.ToString());
        continue;
      }
      std::string why = res.ToString();
      if (res.status == mail::SmtpResult::Status::kTransient) {
        why = fmt::format("gave up after {} attempt(s){}: {}", attempt,
                          expired ? " and smtp.max_age" : "", why);
      }
      auto f = FieldsWith(o, {{"error", why}, {"source_id", o.id}});
      ++s.stats.mails_failed;
      if (res.recipient_rejected) {
        ++s.stats.mails_bounced;
        s.metrics.CountMail(job.flow, "bounced");
        spdlog::warn("customer={} flow={} step={} address {} bounced: {}", job.customer_id,
                     job.flow, job.step, job.to, why);
        nlohmann::json data = {{"email", job.to}, {"reply", res.reply}, {"job_id", job.job_id}};
        std::vector<std::string> ev = {"type",          "bounce", "customer_id",
                                       job.customer_id, "data",   data.dump()};
        args.push_back("b");
        args.push_back(o.id);
        args.push_back(std::to_string(f.size()));
        for (auto& x : f) args.push_back(std::move(x));
        args.push_back(std::to_string(ev.size()));
        for (auto& x : ev) args.push_back(std::move(x));
        continue;
      }
      spdlog::warn("customer={} flow={} step={} mail failed: {}", job.customer_id, job.flow,
                   job.step, why);
      s.metrics.CountMail(job.flow, "failed");
      args.push_back("d");
      args.push_back(o.id);
      args.push_back(std::to_string(f.size()));
      for (auto& x : f) args.push_back(std::move(x));
    }
    for (const auto& [why, n] : deferred) {
      spdlog::warn("partition {}: {} mail(s) deferred for a retry: {}", partition, n, why);
    }
    if (args.size() > 6) {
      Result settled = co_await Script(*conn, settle_sha, store::kSettleScript, std::move(args));
      if (!settled.ok()) {
        // The jobs stay pending and come back (our pending first, or a claim): at least once.
        spdlog::error("partition {}: settling sent mails: {}", partition, settled.what());
        start = "0";
      }
    }
  };
  DeliveryTurns turns(kTurn);
  while (!s.stopping && owned) {
    if (!conn->connected()) {
      std::string err = co_await Connect(*conn);
      if (!err.empty()) {
        co_await Sleep(Duration{500});
        continue;
      }
    }
    // The worker is behind: it goes first (app/turns.h); the batch out is settled meanwhile.
    if (turns.Yield(behind.load(std::memory_order_relaxed), std::chrono::steady_clock::now())) {
      if (flight) {
        co_await finish();
      } else {
        co_await Sleep(Duration{10});
      }
      continue;
    }
    // Retries that are due go back into the outbox.
    Result moved =
        co_await Script(*conn, promote_sha, store::kPromoteScript,
                        Cmd("2", keys.retry(), keys.outbox(), std::to_string(RealNowMs()), "100"));
    if (!moved.ok()) spdlog::warn("partition {}: moving due retries: {}", partition, moved.what());

    // Jobs a dead instance took but never finished: claim them once they sat for a lease.
    // Not while a batch is out: its own entries may have sat that long.
    Reply claimed;
    if (!flight && std::chrono::steady_clock::now() - last_claim >
                       std::chrono::milliseconds(s.config.redis.lease_ms)) {
      last_claim = std::chrono::steady_clock::now();
      Result c =
          co_await Call(*conn, Cmd("XAUTOCLAIM", keys.outbox(), std::string(store::kOutboxGroup),
                                   s.consumer, std::to_string(s.config.redis.lease_ms), "0-0",
                                   "COUNT", std::to_string(kOutboxBatch)));
      if (c.ok() && c.reply.elements.size() >= 2) claimed = std::move(c.reply.elements[1]);
      if (smtp) s.smtp->CloseIdle();
    }
    // Reading our own pending entries ("0") would hand us the batch that is out again.
    if (flight && start == "0") {
      co_await finish();
      continue;
    }
    Result r;
    if (claimed.elements.empty()) {
      // While a batch is out, read the next one without waiting: an empty outbox then lets
      // the batch out finish and settle at once.
      std::vector<std::string> read = Cmd("XREADGROUP", "GROUP", std::string(store::kOutboxGroup),
                                          s.consumer, "COUNT", std::to_string(kOutboxBatch));
      if (!flight) {
        read.push_back("BLOCK");
        read.push_back("200");
      }
      read.push_back("STREAMS");
      read.push_back(keys.outbox());
      read.emplace_back(start);
      r = co_await Call(*conn, std::move(read), Duration{5200});
      if (!r.ok()) {
        if (flight) co_await finish();
        co_await Sleep(Duration{200});
        continue;
      }
      if (EntryCount(r.reply) == 0) {
        if (start == "0") start = ">";
        if (flight) co_await finish();
        continue;
      }
    }
    const Reply& entries = claimed.elements.empty() ? r.reply.elements[0].elements[1] : claimed;
    // Rendered and built while the batch before it is still being delivered.
    auto next = std::make_unique<Batch>(io);
    next->items.reserve(entries.elements.size());
    const TimePoint date = s.clock.Now();
    const std::shared_ptr<const flow::FlowSet> flows = s.Flows();  // a reload may swap them
    for (const Reply& e : entries.elements) {
      if (e.elements.size() < 2) continue;
      next->items.push_back(Parse(e, *flows, mo, date, s));
    }
    if (flight) co_await finish();

    // Deliver: files at once; SMTP all together, as many at a time as the pool allows.
    for (auto& o : next->items) {
      if (!o.message) continue;
      if (!smtp) {
        std::string err = files.Write(o.message->data, o.job.job_id);
        if (!err.empty()) {
          spdlog::error("{}: the mail stays in the outbox", err);
          continue;
        }
        o.result.status = mail::SmtpResult::Status::kSent;
        o.done = true;
        continue;
      }
      ++next->left;
      asio::co_spawn(io, DeliverOne(*s.smtp, &o, &next->left, &next->all, &s), asio::detached);
    }
    flight = std::move(next);
  }
  // Stopping: the batch out finishes and is settled.
  if (flight) co_await finish();
  conn->Close();
}

}  // namespace journeyd::app::internal
