// Helpers for engine tests: the shipped flows, events from JSON, and queries on results.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "journeyd/engine/simulator.h"
#include "journeyd/host/flow_files.h"
#include "journeyd/host/time_zones.h"

namespace journeyd::engine::testing {

inline std::shared_ptr<const flow::FlowSet> ShippedFlows() {
  static std::shared_ptr<const flow::FlowSet> flows = [] {
    auto r = host::LoadFlowDirectory(std::string(JOURNEYD_SOURCE_DIR) + "/flows");
    for (const auto& d : r.diagnostics.all()) ADD_FAILURE() << d.ToString();
    return r.flows;
  }();
  return flows;
}

inline TimePoint T(const std::string& rfc3339) {
  auto t = ParseTimestamp(rfc3339);
  if (!t) ADD_FAILURE() << "bad time in test: " << rfc3339;
  return t.value_or(TimePoint{});
}

// An event from a JSON text such as
//   {"type":"purchase","customer_id":"c1","ts":"2026-01-10T12:00:00Z","data":{"total":40}}
inline Event Ev(const std::string& json) {
  EventError err;
  auto ev = EventFromJson(nlohmann::json::parse(json), &err);
  if (!ev) ADD_FAILURE() << "bad event in test: " << err.ToString() << " in " << json;
  return ev.value_or(Event{});
}

inline const std::string kOptedIn =
    R"("profile":{"email":"anna@example.com","first_name":"Anna","email_opt_in":true})";

struct Sent {
  TimePoint at;
  std::string flow, step, subject;
};

inline std::vector<Sent> SendsOf(const SimulationResult& r, const std::string& customer,
                                 const std::string& flow = "") {
  std::vector<Sent> out;
  for (const auto& s : r.sends) {
    if (s.customer_id == customer && (flow.empty() || s.flow == flow)) {
      out.push_back({s.at, s.flow, s.step, s.subject});
    }
  }
  return out;
}

inline std::vector<Record> RecordsOf(const SimulationResult& r, const std::string& customer,
                                     Record::Kind kind, const std::string& flow = "") {
  std::vector<Record> out;
  for (const auto& rec : r.records) {
    if (rec.customer_id == customer && rec.kind == kind && (flow.empty() || rec.flow == flow)) {
      out.push_back(rec);
    }
  }
  return out;
}

// A policy whose zones come from the system's tz database, as in the daemon.
inline Policy SystemPolicy() {
  Policy p;
  p.zones = &host::SystemTimeZones();
  return p;
}

inline SimulationResult RunFlows(const std::vector<Event>& events, Policy policy = SystemPolicy(),
                                 Duration horizon = 400 * kDay) {
  SimulationOptions o;
  o.horizon = horizon;
  o.roundtrip_state = true;
  auto flows = ShippedFlows();
  if (!flows) return {};
  auto r = Simulate(*flows, policy, events, o);
  EXPECT_EQ(r.error, "");
  return r;
}

}  // namespace journeyd::engine::testing
