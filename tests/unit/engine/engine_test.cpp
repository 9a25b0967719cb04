// Engine rules beyond the shipped flows: reload (flow_changed), reentry, transactional mail,
// deterministic splits with a holdout, and the state codec's version check.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <tuple>
#include <vector>

#include <fmt/format.h>

#include "journeyd/common/hash.h"
#include "journeyd/engine/engine.h"
#include "journeyd/flow/loader.h"
#include "test_support.h"

namespace journeyd::engine::testing {
namespace {

namespace fs = std::filesystem;

// A flows directory made for one test.
class FlowDir {
 public:
  FlowDir() {
    dir_ = fs::temp_directory_path() /
           ("journeyd-engine-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    fs::create_directories(dir_ / "templates");
    Write("templates/note.yaml", "subject: \"Note for {{customer.first_name}}\"\ntext: hi\n");
  }
  ~FlowDir() { fs::remove_all(dir_); }
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
  }
  std::shared_ptr<const flow::FlowSet> Load() {
    auto r = host::LoadFlowDirectory(dir_.string());
    for (const auto& d : r.diagnostics.all()) ADD_FAILURE() << d.ToString();
    return r.flows;
  }

 private:
  static inline int counter_ = 0;
  fs::path dir_;
};

Event Signup(const std::string& ts, const std::string& profile = kOptedIn) {
  return Ev(R"({"type":"signup","customer_id":"c1","ts":")" + ts + "\"," + profile + "}");
}

std::vector<Record> Of(const Decisions& d, Record::Kind k) {
  std::vector<Record> out;
  for (const auto& r : d.records) {
    if (r.kind == k) out.push_back(r);
  }
  return out;
}

TEST(EngineReload, AStepThatNoLongerExistsEndsTheRunWithFlowChanged) {
  FlowDir dir;
  dir.Write("f.yaml",
            "flow: f\ntrigger: { event: signup }\nsteps:\n  - wait: 3d\n    id: pause\n"
            "  - send: note\n    id: later\n");
  auto v1 = dir.Load();
  ASSERT_TRUE(v1);
  CustomerState st;
  st.id = "c1";
  Policy p;
  Step(*v1, p, st, EventInput{Signup("2026-01-01T00:00:00Z")}, T("2026-01-01T00:00:00Z"));
  ASSERT_EQ(st.journeys.size(), 1u);
  EXPECT_EQ(st.journeys[0].step, "pause");

  // Same id still there (with a step added before it): the customer stays where they are.
  dir.Write("f.yaml",
            "flow: f\ntrigger: { event: signup }\nsteps:\n  - send: note\n    id: hello\n"
            "  - wait: 3d\n    id: pause\n  - send: note\n    id: later\n");
  auto v2 = dir.Load();
  auto d = Step(*v2, p, st, TimerInput{}, T("2026-01-02T00:00:00Z"));
  EXPECT_TRUE(Of(d, Record::Kind::kExit).empty());
  ASSERT_EQ(st.journeys.size(), 1u);
  EXPECT_EQ(st.journeys[0].step, "pause");

  // The step removed: the run leaves with flow_changed.
  dir.Write("f.yaml", "flow: f\ntrigger: { event: signup }\nsteps:\n  - send: note\n    id: x\n");
  auto v3 = dir.Load();
  d = Step(*v3, p, st, TimerInput{}, T("2026-01-02T00:00:00Z"));
  auto exits = Of(d, Record::Kind::kExit);
  ASSERT_EQ(exits.size(), 1u);
  EXPECT_EQ(exits[0].reason, "flow_changed");
  EXPECT_EQ(exits[0].step, "pause");
  EXPECT_TRUE(st.journeys.empty());
  EXPECT_FALSE(st.wake);
}

TEST(EngineReentry, AfterADurationOnly) {
  FlowDir dir;
  dir.Write("f.yaml",
            "flow: f\ntrigger: { event: signup }\nreentry: after 30d\nsteps:\n"
            "  - send: note\n    id: n\n");
  auto flows = dir.Load();
  CustomerState st;
  Policy p;
  int entered = 0;
  for (const char* ts : {"2026-01-01T00:00:00Z", "2026-01-10T00:00:00Z", "2026-02-01T00:00:00Z"}) {
    auto d = Step(*flows, p, st, EventInput{Signup(ts)}, T(ts));
    entered += static_cast<int>(Of(d, Record::Kind::kEnter).size());
  }
  EXPECT_EQ(entered, 2);  // day 0 and day 31, not day 9
}

TEST(EngineReentry, NeverMeansOnce) {
  FlowDir dir;
  dir.Write("f.yaml", "flow: f\ntrigger: { event: signup }\nsteps:\n  - send: note\n    id: n\n");
  auto flows = dir.Load();
  CustomerState st;
  Policy p;
  int entered = 0;
  for (const char* ts : {"2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"}) {
    entered += static_cast<int>(
        Of(Step(*flows, p, st, EventInput{Signup(ts)}, T(ts)), Record::Kind::kEnter).size());
  }
  EXPECT_EQ(entered, 1);
}

TEST(EngineCategory, TransactionalMailSkipsConsentCapAndQuietHoursButNeedsAnAddress) {
  FlowDir dir;
  dir.Write("t.yaml",
            "flow: t\ncategory: transactional\ntrigger: { event: signup }\nreentry: always\n"
            "steps:\n  - send: note\n    id: n\n");
  auto flows = dir.Load();
  Policy p;
  p.cap_count = 1;
  p.cap_window = 24 * kHour;
  p.quiet_start = 0;
  p.quiet_end = 23 * 60 + 59;
  CustomerState st;
  // No opt-in, inside quiet hours, twice in a day: still sent, at once.
  auto profile = std::string(R"("profile":{"email":"a@example.com","first_name":"A"})");
  auto d1 = Step(*flows, p, st, EventInput{Signup("2026-01-01T10:00:00Z", profile)},
                 T("2026-01-01T10:00:00Z"));
  auto d2 = Step(*flows, p, st, EventInput{Signup("2026-01-01T11:00:00Z", profile)},
                 T("2026-01-01T11:00:00Z"));
  EXPECT_EQ(d1.sends.size(), 1u);
  EXPECT_EQ(d2.sends.size(), 1u);
  EXPECT_FALSE(d1.sends[0].marketing);
  EXPECT_EQ(d1.sends[0].unsubscribe_url, "");
  // Without an address it is suppressed.
  CustomerState nobody;
  auto d3 = Step(*flows, p, nobody, EventInput{Signup("2026-01-01T10:00:00Z", R"("data":{})")},
                 T("2026-01-01T10:00:00Z"));
  ASSERT_EQ(Of(d3, Record::Kind::kSuppress).size(), 1u);
  EXPECT_EQ(Of(d3, Record::Kind::kSuppress)[0].reason, "no_email");
}

TEST(EngineSplit, DeterministicPerCustomerWithAHoldoutRecorded) {
  FlowDir dir;
  dir.Write("s.yaml",
            "flow: s\ntrigger: { event: signup }\nsteps:\n  - split:\n"
            "      - { weight: 45, name: a, steps: [ { send: note, id: a } ] }\n"
            "      - { weight: 45, name: b, steps: [ { send: note, id: b } ] }\n"
            "      - { weight: 10, holdout: true }\n");
  auto flows = dir.Load();
  Policy p;
  std::map<std::string, int> groups;
  for (int i = 0; i < 2000; ++i) {
    std::string id = "c" + std::to_string(i);
    std::string first;
    for (int rep = 0; rep < 2; ++rep) {  // the same customer lands in the same group twice
      CustomerState st;
      st.id = id;
      Event e = Signup("2026-01-01T00:00:00Z");
      e.customer_id = id;
      auto d = Step(*flows, p, st, EventInput{e}, T("2026-01-01T00:00:00Z"));
      std::string g =
          d.sends.empty() ? Of(d, Record::Kind::kSuppress).at(0).reason : d.sends[0].step;
      if (rep == 0) {
        first = g;
        ++groups[g];
      } else {
        EXPECT_EQ(g, first) << id;
      }
    }
  }
  EXPECT_EQ(groups.size(), 3u);
  EXPECT_NEAR(groups["a"], 900, 120);
  EXPECT_NEAR(groups["b"], 900, 120);
  EXPECT_NEAR(groups["holdout"], 200, 70);
}

TEST(EngineCodec, ANewerVersionIsAnErrorNotACrash) {
  CustomerState st;
  st.id = "c1";
  std::string bytes = EncodeState(st);
  bytes[0] = 2;
  CustomerState out;
  std::string err;
  EXPECT_FALSE(DecodeState(bytes, &out, &err));
  EXPECT_EQ(err, "customer state version 2 is newer than this journeyd (1)");
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    EXPECT_FALSE(DecodeState(std::string_view(EncodeState(st)).substr(0, cut), &out, &err));
  }
}

TEST(EngineJobId, StableAndDistinct) {
  EXPECT_EQ(JobId("c1", "winback", 1, "mail1"), JobId("c1", "winback", 1, "mail1"));
  EXPECT_NE(JobId("c1", "winback", 1, "mail1"), JobId("c1", "winback", 2, "mail1"));
  EXPECT_NE(JobId("c1", "winback", 1, "mail1"), JobId("c1", "winback", 1, "mail2"));
  EXPECT_EQ(JobId("c1", "winback", 1, "mail1").size(), 32u);
}

TEST(EngineJobId, KeepsItsValueAcrossVersions) {
  // Mails queued or retried by an older journeyd carry these ids as their Message-ID: the
  // formula (two seeded 64-bit hashes of the fields joined by US, in hex) must not drift.
  for (const auto& [customer, flow, run, step] :
       std::vector<std::tuple<std::string, std::string, uint32_t, std::string>>{
           {"c1", "winback", 1, "mail1"},
           {"customer-42@example.com", "abandoned_cart", 4294967295u, "reminder2_discount"},
           {"", "f", 0, ""},
           {"caf\xC3\xA9", "birthday", 12, "start+1"}}) {
    const std::string key = fmt::format("{}\x1f{}\x1f{}\x1f{}", customer, flow, run, step);
    EXPECT_EQ(JobId(customer, flow, run, step),
              fmt::format("{:016x}{:016x}", StableHash64(key, 1), StableHash64(key, 2)));
  }
  EXPECT_EQ(JobId("c1", "winback", 1, "mail1"), "b2450fd19c12bdc60cacab52af3e6f66");
}

}  // namespace
}  // namespace journeyd::engine::testing

namespace journeyd::engine::testing {
namespace {

// A `bounce` event (what the sender records after a 5xx on RCPT TO) stops marketing mail to
// that address but not transactional mail; a new address lifts it.
TEST(EngineBounce, SuppressesMarketingToTheBouncedAddressUntilTheAddressChanges) {
  FlowDir dir;
  dir.Write("m.yaml",
            "flow: m\ntrigger: { event: signup }\nreentry: always\nsteps:\n  - send: note\n"
            "    id: n\n");
  dir.Write("t.yaml",
            "flow: t\ncategory: transactional\ntrigger: { event: signup }\nreentry: always\n"
            "steps:\n  - send: note\n    id: n\n");
  auto flows = dir.Load();
  Policy p;
  CustomerState st;
  Step(*flows, p, st, EventInput{Signup("2026-01-01T10:00:00Z")}, T("2026-01-01T10:00:00Z"));
  // A bounce for some other address changes nothing.
  Step(*flows, p, st,
       EventInput{Ev(R"({"type":"bounce","customer_id":"c1","ts":"2026-01-01T10:01:00Z",)"
                     R"("data":{"email":"old@example.com"}})")},
       T("2026-01-01T10:01:00Z"));
  EXPECT_FALSE(st.bouncing);
  const Attr* email = st.Find("email");
  ASSERT_TRUE(email);
  Step(*flows, p, st,
       EventInput{Ev(R"({"type":"bounce","customer_id":"c1","ts":"2026-01-01T10:02:00Z",)"
                     R"("data":{"email":")" +
                     email->str + R"("}})")},
       T("2026-01-01T10:02:00Z"));
  EXPECT_TRUE(st.bouncing);
  auto d =
      Step(*flows, p, st, EventInput{Signup("2026-01-01T11:00:00Z")}, T("2026-01-01T11:00:00Z"));
  ASSERT_EQ(d.sends.size(), 1u);  // the transactional one
  EXPECT_FALSE(d.sends[0].marketing);
  ASSERT_EQ(Of(d, Record::Kind::kSuppress).size(), 1u);
  EXPECT_EQ(Of(d, Record::Kind::kSuppress)[0].reason, "bouncing");
  // A new address: marketing mail goes out again.
  d = Step(*flows, p, st,
           EventInput{Signup("2026-01-01T12:00:00Z",
                             R"("profile":{"email":"new@example.com","email_opt_in":true})")},
           T("2026-01-01T12:00:00Z"));
  EXPECT_FALSE(st.bouncing);
  EXPECT_EQ(d.sends.size(), 2u);
}

// The daemon reads an event a moment (or, after an outage, minutes) after it happened; the
// journey's waits count from the event's time, as simulate counts them.

// Writes flow `id`, started by a signup, with `body` (its keys after the trigger).
void SignupFlow(FlowDir& dir, const std::string& id, const std::string& body) {
  dir.Write(id + ".yaml", "flow: " + id + "\ntrigger: { event: signup }\n" + body);
}

std::string WaitForPurchase(const std::string& timeout) {
  return "steps:\n  - wait_for:\n      event: purchase\n      timeout: " + timeout +
         "\n    on_event: []\n    on_timeout:\n      - send: note\n";
}

CustomerState C1() {
  CustomerState st;
  st.id = "c1";
  return st;
}

TEST(EngineEventTime, WaitsCountFromWhenTheTriggerEventHappened) {
  FlowDir dir;
  SignupFlow(dir, "f", "steps:\n  - wait: 1h\n  - send: note\n");
  auto flows = dir.Load();
  ASSERT_TRUE(flows);
  Policy p;
  // Read ten minutes late: the wake is an hour after the event, not after the read.
  CustomerState late = C1();
  Step(*flows, p, late, EventInput{Signup("2026-01-01T10:00:00Z")}, T("2026-01-01T10:10:00Z"));
  ASSERT_TRUE(late.wake);
  EXPECT_EQ(*late.wake, T("2026-01-01T11:00:00Z"));
  // Read 40 minutes late with a 30-minute wait: due already, so the mail goes at the next
  // timer, after whatever else of the customer's was read with the event.
  SignupFlow(dir, "g", "steps:\n  - wait: 30m\n  - send: note\n");
  flows = dir.Load();
  CustomerState overdue = C1();
  auto d = Step(*flows, p, overdue, EventInput{Signup("2026-01-01T10:00:00Z")},
                T("2026-01-01T10:40:00Z"));
  EXPECT_TRUE(d.sends.empty());
  ASSERT_TRUE(overdue.wake);
  EXPECT_EQ(*overdue.wake, T("2026-01-01T10:30:00Z"));
  d = Step(*flows, p, overdue, TimerInput{}, T("2026-01-01T10:40:01Z"));
  ASSERT_EQ(d.sends.size(), 1u);
  EXPECT_EQ(d.sends[0].flow, "g");
  ASSERT_TRUE(overdue.wake);
  EXPECT_EQ(*overdue.wake, T("2026-01-01T11:00:00Z"));  // flow f's hour, from the event
}

TEST(EngineEventTime, AnEventReadWithTheLateTriggerStillHaltsTheJourney) {
  // A cart update and the purchase ten minutes later, both read 40 minutes late: the
  // reminder due 30 minutes after the cart update is not sent.
  FlowDir dir;
  SignupFlow(dir, "f", "exit_on: [purchase]\nsteps:\n  - wait: 30m\n  - send: note\n");
  auto flows = dir.Load();
  ASSERT_TRUE(flows);
  Policy p;
  CustomerState st = C1();
  const TimePoint now = T("2026-01-01T10:40:00Z");
  auto d = Step(*flows, p, st, EventInput{Signup("2026-01-01T10:00:00Z")}, now);
  EXPECT_TRUE(d.sends.empty());
  d = Step(*flows, p, st,
           EventInput{Ev(R"({"type":"purchase","customer_id":"c1","ts":"2026-01-01T10:10:00Z",)"
                         R"("data":{"total":20}})")},
           now);
  EXPECT_TRUE(d.sends.empty());
  EXPECT_TRUE(st.journeys.empty());
  EXPECT_FALSE(st.wake);
}

TEST(EngineEventTime, AnEventOlderThanAnHourStartsTheClockWhenItIsRead) {
  // A backfill of old events must not send every overdue mail of a long journey at once.
  FlowDir dir;
  SignupFlow(dir, "f", "steps:\n  - wait: 1d\n  - send: note\n  - wait: 1d\n  - send: note\n");
  auto flows = dir.Load();
  ASSERT_TRUE(flows);
  Policy p;
  CustomerState st = C1();
  auto d =
      Step(*flows, p, st, EventInput{Signup("2025-06-01T10:00:00Z")}, T("2026-01-01T10:00:00Z"));
  EXPECT_TRUE(d.sends.empty());
  ASSERT_TRUE(st.wake);
  EXPECT_EQ(*st.wake, T("2026-01-02T10:00:00Z"));
}

TEST(EngineEventTime, AWaitForTimeoutCountsFromTheEventToo) {
  FlowDir dir;
  SignupFlow(dir, "f", WaitForPurchase("2h"));
  auto flows = dir.Load();
  ASSERT_TRUE(flows);
  Policy p;
  CustomerState st = C1();
  auto d =
      Step(*flows, p, st, EventInput{Signup("2026-01-01T10:00:00Z")}, T("2026-01-01T10:30:00Z"));
  EXPECT_TRUE(d.sends.empty());
  ASSERT_TRUE(st.wake);
  EXPECT_EQ(*st.wake, T("2026-01-01T12:00:00Z"));
  // Its timeout already over when the event is read: the timeout branch runs at the next
  // timer, unless the awaited event was read first.
  SignupFlow(dir, "f", WaitForPurchase("20m"));
  flows = dir.Load();
  CustomerState over = C1();
  d = Step(*flows, p, over, EventInput{Signup("2026-01-01T10:00:00Z")}, T("2026-01-01T10:30:00Z"));
  EXPECT_TRUE(d.sends.empty());
  ASSERT_TRUE(over.wake);
  EXPECT_EQ(*over.wake, T("2026-01-01T10:20:00Z"));
  d = Step(*flows, p, over, TimerInput{}, T("2026-01-01T10:30:01Z"));
  ASSERT_EQ(d.sends.size(), 1u);
  EXPECT_FALSE(over.wake);
}

// The history keeps the newest kHistory entries, oldest first, through the state codec too.
TEST(EngineHistory, KeepsTheNewestEntriesInOrder) {
  FlowDir dir;
  dir.Write("f.yaml", "flow: f\nname: F\ntrigger:\n  event: never_sent\nsteps:\n  - send: note\n");
  auto flows = dir.Load();
  ASSERT_TRUE(flows);
  Policy policy;
  CustomerState st;
  TimePoint t = *ParseTimestamp("2026-01-01T10:00:00Z");
  const size_t events = CustomerState::kHistory + 7;
  for (size_t i = 0; i < events; ++i) {
    Event ev = Ev(
        fmt::format(R"({{"type":"visit_{}","customer_id":"c1","ts":"2026-01-01T10:00:00Z"}})", i));
    Step(*flows, policy, st, EventInput{ev}, t);
    // Read back and written again after every step, as the daemon does.
    CustomerState again;
    std::string err;
    ASSERT_TRUE(DecodeState(EncodeState(st), &again, &err)) << err;
    st = std::move(again);
  }
  ASSERT_EQ(st.history.size(), CustomerState::kHistory);
  for (size_t k = 0; k < st.history.size(); ++k) {
    EXPECT_EQ(st.history[k].kind, "event");
    EXPECT_EQ(st.history[k].detail, fmt::format("visit_{}", events - CustomerState::kHistory + k));
  }
}

}  // namespace
}  // namespace journeyd::engine::testing

namespace journeyd::engine::testing {
namespace {

// journeyctl preview's job is the one the engine hands the sender: for a customer in the flow,
// their run, the same job id and the same rendered mail.
TEST(EnginePreview, ACustomerInTheFlowGetsTheJobTheEngineWouldHaveMade) {
  auto flows = ShippedFlows();
  Policy p;
  CustomerState st;
  st.id = "c1";
  auto d =
      Step(*flows, p, st, EventInput{Signup("2026-01-01T00:00:00Z")}, T("2026-01-01T00:00:00Z"));
  ASSERT_FALSE(d.sends.empty());
  const SendJob& sent = d.sends[0];
  ASSERT_EQ(sent.flow, "welcome");
  std::string error;
  auto job = PreviewSend(*flows, p, st, "welcome", sent.step, "", nullptr,
                         T("2026-01-01T00:00:00Z"), &error);
  ASSERT_TRUE(job) << error;
  EXPECT_EQ(job->job_id, sent.job_id);
  EXPECT_EQ(job->subject, sent.subject);
  EXPECT_EQ(job->text, sent.text);
  EXPECT_EQ(job->html, sent.html);
  EXPECT_EQ(job->to, sent.to);
  // Another language on request; the customer's own otherwise.
  auto nl = PreviewSend(*flows, p, st, "welcome", sent.step, "nl", nullptr,
                        T("2026-01-01T00:00:00Z"), &error);
  ASSERT_TRUE(nl) << error;
  EXPECT_EQ(nl->locale, "nl");
  EXPECT_NE(nl->subject, sent.subject);
}

TEST(EnginePreview, SaysWhatIsMissing) {
  auto flows = ShippedFlows();
  Policy p;
  CustomerState st;
  st.id = "c1";
  std::string error;
  const TimePoint now = T("2026-01-01T00:00:00Z");
  EXPECT_FALSE(PreviewSend(*flows, p, st, "nope", "x", "", nullptr, now, &error));
  EXPECT_EQ(error, "no flow 'nope' is loaded");
  EXPECT_FALSE(PreviewSend(*flows, p, st, "welcome", "nope", "", nullptr, now, &error));
  EXPECT_EQ(error, "flow 'welcome' has no step 'nope'");
  EXPECT_FALSE(PreviewSend(*flows, p, st, "birthday", "wait_purchase", "", nullptr, now, &error));
  EXPECT_EQ(error, "step 'wait_purchase' of flow 'birthday' sends no mail");
  EXPECT_FALSE(PreviewSend(*flows, p, st, "welcome", "thanks", "", nullptr, now, &error));
  EXPECT_EQ(error, "the customer has no email address");
}

}  // namespace
}  // namespace journeyd::engine::testing
