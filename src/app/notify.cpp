#include "notify.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
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
    asio::co_spawn(io_, PingWatchdog(std::chrono::microseconds(usec / 2)), asio::detached);
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
  // Pinged from the event loop itself: if a handler blocks the loop, the pings stop and
  // systemd restarts the daemon (WatchdogSec=).
  asio::steady_timer timer(io_);
  for (;;) {
    Send("WATCHDOG=1");
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
