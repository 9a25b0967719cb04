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

// This process's consumer name in the streams' groups: host, pid and a random part.
std::string ConsumerName() {
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  std::random_device rd;
  return fmt::format("{}-{}-{:08x}", host, getpid(), rd());
}

// The engine's policy from the config's `policy` keys, with the system's time zones.
void SetPolicy(const Config& config, engine::Policy& p) {
  p.timezone = config.policy.timezone;
  p.zones = &host::SystemTimeZones();
  p.render_mail = false;  // the outbox sender renders each job when it sends it
  p.rfm = config.rfm;
  if (config.policy.quiet_hours) {
    p.quiet_start = config.policy.quiet_hours->first;
    p.quiet_end = config.policy.quiet_hours->second;
  }
  if (config.policy.frequency_cap) {
    p.cap_count = config.policy.frequency_cap->first;
    p.cap_window = config.policy.frequency_cap->second;
  }
}

// The key unsubscribe links are signed with: admin.secret_file's, or a random one for this run
// (links then stop working after a restart).
std::string SigningSecret(const Config& config) {
  if (!config.admin.secret.empty()) return config.admin.secret;
  std::string secret;
  std::random_device rd;
  for (int i = 0; i < 4; ++i) secret += fmt::format("{:08x}", rd());
  spdlog::warn(
      "admin.secret_file is not set: unsubscribe links are signed with a key that "
      "changes at every restart");
  return secret;
}

// The partitions' workers on threads of their own, one per core at most (docs/design.md,
// "Threads") or redis.worker_threads: partition n on thread n mod threads. The outbox senders
// stay on the main thread.
class WorkerPool {
 public:
  WorkerPool(const Config& config, internal::Shared& shared, asio::io_context& main)
      : threads_(WorkerThreads(config.redis.worker_threads,
                               static_cast<int>(std::thread::hardware_concurrency()),
                               config.redis.partitions)) {
    for (int t = 0; t < threads_; ++t) ios_.push_back(std::make_unique<asio::io_context>(1));
    for (int n = 0; n < config.redis.partitions; ++n) {
      asio::io_context& wio = *ios_[static_cast<size_t>(n % threads_)];
      workers_.push_back(internal::PartitionWorker::Create(wio, shared, n));
      ++running_;
      asio::co_spawn(wio, workers_.back()->Run(), [this, &main](std::exception_ptr e) {
        if (e) {
          try {
            std::rethrow_exception(e);
          } catch (const std::exception& ex) {
            spdlog::critical("partition worker failed: {}", ex.what());
          }
        }
        // The last worker to finish after a stop request ends the process.
        if (--running_ == 0) main.stop();
      });
    }
  }
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  ~WorkerPool() { StopAndJoin(); }

  int threads() const { return threads_; }

  std::vector<asio::io_context*> loops() const {
    std::vector<asio::io_context*> out;
    for (const auto& wio : ios_) out.push_back(wio.get());
    return out;
  }

  // While it lives, the threads run; it stops and joins them when it goes, so it is declared
  // after everything the workers use.
  struct Running {
    explicit Running(WorkerPool& p) : pool(p) {}
    Running(const Running&) = delete;
    Running& operator=(const Running&) = delete;
    ~Running() { pool.StopAndJoin(); }
    WorkerPool& pool;
  };

  // The threads start (once the admin server listens: a failed start has done nothing).
  [[nodiscard]] Running Start() {
    for (auto& wio : ios_) running_threads_.emplace_back([&wio] { wio->run(); });
    return Running(*this);
  }

  void StopAndJoin() {
    for (auto& i : ios_) i->stop();
    for (auto& t : running_threads_) {
      if (t.joinable()) t.join();
    }
    running_threads_.clear();
  }

 private:
  const int threads_;
  std::vector<std::unique_ptr<asio::io_context>> ios_;
  std::vector<std::unique_ptr<internal::PartitionWorker>> workers_;
  std::atomic<int> running_{0};
  std::vector<std::thread> running_threads_;
};

// SIGHUP reloads the flows; SIGTERM and SIGINT stop the daemon: the batch in hand finishes,
// with a hard stop after eight seconds if something hangs.
class Signals {
 public:
  Signals(asio::io_context& io, internal::Shared& shared, internal::ServiceNotifier& notifier,
          admin::AdminServer& admin)
      : io_(io),
        shared_(shared),
        notifier_(notifier),
        admin_(admin),
        hup_(io, SIGHUP),
        stop_(io, SIGTERM, SIGINT) {
    WaitHup();
    stop_.async_wait([this](const boost::system::error_code& ec, int sig) {
      if (!ec) Stop(sig);
    });
  }

 private:
  // Each batch holds its own copy of the flow-set pointer (partition.cpp, Commit), so swapping
  // it here never splits a batch between two flow sets.
  void WaitHup() {
    hup_.async_wait([this](const boost::system::error_code& ec, int) {
      if (ec || shared_.stopping) return;
      notifier_.Reloading();
      notifier_.Reloaded(internal::ReloadFlows(shared_).summary);
      WaitHup();
    });
  }

  void Stop(int sig) {
    spdlog::info("signal {}: finishing the batch in hand and stopping", sig);
    notifier_.Stopping();
    shared_.stopping = true;
    hup_.cancel();
    admin_.Stop();
    auto t = std::make_shared<asio::steady_timer>(io_, std::chrono::seconds(8));
    t->async_wait([&io = io_, t](auto) { io.stop(); });
  }

  asio::io_context& io_;
  internal::Shared& shared_;
  internal::ServiceNotifier& notifier_;
  admin::AdminServer& admin_;
  asio::signal_set hup_;
  asio::signal_set stop_;
};

}  // namespace

int WorkerThreads(int configured, int cores, int partitions) {
  return std::clamp(configured > 0 ? configured : cores, 1, std::max(partitions, 1));
}

int RunDaemon(const Config& config, std::shared_ptr<const flow::FlowSet> flows) {
  // hiredis writes with write(2): a Redis that dies mid-write must be a connection error to
  // reconnect from, not a SIGPIPE that ends the process without a word.
  std::signal(SIGPIPE, SIG_IGN);
  asio::io_context io(1);
  internal::Shared shared{
      config, std::move(flows), {}, ScaledClock(config.clock_scale, ClockAnchor(config)), {}, false,
      "",     nullptr,          {}};
  shared.consumer = ConsumerName();
  SetPolicy(config, shared.policy);
  const UnsubscribeTokens tokens(SigningSecret(config));
  // Not in the engine's policy: the link is signed when the mail is sent (sender.cpp), with
  // the key and base of that moment, and the outbox entry is a third smaller without it.
  shared.unsubscribe_url = [&tokens, base = config.admin.public_url](std::string_view customer,
                                                                     std::string_view flow) {
    return tokens.Url(base, customer, flow);
  };
  if (config.smtp.mode == "smtp") {
    shared.smtp =
        std::make_shared<mail::SmtpPool>(io.get_executor(), internal::SmtpOptionsOf(config));
  }
  shared.sink = internal::MakeMailSink(config, shared.smtp);
  shared.main_io = &io;
  WorkerPool workers(config, shared, io);
  internal::AdminApi admin_api(io, shared, tokens);
  admin::AdminServer admin(io, config.admin.listen, admin_api.Routes());
  if (std::string err = admin.Start(); !err.empty()) {
    spdlog::error("{}", err);
    return 1;
  }
  internal::ServiceNotifier notifier(io, shared, workers.loops());
  notifier.Start();
  Signals signals(io, shared, notifier, admin);
  const WorkerPool::Running running = workers.Start();
  // Once the machine is busy, committing comes first: the partition workers (events read,
  // timers fired, send jobs committed) keep their priority and this thread, with the outbox
  // senders' rendering and SMTP, takes what they leave. A burst of due timers is committed
  // sooner and its mails follow from the outbox; when the cores are not all busy, nothing
  // changes (docs/performance.md).
  LowerThisThread();
  spdlog::info("journeyd running: {} partition(s) on {} thread(s), {} flow(s), admin on {}",
               config.redis.partitions, workers.threads(), shared.Flows()->flows().size(),
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
