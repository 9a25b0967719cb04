// The SMTP section of journeyd-bench.
#pragma once

#include <optional>
#include <string>

#include "bench_support.h"
#include "journeyd/flow/flow.h"

namespace journeyd::bench {

struct SmtpFigures {
  std::string flows_dir;  // in: the flows the daemon loads
  size_t message_bytes = 0;
  double postfix_per_sec = 0;  // smtp-source → smtp-sink
  double client_per_sec = 0;   // our SmtpPool alone → smtp-sink
  double daemon_per_sec = 0;   // outbox → journeyd → smtp-sink
  std::string note;            // anything that went wrong
};

std::optional<SmtpFigures> RunSmtpBench(const flow::FlowSet& flows, const PostfixTools& postfix,
                                        int messages, int runs, int connections,
                                        const std::string& flows_dir);

}  // namespace journeyd::bench
