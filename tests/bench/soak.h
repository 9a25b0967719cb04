// journeyd-bench --soak: a long run at a steady load, with timers firing and the SMTP relay
// misbehaving now and then, that prints the daemon's memory, the event lag, the outbox depth
// and the timer lateness every minute and draws them (an SVG beside a CSV).
#pragma once

#include <string>

#include "bench_support.h"

namespace journeyd::bench {

struct SoakOptions {
  int minutes = 30;
  double rate = 0;            // events a second offered; 0: half the ingest rate measured first
  double timer_share = 0.02;  // of them, ticks that come back as a timer 30 s later
  int partitions = 4;
  int customers = 200000;  // the purchases cycle over this many customers
  std::string flows_dir;
  std::string proxy_script;  // tests/integration/fault_proxy.py: between journeyd and the relay
  std::string out_dir;       // soak.csv and soak.svg go here
  PostfixTools postfix;
};

// The exit status: 0 when the run went through (whatever its figures), 1 when it could not.
int RunSoak(const SoakOptions& options);

}  // namespace journeyd::bench
