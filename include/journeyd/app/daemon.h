// The journeyd daemon: partition workers (events and timers through the engine, one atomic
// commit per batch) on up to one thread per core, each thread an io_context of its own; the
// outbox senders, the SMTP pool and the admin endpoints on the main thread's io_context.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "journeyd/app/config.h"
#include "journeyd/flow/flow.h"

namespace journeyd::app {

// Real time, optionally sped up by clock.scale from a fixed anchor, so that virtual time is
// the same for every instance and across restarts.
class ScaledClock final : public Clock {
 public:
  ScaledClock(double scale, TimePoint anchor) : scale_(scale), anchor_(anchor) {}
  TimePoint Now() const override;
  // How long to sleep in real time for `virtual_duration` to pass.
  Duration RealDelay(Duration virtual_duration) const;
  void set_anchor(TimePoint anchor) { anchor_ = anchor; }

 private:
  double scale_;
  TimePoint anchor_;
};

struct DaemonStats {
  std::atomic<uint64_t> events{0}, timers{0}, dead{0}, mails_queued{0}, mails_written{0},
      commits{0}, stale_commits{0};
  // SMTP delivery: accepted by the relay, deferred for a retry, given up, recipient bounced;
  // and the time each SMTP transaction took (sum in microseconds, count).
  std::atomic<uint64_t> mails_sent{0}, mails_retried{0}, mails_failed{0}, mails_bounced{0},
      smtp_micros{0}, smtp_transactions{0};
  std::atomic<int> partitions_owned{0};
  std::atomic<bool> redis_ok{false};
};

// How many threads the partition workers run on: `configured` (redis.worker_threads) when it
// is set, else one per core; never more than there are partitions, never fewer than one.
int WorkerThreads(int configured, int cores, int partitions);

// Runs until SIGTERM/SIGINT. Returns the process exit code.
int RunDaemon(const Config& config, std::shared_ptr<const flow::FlowSet> flows);

}  // namespace journeyd::app
