// The batch commit's pure plan (engine/batch.h): entries grouped by customer, dead letters,
// timers among the events by when they were due, wakes that are over, what to write.
#include "journeyd/engine/batch.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "test_support.h"

namespace journeyd::engine::testing {
namespace {

const std::string kProfile =
    R"({"email":"anna@example.com","first_name":"Anna","email_opt_in":true})";

// A stream entry's fields, as the daemon reads them (views into the reply).
struct Entry {
  std::string id;
  std::vector<std::pair<std::string, std::string>> fields;
  std::vector<FieldView> Views() const {
    std::vector<FieldView> v;
    for (const auto& [k, val] : fields) v.emplace_back(k, val);
    return v;
  }
};

// An entry with the id of `at` (its default time).
Entry At(TimePoint at, std::vector<std::pair<std::string, std::string>> fields) {
  return {std::to_string(ToUnixMillis(at)) + "-0", std::move(fields)};
}

Entry Signup(TimePoint at, const std::string& customer) {
  return At(at, {{"type", "signup"}, {"customer_id", customer}, {"profile", kProfile}});
}
Entry Cart(TimePoint at, const std::string& customer, int total) {
  return At(at, {{"type", "cart_updated"},
                 {"customer_id", customer},
                 {"profile", kProfile},
                 {"data", R"({"total":)" + std::to_string(total) + "}"}});
}
Entry Purchase(TimePoint at, const std::string& customer) {
  return At(at, {{"type", "purchase"},
                 {"customer_id", customer},
                 {"profile", kProfile},
                 {"data", R"({"total":30,"order_id":"o1"})"}});
}

Policy DaemonPolicy() {
  Policy p = SystemPolicy();
  p.render_mail = false;  // as the daemon runs it: the sender renders
  return p;
}

// Adds the entries to a cleared batch, gives every customer the stored state `stored` finds
// (none: a new customer), and plans it at `now`.
void Plan(Batch& b, const std::vector<Entry>& entries, TimePoint now,
          const std::map<std::string, std::string>& stored = {}, PlanOptions options = {}) {
  for (const auto& e : entries) b.AddEntry(e.id, e.Views(), now);
  for (size_t i = 0; i < b.customers().size(); ++i) {
    auto it = stored.find(b.customers()[i].id);
    std::string err;
    ASSERT_TRUE(b.SetState(
        i, it == stored.end() ? std::nullopt : std::optional<std::string_view>(it->second), &err))
        << err;
  }
  PlanBatch(*ShippedFlows(), DaemonPolicy(), now, options, &b);
}

std::vector<std::string> StepsOf(const BatchCustomer& c) {
  std::vector<std::string> out;
  for (const auto& j : c.jobs) out.push_back(j.flow + "/" + j.step);
  return out;
}

TEST(BatchPlan, EntriesOfOneCustomerGoTogetherInStreamOrder) {
  const TimePoint now = T("2026-03-02T10:00:00Z");
  Batch b;
  Plan(b, {Signup(now - kMinute * 2, "c1"), Signup(now - kMinute, "c2"), Purchase(now, "c1")}, now);
  ASSERT_EQ(b.customers().size(), 2u);
  EXPECT_EQ(b.customers()[0].id, "c1");
  EXPECT_EQ(b.customers()[0].sources.size(), 2u);
  EXPECT_EQ(b.customers()[0].sources[1], std::to_string(ToUnixMillis(now)) + "-0");
  EXPECT_EQ(b.customers()[1].id, "c2");
  EXPECT_EQ(b.events(), 3u);
  ASSERT_EQ(b.counted_events().size(), 3u);
  EXPECT_EQ(b.counted_events()[0].type, "signup");
  EXPECT_EQ(b.counted_events()[1].type, "purchase");  // c1's, before c2's signup
  EXPECT_EQ(b.counted_events()[1].customer, 0u);
}

TEST(BatchPlan, ABadEntryBecomesADeadLetterNamingItsField) {
  const TimePoint now = T("2026-03-02T10:00:00Z");
  Batch b;
  Entry bad = At(now, {{"type", "signup"},
                       {"customer_id", "c1"},
                       {"profile", "not json"},
                       {"error", "forged"},
                       {"source_id", "forged"}});
  Entry no_type = At(now, {{"type", "Bad Type!"}, {"customer_id", "c2"}});
  EXPECT_FALSE(b.AddEntry(bad.id, bad.Views(), now));
  EXPECT_FALSE(b.AddEntry(no_type.id, no_type.Views(), now));
  ASSERT_EQ(b.dead().size(), 2u);
  EXPECT_TRUE(b.customers().empty());
  const DeadLetter& d = b.dead()[0];
  EXPECT_EQ(d.source, bad.id);
  EXPECT_EQ(d.type, "signup");
  EXPECT_EQ(d.error_field, "profile");
  // The entry's own fields, without the ones the dead stream sets, then error and source_id.
  ASSERT_EQ(d.fields.size(), 10u);
  EXPECT_EQ(d.fields[4], "profile");
  EXPECT_EQ(d.fields[6], "error");
  EXPECT_EQ(d.fields[7].rfind("profile: ", 0), 0u) << d.fields[7];
  EXPECT_EQ(d.fields[8], "source_id");
  EXPECT_EQ(d.fields[9], bad.id);
  EXPECT_EQ(b.dead()[1].type, "invalid");
  EXPECT_FALSE(b.empty());
}

TEST(BatchPlan, ANewCustomerIsWrittenWithTheirFirstMailAndWake) {
  const TimePoint now = T("2026-03-02T10:00:00Z");
  Batch b;
  Plan(b, {Signup(now, "c1")}, now);
  const BatchCustomer& c = b.customers()[0];
  EXPECT_TRUE(c.write_state);
  EXPECT_FALSE(c.state.empty());
  EXPECT_EQ(StepsOf(c), std::vector<std::string>{"welcome/thanks"});
  ASSERT_TRUE(c.wake.has_value());
  EXPECT_EQ(*c.wake, now + 3 * kDay);  // the welcome series' first wait
  EXPECT_EQ(c.wake_op, WakeOp::kSet);
  EXPECT_EQ(b.mails(), 1u);
  EXPECT_EQ(b.earliest_wake(), c.wake);
  // The counts: each of the customer's records in a field of its own, and their share.
  int64_t total = 0;
  for (const auto& [field, n] : b.counts()) total += n;
  int64_t share = 0;
  for (const auto& [index, n] : c.counts) {
    ASSERT_LT(index, b.counts().size());
    share += n;
  }
  EXPECT_GT(total, 0);
  EXPECT_EQ(share, total);
  bool entered = false;
  for (const auto& [field, n] : b.counts()) entered |= field.rfind("welcome\t", 0) == 0;
  EXPECT_TRUE(entered);
}

TEST(BatchPlan, PlanningTheSameBatchAgainPlansTheSameWrites) {
  // A replay: the entries read again after a crash plan what the first read did, so whichever
  // commit lands, the mail and its id are the same (read later, only the times of reading
  // recorded in the state differ).
  const TimePoint now = T("2026-03-02T10:00:00Z");
  std::vector<Entry> entries = {Signup(now, "c1"), Cart(now, "c1", 80)};
  Batch first, same, again;
  Plan(first, entries, now);
  Plan(same, entries, now);
  Plan(again, entries, now + kMinute);
  ASSERT_EQ(first.customers().size(), 1u);
  EXPECT_EQ(first.customers()[0].state, same.customers()[0].state);
  EXPECT_EQ(first.customers()[0].wake, again.customers()[0].wake);
  ASSERT_EQ(first.customers()[0].jobs.size(), again.customers()[0].jobs.size());
  for (size_t i = 0; i < first.customers()[0].jobs.size(); ++i) {
    EXPECT_EQ(first.customers()[0].jobs[i].job_id, again.customers()[0].jobs[i].job_id);
  }
  EXPECT_EQ(first.counts(), again.counts());
}

TEST(BatchPlan, AStoredStateStepsOnAndAnUnchangedWakeIsKept) {
  const TimePoint now = T("2026-03-02T10:00:00Z");
  Batch b;
  Plan(b, {Signup(now, "c1")}, now);
  const std::map<std::string, std::string> stored = {{"c1", b.customers()[0].state}};
  // The same signup again (reentry: never) changes no wake: nothing for the timers to do.
  b.Clear();
  Plan(b, {Signup(now + kHour, "c1")}, now + kHour, stored);
  const BatchCustomer& c = b.customers()[0];
  EXPECT_TRUE(c.existed);
  EXPECT_EQ(c.old_wake, now + 3 * kDay);
  EXPECT_EQ(c.wake_op, WakeOp::kKeep);
  EXPECT_TRUE(c.jobs.empty());
  // Fired from an old timer entry but not due: the state's wake goes back in its place.
  b.Clear();
  b.AddTimer("c1", now + kHour);
  Plan(b, {}, now + 2 * kHour, stored);
  EXPECT_TRUE(b.customers()[0].fired);
  EXPECT_EQ(b.customers()[0].wake_op, WakeOp::kReassert);
  EXPECT_TRUE(b.customers()[0].jobs.empty());
}

TEST(BatchPlan, ADueTimerFiresAmongTheEventsByWhenItWasDue) {
  // A cart at 10:00 arms its reminder for 11:00. The batch at 12:30 holds the timer and a
  // purchase at 12:00: the reminder was due before the purchase, so it goes out, then the
  // purchase ends the flow.
  const TimePoint t0 = T("2026-03-02T10:00:00Z");
  Batch b;
  Plan(b, {Cart(t0, "c1", 80)}, t0);
  ASSERT_EQ(b.customers()[0].wake, t0 + kHour);
  const std::map<std::string, std::string> stored = {{"c1", b.customers()[0].state}};

  const TimePoint now = t0 + kHour * 2 + kMinute * 30;
  b.Clear();
  b.AddTimer("c1", t0 + kHour);
  Plan(b, {Purchase(t0 + 2 * kHour, "c1")}, now, stored);
  EXPECT_EQ(StepsOf(b.customers()[0]), std::vector<std::string>{"abandoned_cart/reminder1"});

  // With the purchase before the reminder was due, nothing is sent.
  b.Clear();
  b.AddTimer("c1", t0 + kHour);
  Plan(b, {Purchase(t0 + kMinute * 30, "c1")}, now, stored);
  EXPECT_TRUE(b.customers()[0].jobs.empty());
}

TEST(BatchPlan, ALateTriggerAndAPurchaseInOneBatch) {
  // Read late (the daemon was down): a cart from an hour ago, whose first wait (an hour from
  // the event: read within the hour of catch-up, waits count from the event) is over, and a
  // purchase after it. The purchase ends the flow before any reminder: no mail, and
  // no wake left behind.
  const TimePoint now = T("2026-03-02T13:00:00Z");
  Batch b;
  Plan(b, {Cart(now - kHour, "c1", 80), Purchase(now - kMinute, "c1")}, now, {},
       PlanOptions{.fire_over_wakes = true});
  const BatchCustomer& c = b.customers()[0];
  EXPECT_TRUE(c.jobs.empty()) << StepsOf(c)[0];
  EXPECT_LT(c.fired_late, 0);
  for (const auto& [field, n] : b.counts()) {
    EXPECT_EQ(field.find("\tsent\t"), std::string::npos) << field;
  }
}

TEST(BatchPlan, AWakeOverOnceTheEventsAreInFiresOnlyWhenTheReadLeftNothingBehind) {
  const TimePoint now = T("2026-03-02T13:00:00Z");
  const Entry late_cart = Cart(now - kHour, "c1", 80);  // its reminder is due now
  Batch b;
  Plan(b, {late_cart}, now, {}, PlanOptions{.fire_over_wakes = true});
  EXPECT_EQ(StepsOf(b.customers()[0]), std::vector<std::string>{"abandoned_cart/reminder1"});
  EXPECT_EQ(b.customers()[0].fired_late, 0);
  // Behind a backlog it waits for the timers, with its wake in the past.
  b.Clear();
  Plan(b, {late_cart}, now, {}, PlanOptions{.fire_over_wakes = false});
  EXPECT_TRUE(b.customers()[0].jobs.empty());
  EXPECT_EQ(b.customers()[0].wake, now);
  EXPECT_EQ(b.customers()[0].wake_op, WakeOp::kSet);
}

TEST(BatchPlan, AStateThatCannotBeReadStopsTheBatch) {
  const TimePoint now = T("2026-03-02T10:00:00Z");
  Batch b;
  const Entry e = Signup(now, "c1");
  b.AddEntry(e.id, e.Views(), now);
  std::string err;
  EXPECT_FALSE(b.SetState(0, std::string_view("\x07garbage"), &err));
  EXPECT_FALSE(err.empty());
}

TEST(BatchPlan, AClearedBatchReusesItsCustomersAsNew) {
  const TimePoint now = T("2026-03-02T10:00:00Z");
  Batch b;
  Plan(b, {Signup(now, "c1"), Signup(now, "c2")}, now);
  b.Clear();
  EXPECT_TRUE(b.empty());
  Plan(b, {Purchase(now, "c3")}, now);
  ASSERT_EQ(b.customers().size(), 1u);
  const BatchCustomer& c = b.customers()[0];
  EXPECT_EQ(c.id, "c3");
  EXPECT_EQ(c.sources.size(), 1u);
  EXPECT_FALSE(c.existed);
  EXPECT_FALSE(c.fired);
  EXPECT_EQ(b.states()[0].id, "c3");
}

}  // namespace
}  // namespace journeyd::engine::testing
