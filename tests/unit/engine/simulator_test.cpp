// The simulator's observer: every customer's state at chosen moments, as flow tests read it.
#include "journeyd/engine/simulator.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "test_support.h"

namespace journeyd::engine::testing {
namespace {

TEST(SimulatorObserve, ShowsTheStatesAfterEverythingDueAtOrBeforeEachMoment) {
  const TimePoint t0 = T("2026-03-01T10:00:00Z");
  std::vector<Event> events = {
      Ev(R"({"type":"signup","customer_id":"c1","ts":"2026-03-01T10:00:00Z",)" + kOptedIn + "}"),
      Ev(R"({"type":"unsubscribe","customer_id":"c1","ts":"2026-03-05T10:00:00Z"})")};
  SimulationOptions o;
  o.horizon = 30 * kDay;
  o.roundtrip_state = true;
  // Before anything, at the signup itself, at the tips mail (day 3), an hour later,
  // and after the unsubscribe (day 4).
  o.observe_at = {t0 - kHour, t0, t0 + 3 * kDay, t0 + 3 * kDay + kHour, t0 + 20 * kDay};
  std::map<TimePoint, std::string> step;  // "" = not in the welcome flow
  int calls = 0;
  o.observe = [&](TimePoint t, const std::map<std::string, CustomerState>& all) {
    ++calls;
    std::string s = "-";
    if (auto it = all.find("c1"); it != all.end()) {
      s = "";
      for (const auto& j : it->second.journeys) {
        if (j.flow == "welcome") s = j.step;
      }
    }
    step[t] = s;
  };
  auto r = Simulate(*ShippedFlows(), SystemPolicy(), events, o);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(calls, 5);
  EXPECT_EQ(step[t0 - kHour], "-");          // not known yet
  EXPECT_EQ(step[t0], "thanks+1");           // the thank-you went, waiting 3 days
  EXPECT_EQ(step[t0 + 3 * kDay], "tips+1");  // the tips at that very moment went first
  EXPECT_EQ(step[t0 + 3 * kDay + kHour], "tips+1");
  EXPECT_EQ(step[t0 + 20 * kDay], "");  // the unsubscribe ended it
}

}  // namespace
}  // namespace journeyd::engine::testing
