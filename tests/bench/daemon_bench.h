// The Redis sections of journeyd-bench: ingest and timer firing through the real journeyd,
// each divided by the XADD ceiling redis-benchmark measures on the same server; Redis memory
// per waiting customer; the daemon's RSS.
#pragma once

#include <optional>
#include <string>

#include "bench_support.h"

namespace journeyd::bench {

struct DaemonFigures {
  // redis-benchmark XADD -P 64, requests/s: measured right before the ingest phase and again
  // right before the timer phase of each run, so that each figure is divided by a ceiling taken
  // under the same load of the host (a shared one swings by a factor of two within minutes).
  double xadd_ceiling = 0;         // before ingest
  double timers_xadd_ceiling = 0;  // before the timers
  double ingest_per_sec = 0;       // first purchases drained to committed state
  double timers_per_sec = 0;       // due customers fired and committed (each queues a mail)
  // Medians of each run's figure divided by its own ceiling.
  double ingest_ratio = 0, timers_ratio = 0;
  double bytes_per_customer = 0;  // used_memory delta per customer waiting in winback
  double rss_mib = 0;             // the daemon's VmRSS after the ingest
  // CPU time per event (ingest) and per timer, in microseconds: the daemon's own, and Redis's.
  double xadd_redis_us = 0;  // Redis's CPU time per XADD of the ceiling run
  double ingest_daemon_us = 0, ingest_redis_us = 0;
  double timers_daemon_us = 0, timers_redis_us = 0;
  // Redis's INFO commandstats of the last run's ingest and timer phases, per item: one line
  // per command (calls and microseconds of execution per event or timer).
  std::string ingest_commands, timers_commands;
  // False when a run left customers without a timer or fired fewer mails than customers: the
  // rates then count work that was not all done (the note says what).
  bool complete = true;
  std::string note;
};

struct DaemonBenchOptions {
  std::string flows_dir;
  PostfixTools postfix;  // the mail peer (smtp-sink); mail goes to files when unavailable
  int customers = 200000;
  int partitions = 4;
  int runs = 3;
};

std::optional<DaemonFigures> RunDaemonBench(const DaemonBenchOptions& options);

struct LatenessFigures {
  double target_rate = 0;  // events per second asked for
  double rate = 0;         // events per second reached: published ÷ the publishing's seconds
  double timer_rate = 0;   // of which ticks reached, each coming back as a timer
  int ticks = 0;           // ticks published
  int timers = 0;          // timers measured (their mails seen within a minute)
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
  double daemon_us = 0, redis_us = 0;  // CPU per event offered (journeyd, redis-server)
  std::string note;
};

// Timer lateness at clock.scale 1 under load: `rate` events a second for `seconds` with the
// flows of `flows_dir`: first purchases of new customers (each starting the win-back journey,
// as in the ingest figure), and among them `timer_rate` a second a `tick` that starts a
// 2-second wait and then sends a mail. Lateness = when the tick's mail was committed minus
// when its event was published plus 2 s: what the customer sees, the wait to be read included.
// Mail goes to smtp-sink (files when `postfix` is unavailable).
std::optional<LatenessFigures> RunLatenessBench(double rate, double timer_rate, int seconds,
                                                int partitions, const std::string& flows_dir,
                                                const PostfixTools& postfix);

// The daemon's resident memory after ingesting `customers` first purchases (MiB).
std::optional<double> RunRssBench(const std::string& flows_dir, int customers, int partitions);

}  // namespace journeyd::bench
