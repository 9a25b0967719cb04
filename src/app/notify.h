// Service notifications for systemd's Type=notify (sd_notify(3)): READY=1 once every
// partition is owned, STATUS= lines, RELOADING=1/READY=1 around a reload, STOPPING=1, and
// WATCHDOG=1 from the main event loop while every partition thread's event loop beats too,
// so that a stuck loop, either one, is restarted. Every call is a no-op
// when NOTIFY_SOCKET is unset (not run by systemd). Internal to the app module.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "runtime.h"

namespace journeyd::app::internal {

class ServiceNotifier {
 public:
  // `workers`: the partition threads' io_contexts, whose loops the watchdog covers too.
  ServiceNotifier(asio::io_context& io, Shared& shared, std::vector<asio::io_context*> workers)
      : io_(io), s_(shared), workers_(std::move(workers)) {}

  // Starts the readiness watch and, when systemd asked for one (WATCHDOG_USEC), the watchdog
  // pings at half its interval, and a heartbeat on each worker io_context. They run until
  // their io_context stops.
  void Start();

  void Reloading();
  // After a reload, applied or refused: READY=1 again (when ready before) and `status`.
  void Reloaded(const std::string& status);
  void Stopping();

 private:
  asio::awaitable<void> WatchReadiness();
  asio::awaitable<void> PingWatchdog(std::chrono::microseconds interval);
  asio::awaitable<void> Beat(size_t worker, std::chrono::microseconds interval);
  static int64_t NowMicros();
  std::string Status() const;

  asio::io_context& io_;
  Shared& s_;
  std::vector<asio::io_context*> workers_;
  // Per worker io_context: when its heartbeat last ran (steady clock, microseconds).
  std::unique_ptr<std::atomic<int64_t>[]> beats_;
  bool ready_ = false;
  bool stopping_ = false;
};

}  // namespace journeyd::app::internal
