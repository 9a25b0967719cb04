#include "journeyd/app/daemon.h"

#include <spdlog/spdlog.h>

#include <fmt/format.h>
#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <functional>
#include <random>
#include <thread>
#include <vector>

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "admin_api.h"
#include "journeyd/admin/server.h"
#include "journeyd/app/unsubscribe.h"
#include "journeyd/host/time_zones.h"
#include "journeyd/store/clock_anchor.h"
#include "journeyd/store/sync.h"
#include "notify.h"
#include "partition.h"
#include "reload.h"
#include "runtime.h"
#include "sender.h"

namespace journeyd::app {

namespace asio = boost::asio;

TimePoint ScaledClock::Now() const {
  auto real = std::chrono::time_point_cast<Duration>(std::chrono::system_clock::now());
  if (scale_ == 1) return real;
  auto elapsed = static_cast<double>((real - anchor_).count());
  return anchor_ + Duration{static_cast<int64_t>(elapsed * scale_)};
}

Duration ScaledClock::RealDelay(Duration d) const {
  if (d.count() <= 0) return Duration{0};
  return Duration{static_cast<int64_t>(static_cast<double>(d.count()) / scale_) + 1};
}

namespace {

// With clock.scale, every instance and every restart must agree on when virtual time began,
// or timers would fire early or late: the anchor is kept in Redis (first writer wins).
TimePoint ClockAnchor(const Config& config) {
  auto now = std::chrono::time_point_cast<Duration>(std::chrono::system_clock::now());
  if (config.clock_scale == 1) return now;
  store::RedisOptions o = RedisOptionsOf(config);
  std::string err;
  auto redis = store::SyncRedis::Connect(o, &err);
  if (!redis) {
    spdlog::warn("clock.scale: {}; virtual time starts now", err);
    return now;
  }
  auto anchor = store::AgreeClockAnchor(*redis, config.redis.prefix, ToUnixMillis(now), &err);
  if (!anchor) return now;
  return FromUnixMillis(*anchor);
}

// How much lower than the partition workers the main thread runs (see below).
constexpr int kDeliveryNice = 10;

// Lowers the calling thread's scheduling priority by kDeliveryNice (Linux: a thread's nice
// value is its own, and threads it starts later inherit it). Lowering needs no privilege;
// under a seccomp filter that denies setpriority it fails, and everything runs as before.
void LowerThisThread() {
  const auto tid = static_cast<id_t>(::syscall(SYS_gettid));
  errno = 0;
  const int now = ::getpriority(PRIO_PROCESS, tid);
  if (now == -1 && errno != 0) return;
  const int lower = std::min(19, now + kDeliveryNice);
  if (::setpriority(PRIO_PROCESS, tid, lower) != 0) {
    spdlog::info("mail delivery runs at the partition workers' priority: setpriority: {}",
                 std::strerror(errno));
    return;
  }
  spdlog::debug("mail delivery and the admin server at nice {}, the partition workers at {}", lower,
                now);
}

}  // namespace

int WorkerThreads(int configured, int cores, int partitions) {
  return std::clamp(configured > 0 ? configured : cores, 1, std::max(partitions, 1));
}

// Over 80 lines, left whole here: the change that made the clock anchor a store operation owns
// only this file's Redis commands, and the workers', senders' and admin server's set-up in it
// are being reworked by their owners at the same time. Splitting it is theirs to do after.
int RunDaemon(const Config& config, std::shared_ptr<const flow::FlowSet> flows) {
  // hiredis writes with write(2): a Redis that dies mid-write must be a connection error to
  // reconnect from, not a SIGPIPE that ends the process without a word.
  std::signal(SIGPIPE, SIG_IGN);
  asio::io_context io(1);
  auto anchor = ClockAnchor(config);
  internal::Shared shared{
      config, std::move(flows), {}, ScaledClock(config.clock_scale, anchor), {}, false,
      "",     nullptr,          {}};
  {
    char host[256] = {0};
    gethostname(host, sizeof host - 1);
    std::random_device rd;
    shared.consumer = fmt::format("{}-{}-{:08x}", host, getpid(), rd());
  }
  engine::Policy& p = shared.policy;
  p.timezone = config.policy.timezone;
  p.zones = &host::SystemTimeZones();
  p.render_mail = false;  // the outbox sender renders each job when it sends it
  if (config.policy.quiet_hours) {
    p.quiet_start = config.policy.quiet_hours->first;
    p.quiet_end = config.policy.quiet_hours->second;
  }
  if (config.policy.frequency_cap) {
    p.cap_count = config.policy.frequency_cap->first;
    p.cap_window = config.policy.frequency_cap->second;
  }
  std::string secret = config.admin.secret;
  if (secret.empty()) {
    // No secret configured: a random one for this run (links stop working after a restart).
    std::random_device rd;
    for (int i = 0; i < 4; ++i) secret += fmt::format("{:08x}", rd());
    spdlog::warn(
        "admin.secret_file is not set: unsubscribe links are signed with a key that "
        "changes at every restart");
  }
  const UnsubscribeTokens tokens(secret);
  std::string base = config.admin.public_url;
  // Not in the engine's policy: the link is signed when the mail is sent (sender.cpp), with
  // the key and base of that moment, and the outbox entry is a third smaller without it.
  shared.unsubscribe_url = [&tokens, base](std::string_view customer, std::string_view flow) {
    return tokens.Url(base, customer, flow);
  };

  if (config.smtp.mode == "smtp") {
    shared.smtp =
        std::make_shared<mail::SmtpPool>(io.get_executor(), internal::SmtpOptionsOf(config));
  }
  shared.main_io = &io;
  // The partitions' workers on threads of their own, one per core at most (DESIGN.md §2) or
  // redis.worker_threads: partition n on thread n mod threads. The outbox senders stay here,
  // on the main thread.
  const int threads =
      WorkerThreads(config.redis.worker_threads,
                    static_cast<int>(std::thread::hardware_concurrency()), config.redis.partitions);
  std::vector<std::unique_ptr<asio::io_context>> worker_io;
  for (int t = 0; t < threads; ++t) worker_io.push_back(std::make_unique<asio::io_context>(1));
  std::vector<std::unique_ptr<internal::PartitionWorker>> workers;
  std::atomic<int> running{0};
  for (int n = 0; n < config.redis.partitions; ++n) {
    asio::io_context& wio = *worker_io[static_cast<size_t>(n % threads)];
    workers.push_back(internal::PartitionWorker::Create(wio, shared, n));
    ++running;
    asio::co_spawn(wio, workers.back()->Run(), [&](std::exception_ptr e) {
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          spdlog::critical("partition worker failed: {}", ex.what());
        }
      }
      // The last worker to finish after a stop request ends the process.
      if (--running == 0) io.stop();
    });
  }
  internal::AdminApi admin_api(io, shared, tokens);
  admin::AdminServer admin(io, config.admin.listen, admin_api.Routes());
  std::string admin_error = admin.Start();
  if (!admin_error.empty()) {
    spdlog::error("{}", admin_error);
    return 1;
  }

  std::vector<asio::io_context*> worker_loops;
  for (auto& wio : worker_io) worker_loops.push_back(wio.get());
  internal::ServiceNotifier notifier(io, shared, worker_loops);
  notifier.Start();

  // SIGHUP: reload. Each batch holds its own copy of the flow-set pointer (partition.cpp,
  // Commit), so swapping it here never splits a batch between two flow sets.
  asio::signal_set hup(io, SIGHUP);
  std::function<void()> wait_hup = [&] {
    hup.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec || shared.stopping) return;
      notifier.Reloading();
      notifier.Reloaded(internal::ReloadFlows(shared).summary);
      wait_hup();
    });
  };
  wait_hup();

  asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    spdlog::info("signal {}: finishing the batch in hand and stopping", sig);
    notifier.Stopping();
    shared.stopping = true;
    hup.cancel();
    admin.Stop();
    // Hard stop if something hangs.
    auto t = std::make_shared<asio::steady_timer>(io, std::chrono::seconds(8));
    t->async_wait([&io, t](auto) { io.stop(); });
  });
  // The worker threads start once the admin server listens: a failed start has done nothing.
  // However the main loop ends (the workers done, the hard stop), they stop and are joined
  // before what they use goes away.
  std::vector<std::thread> worker_threads;
  struct Join {
    std::vector<std::unique_ptr<asio::io_context>>& ios;
    std::vector<std::thread>& threads;
    ~Join() {
      for (auto& i : ios) i->stop();
      for (auto& t : threads) {
        if (t.joinable()) t.join();
      }
    }
  } join{worker_io, worker_threads};
  for (auto& wio : worker_io) worker_threads.emplace_back([&wio] { wio->run(); });
  // Once the machine is busy, committing comes first: the partition workers (events read,
  // timers fired, send jobs committed) keep their priority and this thread, with the outbox
  // senders' rendering and SMTP, takes what they leave. A burst of due timers is committed
  // sooner and its mails follow from the outbox; when the cores are not all busy, nothing
  // changes (README, Performance).
  LowerThisThread();
  spdlog::info("journeyd running: {} partition(s) on {} thread(s), {} flow(s), admin on {}",
               config.redis.partitions, threads, shared.Flows()->flows().size(),
               config.admin.listen);
  io.run();
  spdlog::info(
      "journeyd stopped: {} events, {} timers, {} mails queued, {} written, {} sent, {} failed",
      shared.stats.events.load(), shared.stats.timers.load(), shared.stats.mails_queued.load(),
      shared.stats.mails_written.load(), shared.stats.mails_sent.load(),
      shared.stats.mails_failed.load());
  return 0;
}

}  // namespace journeyd::app
