// Service notifications for systemd's Type=notify (sd_notify(3)): READY=1 once every
// partition is owned, STATUS= lines, RELOADING=1/READY=1 around a reload, STOPPING=1, and
// WATCHDOG=1 from the event loop so that a stuck loop is restarted. Every call is a no-op
// when NOTIFY_SOCKET is unset (not run by systemd). Internal to the app module.
#pragma once

#include <chrono>
#include <string>

#include "runtime.h"

namespace journeyd::app::internal {

class ServiceNotifier {
 public:
  ServiceNotifier(asio::io_context& io, Shared& shared) : io_(io), s_(shared) {}

  // Starts the readiness watch and, when systemd asked for one (WATCHDOG_USEC), the watchdog
  // pings at half its interval. Both run on the io_context until it stops.
  void Start();

  void Reloading();
  // After a reload, applied or refused: READY=1 again (when ready before) and `status`.
  void Reloaded(const std::string& status);
  void Stopping();

 private:
  asio::awaitable<void> WatchReadiness();
  asio::awaitable<void> PingWatchdog(std::chrono::microseconds interval);
  std::string Status() const;

  asio::io_context& io_;
  Shared& s_;
  bool ready_ = false;
  bool stopping_ = false;
};

}  // namespace journeyd::app::internal
