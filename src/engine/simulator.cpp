#include "journeyd/engine/simulator.h"

#include <optional>
#include <set>

namespace journeyd::engine {

SimulationResult Simulate(const flow::FlowSet& flows, const Policy& policy,
                          const std::vector<Event>& events, const SimulationOptions& options) {
  SimulationResult result;
  if (events.empty()) return result;
  const TimePoint end = events.back().ts + options.horizon;
  // Customers by their wake time: the virtual timer wheel.
  std::set<std::pair<TimePoint, std::string>> timers;

  auto apply = [&](CustomerState& state, const Input& input, TimePoint now) -> bool {
    if (state.wake) timers.erase({*state.wake, state.id});
    Decisions d = Step(flows, policy, state, input, now);
    ++result.steps;
    for (auto& r : d.records) result.records.push_back(std::move(r));
    for (auto& s : d.sends) result.sends.push_back(std::move(s));
    for (auto& w : d.warnings) result.warnings.push_back(std::move(w));
    if (options.roundtrip_state && d.changed) {
      std::string bytes = EncodeState(state);
      CustomerState copy;
      std::string err;
      if (!DecodeState(bytes, &copy, &err)) {
        result.error = "state codec: " + err;
        return false;
      }
      state = std::move(copy);
    }
    if (state.wake) timers.insert({*state.wake, state.id});
    if (result.records.size() > options.max_records) {
      result.error = "simulation stopped: too many records";
      return false;
    }
    return true;
  };

  size_t next_observe = 0;
  // Shows the states to the observer for every moment before `t`.
  auto observe_before = [&](std::optional<TimePoint> t) {
    if (!options.observe) return;
    while (next_observe < options.observe_at.size() &&
           (!t || options.observe_at[next_observe] < *t)) {
      options.observe(options.observe_at[next_observe++], result.customers);
    }
  };

  size_t next_event = 0;
  while (true) {
    const bool have_event = next_event < events.size();
    const bool have_timer = !timers.empty() && timers.begin()->first <= end;
    if (!have_event && !have_timer) break;
    if (have_timer && (!have_event || timers.begin()->first <= events[next_event].ts)) {
      auto [at, id] = *timers.begin();
      observe_before(at);
      CustomerState& state = result.customers[id];
      if (!apply(state, TimerInput{}, at)) break;
      if (state.wake && *state.wake <= at) {
        // The engine always moves a woken customer's wake time forward; stop rather than spin.
        result.error =
            "customer " + id + " was woken at " + FormatRfc3339(at) + " but is due again at once";
        break;
      }
      continue;
    }
    const Event& ev = events[next_event++];
    observe_before(ev.ts);
    CustomerState& state = result.customers[ev.customer_id];
    if (state.id.empty()) state.id = ev.customer_id;
    if (!apply(state, EventInput{ev}, ev.ts)) break;
  }
  if (result.error.empty()) observe_before(std::nullopt);
  return result;
}

}  // namespace journeyd::engine
