#include "notify.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace journeyd::app::internal {

namespace {

void Send(const std::string& state) {
  int r = sd_notify(0, state.c_str());
  // 0: no NOTIFY_SOCKET, nothing to tell. A failure is worth a line, not a stop.
  if (r < 0) spdlog::warn("sd_notify({}): {}", state.substr(0, state.find('\n')), r);
}

}  // namespace

void ServiceNotifier::Start() {
  asio::co_spawn(io_, WatchReadiness(), asio::detached);
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
    spdlog::info("systemd watchdog: {} ms", usec / 1000);
    const std::chrono::microseconds interval(usec / 2);
    beats_ = std::make_unique<std::atomic<int64_t>[]>(workers_.size());
    for (size_t i = 0; i < workers_.size(); ++i) {
      beats_[i].store(NowMicros());
      asio::co_spawn(*workers_[i], Beat(i, interval), asio::detached);
    }
    asio::co_spawn(io_, PingWatchdog(interval), asio::detached);
  }
}

int64_t ServiceNotifier::NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

asio::awaitable<void> ServiceNotifier::Beat(size_t worker, std::chrono::microseconds interval) {
  // On the worker's own io_context: it runs only while that loop runs its handlers.
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    beats_[worker].store(NowMicros());
    timer.expires_after(interval / 2);
    co_await timer.async_wait(asio::use_awaitable);
  }
}

std::string ServiceNotifier::Status() const {
  return fmt::format("STATUS={}/{} partition(s) owned, {} flow(s), {} events, {} mails queued",
                     s_.stats.partitions_owned.load(), s_.config.redis.partitions,
                     s_.Flows()->flows().size(), s_.stats.events.load(),
                     s_.stats.mails_queued.load());
}

asio::awaitable<void> ServiceNotifier::WatchReadiness() {
  // The partition workers count what they own; polling that count keeps them unaware of
  // systemd. Fast until ready (start-up time is what systemd waits on), then slower for the
  // status line.
  asio::steady_timer timer(io_);
  int last_owned = -1;
  while (!stopping_) {
    int owned = s_.stats.partitions_owned.load();
    if (!ready_ && owned == s_.config.redis.partitions) {
      ready_ = true;
      Send("READY=1\n" + Status());
      spdlog::info("ready: all {} partition(s) owned", owned);
    } else if (owned != last_owned) {
      Send(Status());
    }
    last_owned = owned;
    timer.expires_after(std::chrono::milliseconds(ready_ ? 1000 : 50));
    co_await timer.async_wait(asio::use_awaitable);
  }
}

asio::awaitable<void> ServiceNotifier::PingWatchdog(std::chrono::microseconds interval) {
  // Pinged from the main event loop itself, and only while every partition thread's loop has
  // beaten within the interval: if a handler blocks either, the pings stop and systemd
  // restarts the daemon (WatchdogSec=).
  asio::steady_timer timer(io_);
  bool said = false;
  for (;;) {
    const int64_t now = NowMicros();
    size_t stuck = workers_.size();
    for (size_t i = 0; i < workers_.size() && stuck == workers_.size(); ++i) {
      if (now - beats_[i].load() > interval.count()) stuck = i;
    }
    if (stuck == workers_.size()) {
      Send("WATCHDOG=1");
      said = false;
    } else if (!said) {
      spdlog::error("partition thread {}'s event loop has not run for {} ms: no watchdog ping",
                    stuck, (now - beats_[stuck].load()) / 1000);
      said = true;
    }
    timer.expires_after(interval);
    co_await timer.async_wait(asio::use_awaitable);
  }
}

void ServiceNotifier::Reloading() {
  if (ready_ && !stopping_) Send("RELOADING=1\nSTATUS=reloading flows");
}

void ServiceNotifier::Reloaded(const std::string& status) {
  if (stopping_) return;
  Send((ready_ ? "READY=1\nSTATUS=" : "STATUS=") + status);
}

void ServiceNotifier::Stopping() {
  stopping_ = true;
  Send("STOPPING=1\nSTATUS=stopping: finishing the batch in hand");
}

}  // namespace journeyd::app::internal
