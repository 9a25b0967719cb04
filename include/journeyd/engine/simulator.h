// Runs the engine over a timeline of events on a virtual clock: what `journeyctl simulate`
// prints and what the flow tests assert on. No Redis, no SMTP; the same engine::Step.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "journeyd/engine/engine.h"

namespace journeyd::engine {

struct SimulationOptions {
  Duration horizon = 400 * kDay;  // after the last event
  bool roundtrip_state = false;   // encode/decode every state after each step (as production)
  size_t max_records = 10'000'000;
  // Called once for each of `observe_at` (in time order) with every customer's state as it
  // is at that moment: after everything due at or before it, before anything later.
  std::vector<TimePoint> observe_at;
  std::function<void(TimePoint, const std::map<std::string, CustomerState>&)> observe;
};

struct SimulationResult {
  std::vector<Record> records;  // in time order
  std::vector<SendJob> sends;   // in time order
  std::vector<std::string> warnings;
  std::map<std::string, CustomerState> customers;
  size_t steps = 0;   // engine::Step calls
  std::string error;  // non-empty when the run had to stop (codec failure, limit)
};

// `events` must be in time order (stable for equal times). Timers due at the same moment as
// an event fire first.
SimulationResult Simulate(const flow::FlowSet& flows, const Policy& policy,
                          const std::vector<Event>& events, const SimulationOptions& options);

}  // namespace journeyd::engine
