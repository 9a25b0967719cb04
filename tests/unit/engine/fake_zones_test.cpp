// The engine's zones come from the TimeZoneDatabase it is given: here a fake with two
// fixed-offset zones, so nothing is read from the host's tz database.
#include <gtest/gtest.h>

#include <cctz/time_zone.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <string>
#include <vector>

#include "journeyd/engine/calendar.h"
#include "journeyd/flow/loader.h"
#include "test_support.h"

namespace journeyd::engine::testing {
namespace {

// "Fake/Plus5" is UTC+5, "Fake/Minus3" is UTC-3; nothing else exists.
class FixedZones final : public TimeZoneDatabase {
 public:
  mutable std::atomic<int> loads{0};
  mutable std::vector<std::string> asked;  // guarded by the test running on one thread

 protected:
  bool Load(const std::string& name, cctz::time_zone* out) const override {
    ++loads;
    asked.push_back(name);
    if (name == "Fake/Plus5") {
      *out = cctz::fixed_time_zone(std::chrono::hours(5));
      return true;
    }
    if (name == "Fake/Minus3") {
      *out = cctz::fixed_time_zone(std::chrono::hours(-3));
      return true;
    }
    return false;
  }
};

// A flow that mails at 10:00 in the customer's zone, compiled from memory.
std::shared_ptr<const flow::FlowSet> MorningFlow() {
  flow::FlowSources sources;
  sources.templates_dir = "mem/templates";
  sources.templates.push_back({"", {"mem/templates/note.yaml", "subject: Hi\ntext: hi\n", ""}});
  sources.flows.push_back({"mem/morning.yaml",
                           "flow: morning\ntrigger: { event: signup }\nsteps:\n"
                           "  - wait_until: { at: \"10:00\" }\n    id: ten\n"
                           "  - send: note\n    id: mail\n",
                           ""});
  auto loaded = flow::CompileFlowSet(sources);
  for (const auto& d : loaded.diagnostics.all()) ADD_FAILURE() << d.ToString();
  return loaded.flows;
}

Event SignupIn(const std::string& customer, const std::string& zone) {
  return Ev(R"({"type":"signup","customer_id":")" + customer +
            R"(","ts":"2026-03-01T00:00:00Z","profile":{"email":"a@example.com",)" +
            R"("email_opt_in":true,"timezone":")" + zone + R"("}})");
}

TEST(FakeZones, ZonesComeFromTheDatabaseGiven) {
  const FixedZones zones;
  auto plus5 = zones.Find("Fake/Plus5");
  ASSERT_TRUE(plus5);
  EXPECT_EQ(plus5->name(), "Fake/Plus5");
  EXPECT_EQ(plus5->MinuteOfDay(T("2026-03-01T00:00:00Z")), 5 * 60);
  EXPECT_EQ(FormatRfc3339(plus5->At({2026, 3, 1}, 10 * 60)), "2026-03-01T05:00:00Z");
  // Cached: asked once however often it is found.
  EXPECT_EQ(&zones.Find("Fake/Plus5")->name(), &plus5->name());
  EXPECT_EQ(zones.loads, 1);
  // A real IANA zone the fake does not have is unknown; UTC is built in and not asked for;
  // a name that is not a plain IANA name never reaches the database.
  EXPECT_FALSE(zones.Find("Europe/Amsterdam"));
  EXPECT_TRUE(zones.Find("UTC"));
  EXPECT_FALSE(zones.Find("../../etc/passwd"));
  EXPECT_FALSE(zones.Find("file:/etc/localtime"));
  EXPECT_EQ(zones.asked, (std::vector<std::string>{"Fake/Plus5", "Europe/Amsterdam"}));
}

TEST(FakeZones, TheEngineMailsAtTenInTheFakeZones) {
  auto flows = MorningFlow();
  ASSERT_TRUE(flows);
  const FixedZones zones;
  Policy policy;
  policy.zones = &zones;
  policy.timezone = "Fake/Minus3";  // for customers whose zone the database does not have
  SimulationOptions o;
  o.horizon = 2 * kDay;
  o.roundtrip_state = true;
  auto r = Simulate(*flows, policy,
                    {SignupIn("east", "Fake/Plus5"), SignupIn("west", "Fake/Minus3"),
                     SignupIn("real", "Europe/Amsterdam")},
                    o);
  EXPECT_EQ(r.error, "");
  auto east = SendsOf(r, "east");
  auto west = SendsOf(r, "west");
  auto real = SendsOf(r, "real");
  ASSERT_EQ(east.size(), 1u);
  ASSERT_EQ(west.size(), 1u);
  ASSERT_EQ(real.size(), 1u);
  EXPECT_EQ(FormatRfc3339(east[0].at), "2026-03-01T05:00:00Z");  // 10:00 at UTC+5
  EXPECT_EQ(FormatRfc3339(west[0].at), "2026-03-01T13:00:00Z");  // 10:00 at UTC-3
  // Europe/Amsterdam is not in the fake: the policy's (fake) zone is used, with a warning.
  EXPECT_EQ(FormatRfc3339(real[0].at), "2026-03-01T13:00:00Z");
  ASSERT_FALSE(r.warnings.empty());
  EXPECT_NE(r.warnings[0].find("unknown time zone 'Europe/Amsterdam'"), std::string::npos);
  EXPECT_EQ(zones.loads, 2 + static_cast<int>(std::count(zones.asked.begin(), zones.asked.end(),
                                                         "Europe/Amsterdam")));
}

}  // namespace
}  // namespace journeyd::engine::testing
