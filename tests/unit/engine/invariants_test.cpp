// Randomised timelines over all five shipped flows, checking what must always hold:
// no send after an exit, at most one active run per flow and customer, job ids never
// repeat, the wake time is the earliest due item, and state survives encode/decode.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

#include "test_support.h"

namespace journeyd::engine::testing {
namespace {

std::optional<TimePoint> EarliestDue(const CustomerState& s) {
  std::optional<TimePoint> w;
  for (const auto& j : s.journeys) {
    if (j.wait != Journey::Wait::kNone && (!w || j.wake < *w)) w = j.wake;
  }
  for (const auto& m : s.memos) {
    if (m.date_next && (!w || *m.date_next < *w)) w = *m.date_next;
  }
  return w;
}

Event RandomEvent(std::mt19937_64& rng, int customers, TimePoint t, int serial) {
  static const char* kTypes[] = {"signup",    "profile_updated", "cart_updated",    "cart_cleared",
                                 "purchase",  "points_earned",   "points_redeemed", "unsubscribe",
                                 "subscribe", "review_left"};
  static const char* kZones[] = {"Europe/Amsterdam", "America/New_York", "Asia/Tokyo", "UTC",
                                 "Not/AZone"};
  std::uniform_int_distribution<int> pick_c(0, customers - 1), pick_t(0, 9), pick_z(0, 4),
      coin(0, 3), amount(1, 150), month(1, 12), day(1, 28);
  Event e;
  e.customer_id = "c" + std::to_string(pick_c(rng));
  e.type = kTypes[pick_t(rng)];
  e.ts = t;
  e.data = nlohmann::json::object();
  nlohmann::json profile = nlohmann::json::object();
  if (coin(rng) == 0) e.event_id = "e" + std::to_string(serial % 50);  // some repeats
  if (e.type == "purchase" || e.type == "cart_updated") {
    e.data["total"] = amount(rng);
    e.data["currency"] = "EUR";
  }
  if (e.type == "signup" || coin(rng) == 0) {
    profile["email"] = e.customer_id + "@example.com";
    profile["first_name"] = "Sam";
    profile["email_opt_in"] = coin(rng) != 0;
    profile["timezone"] = kZones[pick_z(rng)];
    profile["birthday"] = fmt::format("1990-{:02}-{:02}", month(rng), day(rng));
  }
  if (e.type == "points_earned") {
    profile["points"] = amount(rng);
    profile["points_expire_at"] =
        FormatDate(t + std::uniform_int_distribution<int>(1, 60)(rng) * kDay);
  }
  if (e.type == "points_redeemed") profile["points"] = 0;
  EventError error;
  if (!ProfileFromJson(profile, &e.profile, &error)) ADD_FAILURE() << error.ToString();
  return e;
}

void RunRandomTimeline(uint64_t seed) {
  SCOPED_TRACE("seed " + std::to_string(seed));
  auto flows = ShippedFlows();
  ASSERT_TRUE(flows);
  std::mt19937_64 rng(seed);
  Policy policy = SystemPolicy();
  if (seed % 2) {
    policy.cap_count = 1;
    policy.cap_window = 24 * kHour;
    policy.quiet_start = 21 * 60;
    policy.quiet_end = 8 * 60;
  }
  const int kCustomers = 12;
  std::vector<Event> events;
  TimePoint t = T("2026-01-01T00:00:00Z");
  for (int i = 0; i < 300; ++i) {
    t += Duration{std::uniform_int_distribution<int64_t>(0, 12 * kHour.count())(rng)};
    events.push_back(RandomEvent(rng, kCustomers, t, i));
  }
  const TimePoint end = t + 400 * kDay;

  std::map<std::string, CustomerState> states;
  std::set<std::pair<TimePoint, std::string>> timers;
  std::set<std::string> job_ids;
  // (customer, flow) → active run, from the records.
  std::map<std::pair<std::string, std::string>, uint32_t> active;
  std::set<std::tuple<std::string, std::string, uint32_t>> exited;
  size_t next = 0;
  int steps = 0;

  auto step = [&](CustomerState& s, const Input& in, TimePoint now) {
    if (s.wake) timers.erase({*s.wake, s.id});
    Decisions d = Step(*flows, policy, s, in, now);
    ++steps;
    for (const auto& r : d.records) {
      auto key = std::make_pair(r.customer_id, r.flow);
      switch (r.kind) {
        case Record::Kind::kEnter:
          EXPECT_EQ(active.count(key), 0u) << r.customer_id << " entered " << r.flow << " twice";
          active[key] = r.run;
          break;
        case Record::Kind::kExit:
          EXPECT_EQ(active[key], r.run);
          active.erase(key);
          exited.insert({r.customer_id, r.flow, r.run});
          break;
        case Record::Kind::kSend:
          EXPECT_EQ(exited.count({r.customer_id, r.flow, r.run}), 0u)
              << "send after exit: " << r.customer_id << " " << r.flow << " " << r.step;
          break;
        default:
          break;
      }
    }
    for (const auto& j : d.sends) {
      EXPECT_TRUE(job_ids.insert(j.job_id).second) << "job id repeated: " << j.job_id;
      EXPECT_EQ(j.subject.find_first_of("\r\n"), std::string::npos);
    }
    // Active runs in the state match the records, one per flow.
    std::set<std::string> flows_seen;
    for (const auto& j : s.journeys) {
      EXPECT_TRUE(flows_seen.insert(j.flow).second) << s.id << " has two runs of " << j.flow;
      EXPECT_EQ(active[std::make_pair(s.id, j.flow)], j.run);
      if (j.wait != Journey::Wait::kNone) {
        EXPECT_GT(j.wake, now);
      }
    }
    EXPECT_EQ(s.wake, EarliestDue(s));
    if (s.wake) {
      EXPECT_GT(*s.wake, now);
    }
    // The state survives the codec unchanged.
    std::string bytes = EncodeState(s);
    CustomerState copy;
    std::string err;
    ASSERT_TRUE(DecodeState(bytes, &copy, &err)) << err;
    EXPECT_EQ(EncodeState(copy), bytes);
    s = std::move(copy);
    if (s.wake) timers.insert({*s.wake, s.id});
  };

  while (true) {
    bool have_event = next < events.size();
    bool have_timer = !timers.empty() && timers.begin()->first <= end;
    if (!have_event && !have_timer) break;
    if (have_timer && (!have_event || timers.begin()->first <= events[next].ts)) {
      auto [at, id] = *timers.begin();
      step(states[id], TimerInput{}, at);
    } else {
      const Event& e = events[next++];
      auto& s = states[e.customer_id];
      if (s.id.empty()) s.id = e.customer_id;
      step(s, EventInput{e}, e.ts);
    }
    ASSERT_LT(steps, 100000) << "the timeline does not end";
    if (::testing::Test::HasFatalFailure()) return;
  }
  EXPECT_GT(job_ids.size(), 0u);
}

TEST(EngineInvariants, RandomTimelines) {
  for (uint64_t seed = 1; seed <= 24; ++seed) {
    RunRandomTimeline(seed);
    if (::testing::Test::HasFailure()) break;
  }
}

}  // namespace
}  // namespace journeyd::engine::testing
