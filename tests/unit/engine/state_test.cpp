// The customer state: profile helpers, the compact codec (round trips, size, hostile bytes)
// and the JSON view.
#include "journeyd/engine/state.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <iostream>
#include <random>
#include <string>

#include "journeyd/common/time.h"

namespace journeyd::engine {
namespace {

TimePoint Ts(const std::string& rfc3339) {
  auto t = ParseTimestamp(rfc3339);
  if (!t) ADD_FAILURE() << "bad time in test: " << rfc3339;
  return t.value_or(TimePoint{});
}

Attr Str(std::string s) {
  Attr a;
  a.kind = Attr::Kind::kString;
  a.str = std::move(s);
  return a;
}
Attr Num(double d) {
  Attr a;
  a.kind = Attr::Kind::kNumber;
  a.number = d;
  return a;
}
Attr Bool(bool b) {
  Attr a;
  a.kind = Attr::Kind::kBool;
  a.b = b;
  return a;
}
Attr Null() { return Attr{}; }

// A customer with every field set, and a few awkward values.
CustomerState RichState() {
  CustomerState s;
  s.id = "customer-Zoë-42";
  s.Set("email", Str("zoe@example.com"));
  s.Set("first_name", Str("Zoë"));
  s.Set("last_name", Str("Ölmez"));
  s.Set("birthday", Str("1990-04-02"));
  s.Set("timezone", Str("Europe/Amsterdam"));
  s.Set("locale", Str("nl-NL"));
  s.Set("points", Num(1200));
  s.Set("points_expire_at", Str("2026-09-01"));
  s.Set("email_opt_in", Bool(true));
  s.Set("vip", Bool(false));
  s.Set("score", Num(2.75));
  s.Set("debt", Num(-17));
  s.Set("huge", Num(1e300));
  s.Set("legacy_id", Null());
  s.Set("note", Str(""));
  s.orders = 3;
  s.revenue = 149.85;
  s.first_purchase_at = Ts("2025-11-02T10:15:00.123Z");
  s.last_purchase_at = Ts("2026-05-10T18:00:00Z");
  s.unsubscribed = true;
  s.bouncing = true;

  FlowMemo welcome;
  welcome.flow = "welcome";
  welcome.runs = 2;
  welcome.last_entry = Ts("2026-05-01T09:00:00Z");
  welcome.last_send = Ts("2026-05-04T09:00:00.500Z");
  welcome.last_send_step = "tips";
  welcome.converted_run = 1;
  welcome.date_next = Ts("2027-04-02T07:00:00Z");
  welcome.date_fired_key = -3;
  FlowMemo birthday;
  birthday.flow = "birthday";
  birthday.runs = 7;
  birthday.date_fired_key = 20545;
  s.memos = {welcome, birthday};

  Journey j1;
  j1.flow = "welcome";
  j1.run = 2;
  j1.step = "wait_3d";
  j1.wait = Journey::Wait::kTimer;
  j1.entered_at = Ts("2026-05-01T09:00:00Z");
  j1.wake = Ts("2026-05-04T09:00:00Z");
  j1.trigger_type = "signup";
  j1.trigger_event_id = "evt-0001";
  j1.trigger_ts = Ts("2026-05-01T08:59:59.750Z");
  j1.trigger_data = PackTriggerData(nlohmann::json::parse(
      R"({"source":"web","total":49.5,"count":3,"neg":-2,"ok":true,"none":null,
          "items":[{"sku":"A-1","qty":2},{"sku":"東京","qty":1}],"empty":{},"list":[]})"));
  Journey j2;
  j2.flow = "cart_reminder";  // no memo for this one: its name is written out
  j2.run = 4000000000u;
  j2.step = "wait_for_purchase";
  j2.wait = Journey::Wait::kEvent;
  j2.entered_at = Ts("2026-05-12T12:00:00Z");
  j2.wake = Ts("2026-05-13T12:00:00Z");
  j2.trigger_type = "cart_updated";
  j2.trigger_ts = Ts("2026-05-12T12:00:00Z");
  j2.trigger_data = PackTriggerData(nlohmann::json::object());  // stays an empty object
  Journey j3;
  j3.flow = "birthday";  // a date trigger: no trigger event
  j3.run = 7;
  j3.step = "send_card";
  j3.entered_at = Ts("2026-04-02T07:00:00Z");
  s.journeys = {j1, j2, j3};

  for (int i = 0; i < 32; ++i) s.recent_event_ids.push_back("evt-" + std::to_string(1000 + i));
  s.recent_marketing_sends = {Ts("2026-05-04T09:00:00.500Z"), Ts("2026-05-08T09:00:00Z"),
                              Ts("2026-05-10T18:00:01Z")};
  const char* kinds[] = {"event", "enter", "send", "suppress", "exit", "convert", "imported"};
  for (int i = 0; i < 20; ++i) {
    HistoryEntry h;
    h.at = Ts("2026-05-01T09:00:00Z") + i * kHour + i * Duration{7};
    h.kind = kinds[i % 7];
    h.flow = i % 3 == 0 ? "" : (i % 3 == 1 ? "welcome" : "winback");
    h.step = i % 2 ? "tips" : "";
    h.detail = i % 4 ? "welcome_tips" : "frequency cap";
    s.history.push_back(h);
  }
  s.wake = Ts("2026-05-04T09:00:00Z");
  return s;
}

void ExpectSameAttr(const Attr& a, const Attr& b, const std::string& name) {
  EXPECT_EQ(a.kind, b.kind) << name;
  EXPECT_EQ(a.b, b.b) << name;
  if (std::isnan(a.number)) {
    EXPECT_TRUE(std::isnan(b.number)) << name;
  } else {
    EXPECT_EQ(a.number, b.number) << name;
  }
  EXPECT_EQ(a.str, b.str) << name;
}

void ExpectSame(const CustomerState& a, const CustomerState& b) {
  EXPECT_EQ(a.id, b.id);
  ASSERT_EQ(a.profile.size(), b.profile.size());
  for (size_t i = 0; i < a.profile.size(); ++i) {
    EXPECT_EQ(a.profile[i].first, b.profile[i].first);
    ExpectSameAttr(a.profile[i].second, b.profile[i].second, a.profile[i].first);
  }
  EXPECT_EQ(a.orders, b.orders);
  EXPECT_EQ(a.revenue, b.revenue);
  EXPECT_EQ(a.first_purchase_at, b.first_purchase_at);
  EXPECT_EQ(a.last_purchase_at, b.last_purchase_at);
  EXPECT_EQ(a.unsubscribed, b.unsubscribed);
  EXPECT_EQ(a.bouncing, b.bouncing);
  ASSERT_EQ(a.journeys.size(), b.journeys.size());
  for (size_t i = 0; i < a.journeys.size(); ++i) {
    const Journey& x = a.journeys[i];
    const Journey& y = b.journeys[i];
    SCOPED_TRACE("journey " + x.flow);
    EXPECT_EQ(x.flow, y.flow);
    EXPECT_EQ(x.run, y.run);
    EXPECT_EQ(x.step, y.step);
    EXPECT_EQ(x.wait, y.wait);
    EXPECT_EQ(x.wake, y.wake);
    EXPECT_EQ(x.entered_at, y.entered_at);
    EXPECT_EQ(x.trigger_type, y.trigger_type);
    EXPECT_EQ(x.trigger_event_id, y.trigger_event_id);
    EXPECT_EQ(x.trigger_ts, y.trigger_ts);
    EXPECT_EQ(x.trigger_data, y.trigger_data);
    EXPECT_EQ(UnpackTriggerData(x.trigger_data), UnpackTriggerData(y.trigger_data));
    EXPECT_EQ(UnpackTriggerData(x.trigger_data).type(), UnpackTriggerData(y.trigger_data).type());
  }
  ASSERT_EQ(a.memos.size(), b.memos.size());
  for (size_t i = 0; i < a.memos.size(); ++i) {
    const FlowMemo& x = a.memos[i];
    const FlowMemo& y = b.memos[i];
    SCOPED_TRACE("memo " + x.flow);
    EXPECT_EQ(x.flow, y.flow);
    EXPECT_EQ(x.runs, y.runs);
    EXPECT_EQ(x.last_entry, y.last_entry);
    EXPECT_EQ(x.last_send, y.last_send);
    EXPECT_EQ(x.last_send_step, y.last_send_step);
    EXPECT_EQ(x.converted_run, y.converted_run);
    EXPECT_EQ(x.date_next, y.date_next);
    EXPECT_EQ(x.date_fired_key, y.date_fired_key);
  }
  EXPECT_EQ(a.recent_event_ids, b.recent_event_ids);
  EXPECT_EQ(a.recent_marketing_sends, b.recent_marketing_sends);
  ASSERT_EQ(a.history.size(), b.history.size());
  for (size_t i = 0; i < a.history.size(); ++i) {
    EXPECT_EQ(a.history[i].at, b.history[i].at) << i;
    EXPECT_EQ(a.history[i].kind, b.history[i].kind) << i;
    EXPECT_EQ(a.history[i].flow, b.history[i].flow) << i;
    EXPECT_EQ(a.history[i].step, b.history[i].step) << i;
    EXPECT_EQ(a.history[i].detail, b.history[i].detail) << i;
  }
  EXPECT_EQ(a.wake, b.wake);
}

CustomerState RoundTrip(const CustomerState& s) {
  CustomerState out;
  std::string err;
  EXPECT_TRUE(DecodeState(EncodeState(s), &out, &err)) << err;
  return out;
}

// ---- helpers ---------------------------------------------------------------------------

TEST(StateProfile, SetFindEraseKeepNamesSorted) {
  CustomerState s;
  EXPECT_TRUE(s.empty());
  s.Set("points", Num(10));
  s.Set("email", Str("a@b.c"));
  s.Set("first_name", Str("Ann"));
  s.Set("email", Str("ann@b.c"));  // replaces
  ASSERT_EQ(s.profile.size(), 3u);
  EXPECT_EQ(s.profile[0].first, "email");
  EXPECT_EQ(s.profile[1].first, "first_name");
  EXPECT_EQ(s.profile[2].first, "points");
  ASSERT_NE(s.Find("email"), nullptr);
  EXPECT_EQ(s.Find("email")->str, "ann@b.c");
  EXPECT_EQ(s.Find("points")->number, 10);
  EXPECT_EQ(s.Find("missing"), nullptr);
  EXPECT_EQ(s.Find(""), nullptr);
  EXPECT_FALSE(s.empty());
  s.Erase("first_name");
  s.Erase("missing");
  EXPECT_EQ(s.Find("first_name"), nullptr);
  ASSERT_EQ(s.profile.size(), 2u);
  s.Erase("email");
  s.Erase("points");
  EXPECT_TRUE(s.empty());
}

TEST(StateProfile, MemosAndJourneys) {
  CustomerState s;
  EXPECT_EQ(s.FindMemo("welcome"), nullptr);
  FlowMemo& m = s.Memo("welcome");
  m.runs = 1;
  EXPECT_EQ(s.Memo("welcome").runs, 1u);
  EXPECT_EQ(s.memos.size(), 1u);
  ASSERT_NE(s.FindMemo("welcome"), nullptr);
  EXPECT_EQ(s.FindMemo("welcome")->runs, 1u);
  EXPECT_FALSE(s.empty());

  Journey ended;
  ended.flow = "welcome";  // step cleared: finished, waiting for clean-up
  Journey live;
  live.flow = "welcome";
  live.step = "tips";
  s.journeys = {ended, live};
  ASSERT_NE(s.FindJourney("welcome"), nullptr);
  EXPECT_EQ(s.FindJourney("welcome")->step, "tips");
  EXPECT_EQ(s.FindJourney("winback"), nullptr);
}

TEST(StateProfile, EmptyMeansNothingKnown) {
  CustomerState s;
  s.id = "c1";
  EXPECT_TRUE(s.empty());
  s.orders = 1;
  EXPECT_FALSE(s.empty());
  s.orders = 0;
  s.unsubscribed = true;
  EXPECT_FALSE(s.empty());
  s.unsubscribed = false;
  s.recent_event_ids.push_back("e1");
  EXPECT_FALSE(s.empty());
  s.recent_event_ids.clear();
  s.history.push_back(HistoryEntry{});
  EXPECT_FALSE(s.empty());
}

// ---- history ---------------------------------------------------------------------------

TEST(StateHistory, KeepsEntriesInOrderThroughPushesAndPops) {
  History h;
  EXPECT_TRUE(h.empty());
  EXPECT_EQ(h.begin(), h.end());
  const TimePoint t0 = Ts("2026-05-01T09:00:00.250Z");
  const std::string long_detail(70000, 'x');  // beyond any 16-bit length
  for (int i = 0; i < 30; ++i) {
    const std::string detail = i == 7 ? long_detail : fmt::format("detail_{}", i);
    h.push_back(
        HistoryEntry{t0 + i * kHour, i % 2 ? "send" : "event", i % 3 ? "winback" : "", "", detail});
    if (h.size() > 20) h.pop_front();
  }
  ASSERT_EQ(h.size(), 20u);
  size_t k = 0;
  for (const HistoryEntry e : h) {
    const int i = static_cast<int>(k) + 10;
    EXPECT_EQ(e.at, t0 + i * kHour) << k;
    EXPECT_EQ(e.kind, i % 2 ? "send" : "event") << k;
    EXPECT_EQ(e.flow, i % 3 ? "winback" : "") << k;
    EXPECT_EQ(e.step, "") << k;
    EXPECT_EQ(e.detail, fmt::format("detail_{}", i)) << k;
    EXPECT_EQ(h[k].detail, e.detail) << k;
    ++k;
  }
  EXPECT_EQ(k, 20u);
  EXPECT_EQ(h.front().detail, "detail_10");
  EXPECT_EQ(h.back().detail, "detail_29");
  EXPECT_EQ(h.back().at, t0 + 29 * kHour);
}

TEST(StateHistory, AnEntryCopiedFromItselfSurvivesTheBufferGrowing) {
  History h;
  h.push_back(HistoryEntry{Ts("2026-05-01T09:00:00Z"), "exit", "abandoned_cart", "reminder2",
                           "exit_on:purchase_with_a_long_event_type"});
  for (int i = 0; i < 12; ++i) h.push_back(h.back());  // views into h itself
  ASSERT_EQ(h.size(), 13u);
  for (const HistoryEntry e : h) {
    EXPECT_EQ(e.kind, "exit");
    EXPECT_EQ(e.flow, "abandoned_cart");
    EXPECT_EQ(e.step, "reminder2");
    EXPECT_EQ(e.detail, "exit_on:purchase_with_a_long_event_type");
  }
  while (!h.empty()) h.pop_front();
  EXPECT_EQ(h.begin(), h.end());
  h.push_back(HistoryEntry{Ts("2026-05-02T09:00:00Z"), "event", "", "", "signup"});
  EXPECT_EQ(h.size(), 1u);
  EXPECT_EQ(h.front().detail, "signup");
  EXPECT_EQ(h.back().detail, "signup");
  h.clear();
  EXPECT_TRUE(h.empty());
}

// ---- codec -----------------------------------------------------------------------------

TEST(StateCodec, ARichStateRoundTripsExactly) {
  CustomerState s = RichState();
  std::string bytes = EncodeState(s);
  EXPECT_EQ(static_cast<uint8_t>(bytes[0]), CustomerState::kCodecVersion);
  CustomerState out;
  std::string err;
  ASSERT_TRUE(DecodeState(bytes, &out, &err)) << err;
  ExpectSame(s, out);
  EXPECT_EQ(EncodeState(out), bytes);  // deterministic
  std::cout << "[ size     ] rich state (15 attributes, 3 journeys, 2 memos, 32 event ids, "
               "20 history entries): "
            << bytes.size() << " bytes\n";
}

// The encoder writes into a buffer it grows ahead of what it writes: a state of many parts
// grows it several times over, and each size on the way reads back exactly.
TEST(StateCodec, StatesGrowingTheBufferRoundTripExactly) {
  CustomerState s = RichState();
  size_t last = EncodeState(s).size();
  for (int i = 0; i < 300; ++i) {
    s.Set(fmt::format("attr_{:03}", i), Str(std::string(static_cast<size_t>(i % 97), 'x')));
    const std::string bytes = EncodeState(s);
    ASSERT_GT(bytes.size(), last);
    last = bytes.size();
    CustomerState out;
    std::string err;
    ASSERT_TRUE(DecodeState(bytes, &out, &err)) << i << ": " << err;
    ExpectSame(s, out);
    ASSERT_EQ(EncodeState(out), bytes) << i;
  }
  EXPECT_GT(last, 8u * 1024);  // from the first 256 bytes, doubled five times and more
}

// DecodeState reads into a state kept for the thread and reuses what it holds: a sparse state
// read after a rich one, or after a read that failed half way, keeps nothing of either.
TEST(StateCodec, ReadingAfterRicherStatesKeepsNothingOfThem) {
  CustomerState sparse;
  sparse.id = "c2";
  sparse.Set("email", Num(5));  // a name the rich state has, with another kind
  FlowMemo memo;
  memo.flow = "winback";  // no times, no step, no date
  sparse.memos = {memo, memo};
  sparse.memos[1].flow = "welcome";
  Journey j;
  j.flow = "winback";  // no wake, no trigger
  j.step = "mail1";
  j.entered_at = Ts("2026-06-01T00:00:00Z");
  sparse.journeys = {j, j};
  sparse.journeys[1].flow = "welcome";
  const std::string rich = EncodeState(RichState());
  const std::string bytes = EncodeState(sparse);
  std::string err;

  CustomerState a;
  ASSERT_TRUE(DecodeState(rich, &a, &err)) << err;
  ASSERT_TRUE(DecodeState(bytes, &a, &err)) << err;  // into a rich state
  ExpectSame(sparse, a);
  CustomerState c;
  ASSERT_TRUE(DecodeState(bytes, &c, &err)) << err;  // the thread's state now held the rich one
  ExpectSame(sparse, c);
  CustomerState d;
  ASSERT_TRUE(DecodeState(rich, &d, &err)) << err;
  EXPECT_FALSE(DecodeState(std::string_view(rich).substr(0, rich.size() - 3), &d, &err));
  ExpectSame(RichState(), d);  // a failed read leaves its output as it was
  ASSERT_TRUE(DecodeState(bytes, &d, &err)) << err;
  ExpectSame(sparse, d);
  EXPECT_EQ(EncodeState(d), bytes);
}

TEST(CustomerState, ClearedIsAsNew) {
  CustomerState s = RichState();
  ASSERT_FALSE(s.empty());
  s.Clear();
  EXPECT_TRUE(s.empty());
  ExpectSame(CustomerState{}, s);
  EXPECT_EQ(EncodeState(s), EncodeState(CustomerState{}));
}

TEST(StateCodec, EncodingIntoAUsedBufferWritesOnlyTheState) {
  CustomerState sparse;
  sparse.id = "c9";
  sparse.Set("email", Str("c9@example.com"));
  std::string buffer(1000, 'x');  // more than any of these states
  EncodeState(RichState(), &buffer);
  EXPECT_EQ(buffer, EncodeState(RichState()));
  EncodeState(sparse, &buffer);  // after a longer state
  EXPECT_EQ(buffer, EncodeState(sparse));
  CustomerState back;
  std::string err;
  ASSERT_TRUE(DecodeState(buffer, &back, &err)) << err;
  ExpectSame(sparse, back);
}

TEST(StateCodec, AnEmptyStateRoundTrips) {
  CustomerState s;
  std::string bytes = EncodeState(s);
  EXPECT_LE(bytes.size(), 10u);
  ExpectSame(s, RoundTrip(s));
}

TEST(StateCodec, OddValuesRoundTrip) {
  CustomerState s;
  s.id = "c1";
  s.orders = -5;
  s.revenue = -0.0;
  s.first_purchase_at = FromUnixMillis(0);
  s.last_purchase_at = FromUnixMillis(-86400000);  // before 1970 is still a time
  s.wake = Ts("9999-12-31T23:59:59.999Z");
  s.Set("nan", Num(std::nan("")));
  s.Set("neg_zero", Num(-0.0));
  s.Set("big", Num(9007199254740993.0));
  s.Set("min", Num(-1e15));
  s.Set("tiny", Num(5e-324));
  FlowMemo m;
  m.flow = "f";
  m.date_fired_key = INT64_MIN;
  m.converted_run = UINT32_MAX;
  m.runs = UINT32_MAX;
  s.memos.push_back(m);
  Journey j;
  j.flow = "f";
  j.step = "s";
  j.run = UINT32_MAX;
  j.trigger_data = PackTriggerData(nullptr);
  j.trigger_type = "x";
  s.journeys.push_back(j);
  CustomerState out = RoundTrip(s);
  ExpectSame(s, out);
  EXPECT_TRUE(std::signbit(out.Find("neg_zero")->number));
  EXPECT_TRUE(std::signbit(out.revenue));
}

TEST(StateCodec, TimesBeyondYear9999AreClampedNotLost) {
  CustomerState s;
  s.id = "c1";
  s.wake = TimePoint::max();
  s.first_purchase_at = TimePoint::min();
  CustomerState out = RoundTrip(s);
  ASSERT_TRUE(out.wake);
  EXPECT_EQ(FormatRfc3339(*out.wake), "9999-12-31T23:59:59.999Z");
  EXPECT_EQ(FormatRfc3339(*out.first_purchase_at), "0001-01-01T00:00:00Z");
}

TEST(StateCodec, InvalidUtf8IsRepairedOnTheWayIn) {
  CustomerState s;
  s.id = "c\xff";
  s.Set("first_name", Str("Zo\xc3"));
  CustomerState out = RoundTrip(s);
  EXPECT_EQ(out.id, "c\xEF\xBF\xBD");
  EXPECT_EQ(out.Find("first_name")->str, "Zo\xEF\xBF\xBD");
}

TEST(StateCodec, TheSampleCustomerIsSmall) {
  // What most customers look like: signed up, in the welcome series, waiting three days.
  CustomerState s;
  s.id = "c1000042";
  s.Set("email", Str("anna.jansen@example.com"));
  s.Set("first_name", Str("Anna"));
  FlowMemo& m = s.Memo("welcome");
  m.runs = 1;
  m.last_entry = Ts("2026-05-17T09:00:00.318Z");
  m.last_send = m.last_entry;
  m.last_send_step = "hello";
  Journey j;
  j.flow = "welcome";
  j.run = 1;
  j.step = "wait_3d";
  j.wait = Journey::Wait::kTimer;
  j.entered_at = m.last_entry;
  j.wake = j.entered_at + 3 * kDay;
  j.trigger_type = "signup";
  j.trigger_event_id = "evt-7f3a9c";
  j.trigger_ts = Ts("2026-05-17T09:00:00.250Z");
  j.trigger_data = PackTriggerData(nlohmann::json::object());
  s.journeys.push_back(j);
  s.recent_event_ids.push_back("evt-7f3a9c");
  s.recent_marketing_sends.push_back(m.last_entry);
  s.history.push_back({m.last_entry, "event", "", "", "signup"});
  s.history.push_back({m.last_entry, "enter", "welcome", "", ""});
  s.history.push_back({m.last_entry, "send", "welcome", "hello", "welcome_hello"});
  s.wake = j.wake;

  CustomerState bare;  // exactly the brief's sample: email + first_name and one journey
  bare.id = s.id;
  bare.profile = s.profile;
  bare.journeys = s.journeys;

  const std::string bytes = EncodeState(s);
  const std::string bare_bytes = EncodeState(bare);
  std::cout << "[ size     ] sample customer (email, first_name, one journey): "
            << bare_bytes.size() << " bytes; with its memo, event id, send and 3 history "
            << "entries: " << bytes.size() << " bytes\n";
  EXPECT_LE(bare_bytes.size(), 100u);  // 67 of them are the texts themselves
  EXPECT_LT(bytes.size(), 150u);
  ExpectSame(s, RoundTrip(s));
  ExpectSame(bare, RoundTrip(bare));
}

TEST(StateCodec, ANewerVersionIsTheExactError) {
  std::string bytes = EncodeState(RichState());
  CustomerState out;
  out.id = "untouched";
  std::string err;
  bytes[0] = 2;
  EXPECT_FALSE(DecodeState(bytes, &out, &err));
  EXPECT_EQ(err, "customer state version 2 is newer than this journeyd (1)");
  bytes[0] = static_cast<char>(255);
  EXPECT_FALSE(DecodeState(bytes, &out, &err));
  EXPECT_EQ(err, "customer state version 255 is newer than this journeyd (1)");
  bytes[0] = 0;
  EXPECT_FALSE(DecodeState(bytes, &out, &err));
  EXPECT_NE(err.find("version 0"), std::string::npos) << err;
  EXPECT_FALSE(DecodeState("", &out, &err));
  EXPECT_EQ(err, "customer state is empty");
  EXPECT_EQ(out.id, "untouched");  // a failed decode leaves the output alone
}

TEST(StateCodec, EveryTruncationIsAnError) {
  const std::string bytes = EncodeState(RichState());
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    CustomerState out;
    std::string err;
    EXPECT_FALSE(DecodeState(std::string_view(bytes).substr(0, cut), &out, &err)) << cut;
    EXPECT_FALSE(err.empty()) << cut;
  }
}

TEST(StateCodec, TrailingBytesAreAnError) {
  std::string bytes = EncodeState(RichState());
  bytes.push_back('\0');
  CustomerState out;
  std::string err;
  EXPECT_FALSE(DecodeState(bytes, &out, &err));
  EXPECT_NE(err.find("trailing bytes"), std::string::npos) << err;
  EXPECT_NE(err.find("corrupt at byte"), std::string::npos) << err;
}

// Any result is fine as long as nothing crashes, throws or reads out of bounds, and what
// decodes can be shown and written again.
void DecodeAnything(std::string_view bytes, size_t* decoded) {
  CustomerState out;
  std::string err;
  if (DecodeState(bytes, &out, &err)) {
    ++*decoded;
    EXPECT_NO_THROW(StateToJson(out).dump());
    CustomerState again;
    EXPECT_TRUE(DecodeState(EncodeState(out), &again, &err)) << err;
  } else {
    EXPECT_FALSE(err.empty());
  }
}

TEST(StateCodec, RandomByteFlipsNeverCrash) {
  const std::string good = EncodeState(RichState());
  std::mt19937 rng(20260517);
  size_t decoded = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string bytes = good;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) {
      size_t pos = 1 + rng() % (bytes.size() - 1);
      if (rng() % 2) {
        bytes[pos] = static_cast<char>(bytes[pos] ^ (1 << (rng() % 8)));
      } else {
        bytes[pos] = static_cast<char>(rng());
      }
    }
    DecodeAnything(bytes, &decoded);
  }
  std::cout << "[ fuzz     ] 20000 corrupted copies, " << decoded << " still decoded\n";
}

TEST(StateCodec, RandomGarbageNeverCrashes) {
  std::mt19937 rng(42);
  size_t decoded = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string bytes(rng() % 64, '\0');
    for (char& c : bytes) c = static_cast<char>(rng() % 4 ? rng() % 8 : rng());
    if (!bytes.empty()) bytes[0] = 1;
    DecodeAnything(bytes, &decoded);
  }
}

// Hand-made hostile encodings: huge lengths and counts, deep MessagePack, bad order.
std::string Bytes(std::initializer_list<int> bytes) {
  std::string out;
  for (int b : bytes) out += static_cast<char>(b);
  return out;
}

std::string Header() {
  // version 1, id "c", flags 0, orders 0, profile count 0
  return Bytes({1, 1, 'c', 0, 0, 0});
}

TEST(StateCodec, HugeLengthsAndCountsAreErrors) {
  CustomerState out;
  std::string err;
  // id length 2^63: out of range, not an allocation.
  std::string bytes = Bytes({1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f});
  EXPECT_FALSE(DecodeState(bytes, &out, &err));
  EXPECT_NE(err.find("string length out of range"), std::string::npos) << err;
  // A varint longer than 64 bits.
  bytes = Bytes({1}) + std::string(11, '\xff') + '\x01';
  EXPECT_FALSE(DecodeState(bytes, &out, &err));
  EXPECT_NE(err.find("varint too long"), std::string::npos) << err;
  // Profile count of a billion.
  bytes = Bytes({1, 1, 'c', 0, 0, 0x80, 0x94, 0xeb, 0xdc, 0x03});
  EXPECT_FALSE(DecodeState(bytes, &out, &err));
  EXPECT_NE(err.find("item count out of range"), std::string::npos) << err;
  // Unknown flag bits.
  bytes = Bytes({1, 1, 'c', 0x80, 0, 0, 0, 0, 0, 0, 0});
  EXPECT_FALSE(DecodeState(bytes, &out, &err));
  EXPECT_NE(err.find("unknown state flags"), std::string::npos) << err;
}

TEST(StateCodec, ProfileOutOfOrderIsAnError) {
  // Two literal names, "b" then "a".
  std::string bytes = Header();
  bytes.pop_back();  // the profile count, given here
  bytes += Bytes({2, 0, 1, 'b', 0, 0, 1, 'a', 0});
  bytes += Bytes({0, 0, 0, 0, 0});  // memos, journeys, history, ids, sends
  CustomerState out;
  std::string err;
  EXPECT_FALSE(DecodeState(bytes, &out, &err));
  EXPECT_NE(err.find("profile attributes out of order"), std::string::npos) << err;
}

std::string WithTriggerData(const std::string& packed) {
  std::string bytes = Header();
  bytes += '\x00';                      // no memos
  bytes += '\x01';                      // one journey
  bytes += Bytes({3, 'f', 1, 3, 's'});  // flow "f", run 1, step "s": literal texts
  bytes += '\x40';                      // flags: trigger data only
  bytes += '\x00';                      // entered_at = epoch
  uint64_t n = packed.size();
  while (n >= 0x80) {
    bytes += static_cast<char>(n | 0x80);
    n >>= 7;
  }
  bytes += static_cast<char>(n);
  bytes += packed;
  bytes += Bytes({0, 0, 0});  // history, ids, sends
  return bytes;
}

// Trigger data is packed by the engine's own writer: every JSON value and every size form of
// numbers, strings, arrays and maps reads back as it was; what a state cannot keep is dropped.
TEST(StateCodec, PackedTriggerDataReadsBackAsItWas) {
  nlohmann::json data = {{"n", nullptr},     {"t", true},    {"f", false},     {"total", 49.5},
                         {"third", 1.0 / 3}, {"neg", -2.25}, {"sku", "東京-1"}};
  const std::vector<int64_t> ints = {
      0,   127, 128,  255,  256,    65535,  65536,         4294967295LL,  4294967296LL, -1,
      -32, -33, -128, -129, -32768, -32769, -2147483648LL, -2147483649LL, INT64_MIN,    INT64_MAX};
  nlohmann::json list = nlohmann::json::array();
  for (int64_t i : ints) list.push_back(i);
  data["ints"] = list;
  data["max"] = UINT64_MAX;
  data["s31"] = std::string(31, 'a');
  data["s32"] = std::string(32, 'b');
  data["s256"] = std::string(256, 'c');
  data["s65536"] = std::string(65536, 'd');
  nlohmann::json many = nlohmann::json::object();
  for (int i = 0; i < 70000; ++i)
    many["k" + std::to_string(i)] = i % 3 ? nlohmann::json(i) : nlohmann::json::array();
  data["many"] = many;
  data["long"] = nlohmann::json(std::vector<int>(16, 7));
  data["empty"] = nlohmann::json::object();
  data["none"] = nlohmann::json::array();
  const std::string packed = PackTriggerData(data);
  ASSERT_FALSE(packed.empty());
  EXPECT_EQ(UnpackTriggerData(packed), data);

  EXPECT_EQ(PackTriggerData(nlohmann::json::array()), "") << "not an object";
  EXPECT_EQ(PackTriggerData(nlohmann::json{{"bad", "\xff"}}), "") << "invalid UTF-8";
  nlohmann::json deep = 1;
  for (int i = 0; i < 63; ++i) deep = nlohmann::json::array({deep});
  EXPECT_NE(PackTriggerData(nlohmann::json{{"d", deep}}), "") << "64 deep with the object";
  EXPECT_EQ(PackTriggerData(nlohmann::json{{"d", nlohmann::json::array({deep})}}), "") << "65 deep";
}

TEST(StateCodec, TriggerDataIsCheckedBeforeMessagePackParsing) {
  CustomerState out;
  std::string err;
  // Sanity: a well-formed map decodes.
  ASSERT_TRUE(DecodeState(WithTriggerData(Bytes({0x81, 0xa1, 'a', 1})), &out, &err)) << err;
  EXPECT_EQ(UnpackTriggerData(out.journeys.at(0).trigger_data), nlohmann::json({{"a", 1}}));
  // 200000 nested one-element arrays would overflow a recursive parser's stack.
  std::string bomb = Bytes({0x81, 0xa1, 'a'}) + std::string(200000, '\x91') + '\xc0';
  EXPECT_FALSE(DecodeState(WithTriggerData(bomb), &out, &err));
  EXPECT_NE(err.find("trigger data"), std::string::npos) << err;
  // Not an object, bin, invalid UTF-8, a non-text key, truncated, trailing, 0xc1: refused.
  for (const std::string& bad : {
           Bytes({0x92, 1, 2}),
           Bytes({0xc4, 1, 'x'}),
           Bytes({0x81, 0xa1, 0xff, 1}),
           Bytes({0x81, 0x01, 0x01}),
           Bytes({0x81, 0xa1, 'a', 0x91, 0x81, 0xc3, 0x01}),  // a non-text key further in
           Bytes({0x82, 0xa1, 'a', 1}),
           Bytes({0x81, 0xa1, 'a', 1, 1}),
           Bytes({0xc1}),
       }) {
    EXPECT_FALSE(DecodeState(WithTriggerData(bad), &out, &err));
    EXPECT_NE(err.find("trigger data"), std::string::npos) << err;
  }
}

// ---- JSON view -------------------------------------------------------------------------

TEST(StateJson, ShowsEverythingAnOperatorNeeds) {
  nlohmann::json j = StateToJson(RichState());
  EXPECT_EQ(j["customer_id"], "customer-Zoë-42");
  EXPECT_EQ(j["profile"]["email"], "zoe@example.com");
  EXPECT_EQ(j["profile"]["points"].dump(), "1200");
  EXPECT_EQ(j["profile"]["score"], 2.75);
  EXPECT_EQ(j["profile"]["email_opt_in"], true);
  EXPECT_TRUE(j["profile"]["legacy_id"].is_null());
  EXPECT_EQ(j["orders"], 3);
  EXPECT_EQ(j["revenue"], 149.85);
  EXPECT_EQ(j["first_purchase_at"], "2025-11-02T10:15:00.123Z");
  EXPECT_EQ(j["last_purchase_at"], "2026-05-10T18:00:00Z");
  EXPECT_EQ(j["unsubscribed"], true);
  EXPECT_EQ(j["bouncing"], true);
  EXPECT_EQ(j["next_wake"], "2026-05-04T09:00:00Z");
  ASSERT_EQ(j["journeys"].size(), 3u);
  EXPECT_EQ(j["journeys"][0]["flow"], "welcome");
  EXPECT_EQ(j["journeys"][0]["run"], 2);
  EXPECT_EQ(j["journeys"][0]["step"], "wait_3d");
  EXPECT_EQ(j["journeys"][0]["waiting"], "timer");
  EXPECT_EQ(j["journeys"][0]["wake_at"], "2026-05-04T09:00:00Z");
  EXPECT_EQ(j["journeys"][0]["entered_at"], "2026-05-01T09:00:00Z");
  EXPECT_EQ(j["journeys"][0]["trigger"], "signup");
  EXPECT_EQ(j["journeys"][1]["waiting"], "event");
  EXPECT_EQ(j["journeys"][2]["waiting"], "none");
  EXPECT_FALSE(j["journeys"][2].contains("wake_at"));
  EXPECT_FALSE(j["journeys"][2].contains("trigger"));
  ASSERT_EQ(j["flows"].size(), 2u);
  EXPECT_EQ(j["flows"][0]["flow"], "welcome");
  EXPECT_EQ(j["flows"][0]["last_send_step"], "tips");
  EXPECT_EQ(j["flows"][0]["date_trigger_next"], "2027-04-02T07:00:00Z");
  ASSERT_EQ(j["history"].size(), 20u);
  EXPECT_EQ(j["history"][0]["kind"], "event");
  EXPECT_EQ(j["history"][0]["at"], "2026-05-01T09:00:00Z");

  CustomerState empty;
  nlohmann::json e = StateToJson(empty);
  EXPECT_TRUE(e["next_wake"].is_null());
  EXPECT_TRUE(e["first_purchase_at"].is_null());
  EXPECT_TRUE(e["profile"].is_object());
  EXPECT_TRUE(e["journeys"].is_array());
}

}  // namespace
}  // namespace journeyd::engine
