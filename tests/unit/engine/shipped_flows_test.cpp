// The six shipped flows, driven through each of their branches with events and time.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "journeyd/engine/render.h"
#include "test_support.h"

namespace journeyd::engine::testing {
namespace {

std::vector<std::string> Steps(const std::vector<Sent>& sends) {
  std::vector<std::string> out;
  for (const auto& s : sends) out.push_back(s.step);
  return out;
}

std::string Purchase(const std::string& customer, const std::string& ts, double total,
                     const std::string& extra = "") {
  return fmt::format(R"({{"type":"purchase","customer_id":"{}","ts":"{}","event_id":"o-{}-{}",)"
                     R"("data":{{"order_id":"o-{}","total":{},"currency":"EUR"}}{}}})",
                     customer, ts, customer, ts, ts, total, extra);
}

// ---- winback -------------------------------------------------------------------------

class Winback : public ::testing::Test {
 protected:
  const TimePoint t0 = T("2026-01-10T12:00:00Z");
  std::vector<Event> FirstPurchase() {
    return {Ev(Purchase("c1", "2026-01-10T12:00:00Z", 42.5, "," + kOptedIn))};
  }
};

TEST_F(Winback, FiveMailsOnDays180To268) {
  auto r = RunFlows(FirstPurchase());
  auto sends = SendsOf(r, "c1", "winback");
  ASSERT_EQ(Steps(sends), (std::vector<std::string>{"mail1", "mail2", "mail3", "mail4", "mail5"}));
  const int days[] = {180, 210, 224, 254, 268};
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(sends[i].at, t0 + days[i] * kDay) << sends[i].step;
  auto exits = RecordsOf(r, "c1", Record::Kind::kExit, "winback");
  ASSERT_EQ(exits.size(), 1u);
  EXPECT_EQ(exits[0].reason, "completed");
}

TEST_F(Winback, PurchaseOnDay100StopsBeforeTheFirstMail) {
  auto events = FirstPurchase();
  events.push_back(Ev(Purchase("c1", FormatRfc3339(t0 + 100 * kDay), 20)));
  auto r = RunFlows(events);
  EXPECT_TRUE(SendsOf(r, "c1", "winback").empty());
  auto exits = RecordsOf(r, "c1", Record::Kind::kExit, "winback");
  ASSERT_EQ(exits.size(), 1u);
  EXPECT_EQ(exits[0].reason, "exit_on:purchase");
  EXPECT_EQ(exits[0].at, t0 + 100 * kDay);
}

TEST_F(Winback, PurchaseOnDay195GetsMailOneOnly) {
  auto events = FirstPurchase();
  events.push_back(Ev(Purchase("c1", FormatRfc3339(t0 + 195 * kDay), 20)));
  auto r = RunFlows(events);
  EXPECT_EQ(Steps(SendsOf(r, "c1", "winback")), (std::vector<std::string>{"mail1"}));
  // The purchase came within 30 days of mail 1: a conversion.
  auto conv = RecordsOf(r, "c1", Record::Kind::kConvert, "winback");
  ASSERT_EQ(conv.size(), 1u);
  EXPECT_EQ(conv[0].step, "mail1");
}

TEST_F(Winback, SecondPurchaseNeverStartsIt) {
  // A customer whose first purchase predates journeyd (imported orders: 3) buys again.
  auto r = RunFlows(
      {Ev(Purchase("c2", "2026-01-10T12:00:00Z", 10,
                   R"(,"profile":{"email":"b@example.com","email_opt_in":true,"orders":3})"))});
  EXPECT_TRUE(RecordsOf(r, "c2", Record::Kind::kEnter, "winback").empty());
}

TEST_F(Winback, DiscountMailsCarryTheirCodes) {
  auto r = RunFlows(FirstPurchase());
  bool saw10 = false, saw20 = false;
  for (const auto& s : r.sends) {
    if (s.step == "mail2") saw10 = s.text.find("COMEBACK10") != std::string::npos;
    if (s.step == "mail4") saw20 = s.text.find("COMEBACK20") != std::string::npos;
  }
  EXPECT_TRUE(saw10);
  EXPECT_TRUE(saw20);
}

// ---- abandoned cart -------------------------------------------------------------------

std::string Cart(const std::string& customer, const std::string& ts, double total) {
  return fmt::format(R"({{"type":"cart_updated","customer_id":"{}","ts":"{}","data":{{"total":{},)"
                     R"("currency":"EUR","items":[{{"sku":"mug","qty":2}}]}},{}}})",
                     customer, ts, total, kOptedIn);
}

TEST(AbandonedCart, Total80GetsTwoRemindersTheSecondWithADiscount) {
  const TimePoint t0 = T("2026-02-02T10:00:00Z");
  auto r = RunFlows({Ev(Cart("c1", "2026-02-02T10:00:00Z", 80))});
  auto sends = SendsOf(r, "c1", "abandoned_cart");
  ASSERT_EQ(Steps(sends), (std::vector<std::string>{"reminder1", "reminder2_discount"}));
  EXPECT_EQ(sends[0].at, t0 + kHour);
  EXPECT_EQ(sends[1].at, t0 + 24 * kHour);
}

TEST(AbandonedCart, Total30GetsTheSecondReminderWithoutACode) {
  auto r = RunFlows({Ev(Cart("c1", "2026-02-02T10:00:00Z", 30))});
  EXPECT_EQ(Steps(SendsOf(r, "c1", "abandoned_cart")),
            (std::vector<std::string>{"reminder1", "reminder2"}));
  for (const auto& s : r.sends) EXPECT_EQ(s.text.find("CART10"), std::string::npos);
}

TEST(AbandonedCart, PurchaseAfter30MinutesSendsNothing) {
  auto r = RunFlows(
      {Ev(Cart("c1", "2026-02-02T10:00:00Z", 80)), Ev(Purchase("c1", "2026-02-02T10:30:00Z", 80))});
  EXPECT_TRUE(SendsOf(r, "c1", "abandoned_cart").empty());
  auto exits = RecordsOf(r, "c1", Record::Kind::kExit, "abandoned_cart");
  ASSERT_EQ(exits.size(), 1u);
  EXPECT_EQ(exits[0].reason, "exit_on:purchase");
}

TEST(AbandonedCart, ClearedCartStopsIt) {
  auto r =
      RunFlows({Ev(Cart("c1", "2026-02-02T10:00:00Z", 80)),
                Ev(R"({"type":"cart_cleared","customer_id":"c1","ts":"2026-02-02T10:20:00Z"})")});
  EXPECT_TRUE(SendsOf(r, "c1", "abandoned_cart").empty());
}

TEST(AbandonedCart, UpdatedAgainRestartsTheClock) {
  const TimePoint t1 = T("2026-02-02T10:40:00Z");
  auto r = RunFlows(
      {Ev(Cart("c1", "2026-02-02T10:00:00Z", 80)), Ev(Cart("c1", "2026-02-02T10:40:00Z", 30))});
  auto sends = SendsOf(r, "c1", "abandoned_cart");
  ASSERT_EQ(Steps(sends), (std::vector<std::string>{"reminder1", "reminder2"}));
  EXPECT_EQ(sends[0].at, t1 + kHour);
  EXPECT_EQ(sends[1].at, t1 + 24 * kHour);
  auto exits = RecordsOf(r, "c1", Record::Kind::kExit, "abandoned_cart");
  ASSERT_EQ(exits.size(), 2u);
  EXPECT_EQ(exits[0].reason, "restarted");
  EXPECT_EQ(exits[1].reason, "completed");
}

// ---- welcome --------------------------------------------------------------------------

TEST(Welcome, ThreeMailsAtDays0And3And7) {
  const TimePoint t0 = T("2026-03-01T08:00:00Z");
  auto r = RunFlows(
      {Ev(R"({"type":"signup","customer_id":"c1","ts":"2026-03-01T08:00:00Z",)" + kOptedIn + "}")});
  auto sends = SendsOf(r, "c1", "welcome");
  ASSERT_EQ(Steps(sends), (std::vector<std::string>{"thanks", "tips", "loyalty_intro"}));
  EXPECT_EQ(sends[0].at, t0);
  EXPECT_EQ(sends[1].at, t0 + 3 * kDay);
  EXPECT_EQ(sends[2].at, t0 + 7 * kDay);
  EXPECT_NE(sends[0].subject.find("Anna"), std::string::npos) << sends[0].subject;
}

TEST(Welcome, UnsubscribeHaltsIt) {
  auto r = RunFlows(
      {Ev(R"({"type":"signup","customer_id":"c1","ts":"2026-03-01T08:00:00Z",)" + kOptedIn + "}"),
       Ev(R"({"type":"unsubscribe","customer_id":"c1","ts":"2026-03-02T08:00:00Z"})")});
  EXPECT_EQ(Steps(SendsOf(r, "c1", "welcome")), (std::vector<std::string>{"thanks"}));
  auto exits = RecordsOf(r, "c1", Record::Kind::kExit, "welcome");
  ASSERT_EQ(exits.size(), 1u);
  EXPECT_EQ(exits[0].reason, "exit_on:unsubscribe");
}

TEST(Welcome, WithoutOptInEveryMailIsSuppressed) {
  auto r = RunFlows({Ev(R"({"type":"signup","customer_id":"c1","ts":"2026-03-01T08:00:00Z",)"
                        R"("profile":{"email":"x@example.com"}})")});
  EXPECT_TRUE(SendsOf(r, "c1").empty());
  auto sup = RecordsOf(r, "c1", Record::Kind::kSuppress, "welcome");
  ASSERT_EQ(sup.size(), 3u);
  for (const auto& s : sup) EXPECT_EQ(s.reason, "no_opt_in");
}

// ---- birthday -------------------------------------------------------------------------

std::string NewYorker(const std::string& ts) {
  return R"({"type":"signup","customer_id":"c1","ts":")" + ts +
         R"(","profile":{"email":"carla@example.com","first_name":"Carla","email_opt_in":true,)"
         R"("birthday":"1990-03-14","timezone":"America/New_York"}})";
}

TEST(Birthday, GiftAt9InNewYorkAndAReminderFiveDaysLater) {
  auto r = RunFlows({Ev(NewYorker("2026-01-05T15:00:00Z"))}, SystemPolicy(), 500 * kDay);
  auto sends = SendsOf(r, "c1", "birthday");
  ASSERT_GE(sends.size(), 4u);
  // 2026-03-14 09:00 EDT (daylight saving began 8 March) = 13:00 UTC.
  EXPECT_EQ(sends[0].step, "gift");
  EXPECT_EQ(sends[0].at, T("2026-03-14T13:00:00Z"));
  EXPECT_EQ(sends[1].step, "reminder");
  EXPECT_EQ(sends[1].at, T("2026-03-19T13:00:00Z"));
  // And again the next year.
  EXPECT_EQ(sends[2].step, "gift");
  EXPECT_EQ(sends[2].at, T("2027-03-14T13:00:00Z"));
}

TEST(Birthday, APurchaseAfterTheGiftMeansNoReminder) {
  auto r = RunFlows(
      {Ev(NewYorker("2026-01-05T15:00:00Z")), Ev(Purchase("c1", "2026-03-16T18:00:00Z", 55))}, {},
      200 * kDay);
  EXPECT_EQ(Steps(SendsOf(r, "c1", "birthday")), (std::vector<std::string>{"gift"}));
}

TEST(Birthday, ChangedBirthdayIsRescheduled) {
  auto r =
      RunFlows({Ev(NewYorker("2026-01-05T15:00:00Z")),
                Ev(R"({"type":"profile_updated","customer_id":"c1","ts":"2026-02-01T00:00:00Z",)"
                   R"("profile":{"birthday":"1991-02-20"}})")},
               SystemPolicy(), 30 * kDay);
  auto sends = SendsOf(r, "c1", "birthday");
  ASSERT_FALSE(sends.empty());
  EXPECT_EQ(sends[0].at, T("2026-02-20T14:00:00Z"));  // 09:00 EST
}

// ---- points expiry --------------------------------------------------------------------

std::string Points(const std::string& ts) {
  return R"({"type":"points_earned","customer_id":"c1","ts":")" + ts +
         R"(","profile":{"email":"dirk@example.com","first_name":"Dirk","email_opt_in":true,)"
         R"("timezone":"Europe/Amsterdam","points":350,"points_expire_at":"2026-09-30"}})";
}

TEST(PointsExpiry, WarningAt14DaysAndALastOneAt3Days) {
  auto r = RunFlows({Ev(Points("2026-06-01T10:00:00Z"))});
  auto sends = SendsOf(r, "c1", "points_expiry");
  ASSERT_EQ(Steps(sends), (std::vector<std::string>{"warning", "last_warning"}));
  EXPECT_EQ(sends[0].at, T("2026-09-16T08:00:00Z"));  // 10:00 CEST
  EXPECT_EQ(sends[1].at, T("2026-09-27T08:00:00Z"));
}

TEST(PointsExpiry, RedeemingStopsIt) {
  auto r =
      RunFlows({Ev(Points("2026-06-01T10:00:00Z")),
                Ev(R"({"type":"points_redeemed","customer_id":"c1","ts":"2026-09-20T10:00:00Z",)"
                   R"("profile":{"points":0}})")});
  EXPECT_EQ(Steps(SendsOf(r, "c1", "points_expiry")), (std::vector<std::string>{"warning"}));
}

TEST(PointsExpiry, NoPointsNoMail) {
  auto r = RunFlows({Ev(R"({"type":"points_earned","customer_id":"c1","ts":"2026-06-01T10:00:00Z",)"
                        R"("profile":{"email":"d@example.com","email_opt_in":true,"points":0,)"
                        R"("points_expire_at":"2026-09-30"}})")});
  EXPECT_TRUE(SendsOf(r, "c1", "points_expiry").empty());
}

// ---- review request --------------------------------------------------------------------

std::string TeaOrder(const std::string& locale) {
  return R"({"type":"purchase","customer_id":"c1","ts":"2026-04-01T14:00:00Z","event_id":"o1",)"
         R"("data":{"order_id":"o1","total":80,"items":[{"sku":"T1","name":"Cast-iron teapot"},)"
         R"({"sku":"T2","name":"Oak <tray>"},{"sku":"T3"}]},)"
         R"("profile":{"email":"sanne@example.com","first_name":"Sanne","email_opt_in":true,)"
         R"("locale":")" +
         locale + R"("}})";
}

TEST(ReviewRequest, AsksAboutTheBoughtItemsByNameInTheCustomersLanguage) {
  for (const std::string locale : {"en", "nl"}) {
    auto r = RunFlows({Ev(TeaOrder(locale))}, SystemPolicy(), 30 * kDay);
    const SendJob* request = nullptr;
    for (const auto& s : r.sends) {
      if (s.flow == "review_request" && s.step == "request") request = &s;
    }
    ASSERT_NE(request, nullptr) << locale;
    EXPECT_EQ(request->at, T("2026-04-08T14:00:00Z"));
    const std::string said = locale == "nl" ? "Je bestelde onlangs Cast-iron teapot, Oak <tray>."
                                            : "You recently ordered Cast-iron teapot, Oak <tray>.";
    EXPECT_NE(request->text.find(said), std::string::npos) << request->text;
    EXPECT_NE(request->html.find("Cast-iron teapot, Oak &lt;tray&gt;."), std::string::npos)
        << request->html;
    // The daemon renders the job later from the values it kept: the same mail.
    SendJob later = *request;
    later.subject = later.text = later.html = "";
    std::string err;
    ASSERT_TRUE(RenderSendJob(ShippedFlows()->templates(), later, &err)) << err;
    EXPECT_EQ(later.text, request->text);
    EXPECT_EQ(later.html, request->html);
  }
}

TEST(ReviewRequest, WithoutItemNamesTheMailStillReads) {
  auto r = RunFlows(
      {Ev(R"({"type":"purchase","customer_id":"c1","ts":"2026-04-01T14:00:00Z","data":{"total":9},)" +
          kOptedIn + "}")},
      SystemPolicy(), 30 * kDay);
  auto sends = SendsOf(r, "c1", "review_request");
  ASSERT_EQ(Steps(sends), (std::vector<std::string>{"request", "reminder"}));
  for (const auto& s : r.sends) {
    if (s.step == "request") {
      EXPECT_NE(s.text.find("You recently ordered from us."), std::string::npos) << s.text;
    }
  }
}

TEST(ReviewRequest, AReviewIsThankedWithTheCodeAndEndsTheRequests) {
  auto r = RunFlows(
      {Ev(TeaOrder("en")),
       Ev(R"({"type":"order_delivered","customer_id":"c1","ts":"2026-04-03T09:00:00Z"})"),
       Ev(R"({"type":"review_submitted","customer_id":"c1","ts":"2026-04-07T09:00:00Z"})")},
      SystemPolicy(), 60 * kDay);
  auto sends = SendsOf(r, "c1", "review_request");
  ASSERT_EQ(Steps(sends), (std::vector<std::string>{"request", "thanks"}));
  EXPECT_EQ(sends[0].at, T("2026-04-06T09:00:00Z"));  // 3 days after the delivery
  for (const auto& s : r.sends) {
    if (s.step == "thanks") {
      EXPECT_NE(s.text.find("REVIEW10"), std::string::npos) << s.text;
    }
  }
  auto conv = RecordsOf(r, "c1", Record::Kind::kConvert, "review_request");
  EXPECT_EQ(conv.size(), 1u);
}

// ---- policy ---------------------------------------------------------------------------

TEST(Policy, FrequencyCapDefersTheSecondMailOfTheDay) {
  Policy p = SystemPolicy();
  p.cap_count = 1;
  p.cap_window = 24 * kHour;
  // Signup at 08:00 (thank-you at once), cart abandoned at 09:00 (reminder due 10:00).
  auto r = RunFlows(
      {Ev(R"({"type":"signup","customer_id":"c1","ts":"2026-03-01T08:00:00Z",)" + kOptedIn + "}"),
       Ev(Cart("c1", "2026-03-01T09:00:00Z", 30))},
      p, 3 * kDay);
  auto cart = SendsOf(r, "c1", "abandoned_cart");
  ASSERT_FALSE(cart.empty());
  EXPECT_EQ(cart[0].step, "reminder1");
  EXPECT_EQ(cart[0].at, T("2026-03-02T08:00:00Z"));  // deferred, not dropped
}

TEST(Policy, QuietHoursDeferToTheirEnd) {
  Policy p = SystemPolicy();
  p.quiet_start = 21 * 60;
  p.quiet_end = 8 * 60;
  p.timezone = "Europe/Amsterdam";
  auto r = RunFlows({Ev(Cart("c1", "2026-03-01T21:30:00Z", 30))}, p, 3 * kDay);
  auto cart = SendsOf(r, "c1", "abandoned_cart");
  ASSERT_FALSE(cart.empty());
  // Due 22:30 UTC = 23:30 CET: inside quiet hours until 08:00 CET = 07:00 UTC.
  EXPECT_EQ(cart[0].at, T("2026-03-02T07:00:00Z"));
}

TEST(Policy, DuplicateEventIdIsAppliedOnce) {
  auto e = Ev(Purchase("c1", "2026-01-10T12:00:00Z", 10, "," + kOptedIn));
  auto r = RunFlows({e, e});
  EXPECT_EQ(r.customers["c1"].orders, 1);
  EXPECT_DOUBLE_EQ(r.customers["c1"].revenue, 10);
}

TEST(Policy, HeaderInjectionInTheProfileNeverReachesTheSubject) {
  auto r =
      RunFlows({Ev(R"({"type":"signup","customer_id":"c1","ts":"2026-03-01T08:00:00Z",)"
                   R"("profile":{"email":"a@example.com","first_name":"Eve\r\nBcc: x@evil.test",)"
                   R"("email_opt_in":true}})")},
               {}, kDay);
  auto sends = SendsOf(r, "c1", "welcome");
  ASSERT_FALSE(sends.empty());
  EXPECT_EQ(sends[0].subject.find_first_of("\r\n"), std::string::npos) << sends[0].subject;
}

}  // namespace
}  // namespace journeyd::engine::testing
