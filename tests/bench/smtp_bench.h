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
  // Rates count the mails smtp-sink received (its own counter), every one of them: a run where
  // a sender delivered fewer fails the section instead.
  int delivered = 0;           // mails the sink received from each sender in each run
  double postfix_per_sec = 0;  // smtp-source → smtp-sink: the peer, not a ceiling
  double client_per_sec = 0;   // our SmtpPool alone → smtp-sink
  double daemon_per_sec = 0;   // outbox → journeyd → smtp-sink, every job settled as sent
  double ratio = 0;            // median of each run's journeyd ÷ smtp-source
  std::string note;
};

std::optional<SmtpFigures> RunSmtpBench(const flow::FlowSet& flows, const PostfixTools& postfix,
                                        int messages, int runs, int connections,
                                        const std::string& flows_dir);

}  // namespace journeyd::bench
