// What the daemon's parts share: the config, the live flow set, the policy, the clock and the
// counters, plus small helpers for coroutines over Redis. The partition workers run on
// threads of their own (an io_context each); the admin server, the outbox senders, the SMTP
// pool, signals and reloads on the main thread's io_context. Read-only after the start but
// for what is atomic or locked: the flow set, `stopping`, the stats and the metrics.
// Internal to the app module.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "app_metrics.h"
#include "journeyd/app/config.h"
#include "journeyd/app/daemon.h"
#include "journeyd/engine/engine.h"
#include "journeyd/flow/flow.h"
#include "journeyd/mail/sink.h"
#include "journeyd/store/await.h"
#include "journeyd/store/entries.h"
#include "journeyd/store/redis.h"

namespace journeyd::app::internal {

namespace asio = boost::asio;

using store::Cmd;
using store::Connect;
using store::EntryCount;
using store::FieldMap;
using store::Script;
using store::Sleep;

struct Shared {
  const Config& config;
  // The live flow set: a reload on the main thread swaps it while partitions read it.
  std::atomic<std::shared_ptr<const flow::FlowSet>> flows;
  engine::Policy policy;
  ScaledClock clock;
  DaemonStats stats;
  std::atomic<bool> stopping{false};
  std::string consumer;
  std::shared_ptr<mail::SmtpPool> smtp;  // smtp.mode: smtp — one pool for every partition
  AppMetrics metrics;
  asio::io_context* main_io = nullptr;  // the senders', the SMTP pool's, the admin server's
  // The signed unsubscribe link of a marketing mail (admin.public_url, admin.secret_file),
  // added by the sender when it sends the job: a commit leaves it out of the outbox entry.
  std::function<std::string(std::string_view customer_id, std::string_view flow)> unsubscribe_url =
      nullptr;

  // The sink every sender hands its mails to (over `smtp`, or the mail folder); its health is
  // what /readyz and /metrics say of delivery.
  std::shared_ptr<mail::Sink> sink = nullptr;

  std::shared_ptr<const flow::FlowSet> Flows() const { return flows.load(); }
};

}  // namespace journeyd::app::internal
