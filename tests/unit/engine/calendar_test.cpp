#include "journeyd/engine/calendar.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "journeyd/common/time.h"
#include "journeyd/host/time_zones.h"

namespace journeyd::engine {
namespace {

// The system's tz database, as the daemon uses it.
std::optional<Zone> Load(std::string_view name) { return host::SystemTimeZones().Find(name); }

TimePoint Ts(const std::string& rfc3339) {
  auto t = ParseTimestamp(rfc3339);
  if (!t) ADD_FAILURE() << "bad time in test: " << rfc3339;
  return t.value_or(TimePoint{});
}

Zone MustLoad(const std::string& name) {
  auto z = Load(name);
  if (!z) {
    ADD_FAILURE() << "zone not loaded: " << name;
    return Zone::Utc();
  }
  return *z;
}

// Compares instants through their RFC 3339 spelling so that failures are readable.
#define EXPECT_INSTANT(actual, expected_rfc3339) \
  EXPECT_EQ(FormatRfc3339(actual), FormatRfc3339(Ts(expected_rfc3339)))

#define EXPECT_DATE(actual, y, m, d)  \
  do {                                \
    const CivilDate date_ = (actual); \
    EXPECT_EQ(date_.year, (y));       \
    EXPECT_EQ(date_.month, (m));      \
    EXPECT_EQ(date_.day, (d));        \
  } while (0)

// ---- Zones -------------------------------------------------------------------------------

TEST(CalendarZone, LoadsIanaZonesAndCachesThem) {
  auto ams = Load("Europe/Amsterdam");
  ASSERT_TRUE(ams.has_value());
  EXPECT_EQ(ams->name(), "Europe/Amsterdam");
  auto again = Load("Europe/Amsterdam");
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(&ams->name(), &again->name());  // the same cached zone

  auto utc = Load("UTC");
  ASSERT_TRUE(utc.has_value());
  EXPECT_EQ(utc->name(), "UTC");
  EXPECT_EQ(Zone::Utc().name(), "UTC");
  EXPECT_EQ(&Zone::Utc().name(), &Zone::Utc().name());
  EXPECT_INSTANT(Zone::Utc().At({2026, 5, 17}, 9 * 60), "2026-05-17T09:00:00Z");
}

TEST(CalendarZone, RefusesUnknownAndHostileNames) {
  const std::vector<std::string> names = {"",
                                          "Mars/Olympus",
                                          "../../etc/passwd",
                                          "Europe/../../../etc/passwd",
                                          "/etc/passwd",
                                          "/usr/share/zoneinfo/Europe/Amsterdam",
                                          "file:/etc/passwd",
                                          "Europe/Amsterdam\n",
                                          std::string("Europe/Amsterdam\0x", 18),
                                          "Europe\tAmsterdam",
                                          "europe/amsterdam ",
                                          "Europe",
                                          "zone.tab",
                                          "EST5EDT,M3.2.0,M11.1.0",
                                          std::string(65, 'A'),
                                          "America/" + std::string(60, 'x')};
  for (const std::string& name : names) {
    EXPECT_FALSE(Load(name).has_value()) << "accepted: " << name;
  }
  // Refusals are not remembered as successes.
  EXPECT_FALSE(Load("Mars/Olympus").has_value());
  EXPECT_TRUE(Load("America/New_York").has_value());
}

TEST(CalendarZone, ConcurrentLoadsShareOneZone) {
  std::vector<const std::string*> seen(8, nullptr);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < seen.size(); ++i) {
    threads.emplace_back([&seen, i] {
      for (int k = 0; k < 50; ++k) {
        auto z = Load("Asia/Tokyo");
        if (z) seen[i] = &z->name();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const std::string* p : seen) {
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p, seen[0]);
  }
}

TEST(CalendarZone, LocalDateMinuteAndWeekday) {
  const Zone ams = MustLoad("Europe/Amsterdam");
  // Friday 22:30 UTC is Saturday 00:30 in Amsterdam (CEST).
  const TimePoint t = Ts("2026-06-12T22:30:00Z");
  EXPECT_DATE(ams.DateOf(t), 2026, 6, 13);
  EXPECT_EQ(ams.MinuteOfDay(t), 30);
  EXPECT_EQ(ams.Weekday(t), 5);
  EXPECT_EQ(Zone::Utc().Weekday(t), 4);
  EXPECT_EQ(Zone::Utc().MinuteOfDay(t), 22 * 60 + 30);
  // Either side of the spring-forward jump.
  EXPECT_EQ(ams.MinuteOfDay(Ts("2026-03-29T00:59:59Z")), 1 * 60 + 59);
  EXPECT_EQ(ams.MinuteOfDay(Ts("2026-03-29T01:00:00Z")), 3 * 60);
  // Sub-second instants before the epoch round towards the past.
  const TimePoint before_epoch = Ts("1969-12-31T23:59:59.500Z");
  EXPECT_DATE(Zone::Utc().DateOf(before_epoch), 1969, 12, 31);
  EXPECT_EQ(Zone::Utc().MinuteOfDay(before_epoch), 1439);
  EXPECT_EQ(Zone::Utc().Weekday(before_epoch), 2);  // a Wednesday
}

// ---- At: DST gaps and folds ------------------------------------------------------------

TEST(CalendarAt, OrdinaryLocalTime) {
  EXPECT_INSTANT(MustLoad("Europe/Amsterdam").At({2026, 5, 17}, 9 * 60), "2026-05-17T07:00:00Z");
  EXPECT_INSTANT(MustLoad("Europe/Amsterdam").At({2026, 1, 17}, 9 * 60), "2026-01-17T08:00:00Z");
  EXPECT_INSTANT(MustLoad("America/New_York").At({2026, 5, 17}, 9 * 60), "2026-05-17T13:00:00Z");
}

TEST(CalendarAt, GapGivesTheInstantAfterTheGap) {
  const Zone ams = MustLoad("Europe/Amsterdam");
  // 2026-03-29 02:00 CET → 03:00 CEST; 02:30 does not exist.
  EXPECT_INSTANT(ams.At({2026, 3, 29}, 2 * 60 + 30), "2026-03-29T03:00:00+02:00");
  EXPECT_INSTANT(ams.At({2026, 3, 29}, 2 * 60), "2026-03-29T01:00:00Z");
  EXPECT_INSTANT(ams.At({2026, 3, 29}, 1 * 60 + 59), "2026-03-29T01:59:00+01:00");
  EXPECT_INSTANT(ams.At({2026, 3, 29}, 3 * 60), "2026-03-29T03:00:00+02:00");

  const Zone nyc = MustLoad("America/New_York");
  // 2026-03-08 02:00 EST → 03:00 EDT.
  EXPECT_INSTANT(nyc.At({2026, 3, 8}, 2 * 60 + 30), "2026-03-08T03:00:00-04:00");
  EXPECT_INSTANT(nyc.At({2026, 3, 8}, 2 * 60 + 30), "2026-03-08T07:00:00Z");
}

TEST(CalendarAt, FoldGivesTheFirstOccurrence) {
  const Zone ams = MustLoad("Europe/Amsterdam");
  // 2026-10-25 03:00 CEST → 02:00 CET; 02:30 happens twice.
  EXPECT_INSTANT(ams.At({2026, 10, 25}, 2 * 60 + 30), "2026-10-25T02:30:00+02:00");
  EXPECT_INSTANT(ams.At({2026, 10, 25}, 2 * 60 + 30), "2026-10-25T00:30:00Z");
  EXPECT_INSTANT(ams.At({2026, 10, 25}, 3 * 60), "2026-10-25T03:00:00+01:00");

  const Zone nyc = MustLoad("America/New_York");
  // 2026-11-01 02:00 EDT → 01:00 EST; 01:30 happens twice.
  EXPECT_INSTANT(nyc.At({2026, 11, 1}, 1 * 60 + 30), "2026-11-01T01:30:00-04:00");
  EXPECT_INSTANT(nyc.At({2026, 11, 1}, 1 * 60 + 30), "2026-11-01T05:30:00Z");
}

TEST(CalendarAt, MidnightInsideAGap) {
  // Havana and Santiago spring forward at midnight: the day starts at 01:00.
  EXPECT_INSTANT(MustLoad("America/Havana").At({2026, 3, 8}, 0), "2026-03-08T01:00:00-04:00");
  EXPECT_INSTANT(MustLoad("America/Santiago").At({2026, 9, 6}, 0), "2026-09-06T04:00:00Z");
}

// ---- NextYearly ------------------------------------------------------------------------

TEST(CalendarNextYearly, BirthdayAtNineInNewYork) {
  const Zone nyc = MustLoad("America/New_York");
  EXPECT_INSTANT(NextYearly(5, 17, 9 * 60, nyc, Ts("2026-05-17T12:00:00Z")),
                 "2026-05-17T09:00:00-04:00");
  // Strictly after: the instant itself moves to next year.
  EXPECT_INSTANT(NextYearly(5, 17, 9 * 60, nyc, Ts("2026-05-17T13:00:00Z")),
                 "2027-05-17T13:00:00Z");
  EXPECT_INSTANT(NextYearly(5, 17, 9 * 60, nyc, Ts("2026-05-17T12:59:59.999Z")),
                 "2026-05-17T13:00:00Z");
  EXPECT_INSTANT(NextYearly(1, 20, 9 * 60, nyc, Ts("2026-05-17T12:00:00Z")),
                 "2027-01-20T09:00:00-05:00");
}

TEST(CalendarNextYearly, February29InCommonAndLeapYears) {
  const Zone ams = MustLoad("Europe/Amsterdam");
  EXPECT_INSTANT(NextYearly(2, 29, 9 * 60, ams, Ts("2026-06-01T00:00:00Z")),
                 "2027-02-28T08:00:00Z");
  EXPECT_INSTANT(NextYearly(2, 29, 9 * 60, ams, Ts("2027-02-28T08:00:00Z")),
                 "2028-02-29T08:00:00Z");
  EXPECT_INSTANT(NextYearly(2, 29, 9 * 60, ams, Ts("2027-03-01T00:00:00Z")),
                 "2028-02-29T09:00:00+01:00");
  EXPECT_INSTANT(NextYearly(2, 29, 9 * 60, ams, Ts("2028-02-29T08:00:00.001Z")),
                 "2029-02-28T08:00:00Z");
  // 28 February itself is not moved.
  EXPECT_INSTANT(NextYearly(2, 28, 9 * 60, ams, Ts("2027-03-01T00:00:00Z")),
                 "2028-02-28T08:00:00Z");
}

TEST(CalendarNextYearly, AcrossTheYearEnd) {
  const Zone ams = MustLoad("Europe/Amsterdam");
  // 2026-12-31T23:30Z is already 2027-01-01 00:30 in Amsterdam.
  EXPECT_INSTANT(NextYearly(1, 2, 9 * 60, ams, Ts("2026-12-31T23:30:00Z")), "2027-01-02T08:00:00Z");
  EXPECT_INSTANT(NextYearly(1, 1, 0, ams, Ts("2026-12-31T22:59:59Z")), "2026-12-31T23:00:00Z");
  EXPECT_INSTANT(NextYearly(12, 31, 9 * 60, ams, Ts("2026-12-31T09:00:00Z")),
                 "2027-12-31T08:00:00Z");

  const Zone nyc = MustLoad("America/New_York");
  // 2027-01-01T03:00Z is still 2026-12-31 22:00 in New York.
  EXPECT_INSTANT(NextYearly(1, 1, 9 * 60, nyc, Ts("2027-01-01T03:00:00Z")), "2027-01-01T14:00:00Z");
  EXPECT_INSTANT(NextYearly(12, 31, 23 * 60, nyc, Ts("2027-01-01T03:00:00Z")),
                 "2027-01-01T04:00:00Z");
  EXPECT_INSTANT(NextYearly(12, 31, 21 * 60, nyc, Ts("2027-01-01T03:00:00Z")),
                 "2028-01-01T02:00:00Z");
}

TEST(CalendarNextYearly, OnDstChangeDays) {
  const Zone ams = MustLoad("Europe/Amsterdam");
  EXPECT_INSTANT(NextYearly(3, 29, 2 * 60 + 30, ams, Ts("2026-01-01T00:00:00Z")),
                 "2026-03-29T03:00:00+02:00");
  EXPECT_INSTANT(NextYearly(10, 25, 2 * 60 + 30, ams, Ts("2026-01-01T00:00:00Z")),
                 "2026-10-25T02:30:00+02:00");
  // Once a year: the second 02:30 of the fold is not another occurrence (and 2027-10-25 is
  // still summer time).
  EXPECT_INSTANT(NextYearly(10, 25, 2 * 60 + 30, ams, Ts("2026-10-25T00:30:00Z")),
                 "2027-10-25T02:30:00+02:00");
}

// ---- Quiet hours -----------------------------------------------------------------------

TEST(CalendarQuietHours, WrappingWindow) {
  const Zone ams = MustLoad("Europe/Amsterdam");
  const int start = 21 * 60, end = 8 * 60;
  // 23:00 local → 08:00 the next day.
  EXPECT_INSTANT(AfterQuietHours(Ts("2026-06-10T21:00:00Z"), start, end, ams),
                 "2026-06-11T08:00:00+02:00");
  // 02:00 local → 08:00 the same day.
  EXPECT_INSTANT(AfterQuietHours(Ts("2026-06-10T00:00:00Z"), start, end, ams),
                 "2026-06-10T06:00:00Z");
  // Start is inside, end is outside.
  EXPECT_INSTANT(AfterQuietHours(Ts("2026-06-10T19:00:00Z"), start, end, ams),
                 "2026-06-11T06:00:00Z");
  EXPECT_INSTANT(AfterQuietHours(Ts("2026-06-10T05:59:59.999Z"), start, end, ams),
                 "2026-06-10T06:00:00Z");
  EXPECT_INSTANT(AfterQuietHours(Ts("2026-06-10T06:00:00Z"), start, end, ams),
                 "2026-06-10T06:00:00Z");
  EXPECT_INSTANT(AfterQuietHours(Ts("2026-06-10T12:34:56.789Z"), start, end, ams),
                 "2026-06-10T12:34:56.789Z");
  EXPECT_INSTANT(AfterQuietHours(Ts("2026-06-10T18:59:59Z"), start, end, ams),
                 "2026-06-10T18:59:59Z");
}

TEST(CalendarQuietHours, NonWrappingWindow) {
  const Zone ams = MustLoad("Europe/Amsterdam");
  const int start = 12 * 60, end = 14 * 60;
  EXPECT_INSTANT(AfterQuietHours(Ts("2026-06-10T10:30:00Z"), start, end, ams),
                 "2026-06-10T14:00:00+02:00");
  EXPECT_INSTANT(AfterQuietHours(Ts("2026-06-10T10:00:00Z"), start, end, ams),
                 "2026-06-10T12:00:00Z");
  EXPECT_INSTANT(AfterQuietHours(Ts("2026-06-10T09:59:00Z"), start, end, ams),
                 "2026-06-10T09:59:00Z");
  EXPECT_INSTANT(AfterQuietHours(Ts("2026-06-10T12:00:00Z"), start, end, ams),
                 "2026-06-10T12:00:00Z");
  EXPECT_INSTANT(AfterQuietHours(Ts("2026-06-10T23:00:00Z"), start, end, ams),
                 "2026-06-10T23:00:00Z");
}

TEST(CalendarQuietHours, EmptyWindow) {
  const Zone ams = MustLoad("Europe/Amsterdam");
  EXPECT_INSTANT(AfterQuietHours(Ts("2026-06-10T08:00:00Z"), 600, 600, ams),
                 "2026-06-10T08:00:00Z");
  EXPECT_INSTANT(AfterQuietHours(Ts("2026-06-10T23:00:00Z"), 0, 0, ams), "2026-06-10T23:00:00Z");
}

TEST(CalendarQuietHours, AcrossDstChanges) {
  const Zone ams = MustLoad("Europe/Amsterdam");
  // Saturday 23:00 CET; the clocks go forward overnight, so 08:00 is 06:00Z, not 07:00Z.
  EXPECT_INSTANT(AfterQuietHours(Ts("2026-03-28T22:00:00Z"), 21 * 60, 8 * 60, ams),
                 "2026-03-29T06:00:00Z");
  // Saturday 23:00 CEST; the clocks go back overnight: 08:00 CET is 07:00Z.
  EXPECT_INSTANT(AfterQuietHours(Ts("2026-10-24T21:00:00Z"), 21 * 60, 8 * 60, ams),
                 "2026-10-25T07:00:00Z");
  // A window ending inside the gap ends when the gap does.
  EXPECT_INSTANT(AfterQuietHours(Ts("2026-03-29T00:45:00Z"), 60, 2 * 60 + 30, ams),
                 "2026-03-29T03:00:00+02:00");
  // A window ending inside the fold: from the first 02:15 to the first 02:30 ...
  EXPECT_INSTANT(AfterQuietHours(Ts("2026-10-25T00:15:00Z"), 60, 2 * 60 + 30, ams),
                 "2026-10-25T00:30:00Z");
  // ... and from the second 02:15 to the second 02:30, never into the past.
  EXPECT_INSTANT(AfterQuietHours(Ts("2026-10-25T01:15:00Z"), 60, 2 * 60 + 30, ams),
                 "2026-10-25T02:30:00+01:00");

  const Zone nyc = MustLoad("America/New_York");
  // Saturday 23:00 EDT → Sunday 08:00 EST.
  EXPECT_INSTANT(AfterQuietHours(Ts("2026-11-01T03:00:00Z"), 21 * 60, 8 * 60, nyc),
                 "2026-11-01T08:00:00-05:00");
}

// ---- Weekdays --------------------------------------------------------------------------

TEST(CalendarWeekdays, NextAllowedDay) {
  const Zone ams = MustLoad("Europe/Amsterdam");
  const uint8_t weekdays = 0x1f;  // Monday-Friday
  // Wednesday: allowed, unchanged.
  EXPECT_INSTANT(NextAllowedDay(Ts("2026-06-10T10:00:00Z"), weekdays, ams), "2026-06-10T10:00:00Z");
  // Saturday → Monday midnight local.
  EXPECT_INSTANT(NextAllowedDay(Ts("2026-06-13T10:00:00Z"), weekdays, ams),
                 "2026-06-15T00:00:00+02:00");
  // Friday in UTC but Saturday 00:30 in Amsterdam.
  EXPECT_INSTANT(NextAllowedDay(Ts("2026-06-12T22:30:00Z"), weekdays, ams), "2026-06-14T22:00:00Z");
  // Only Sunday (bit 6), from a Monday: six days on.
  EXPECT_INSTANT(NextAllowedDay(Ts("2026-06-15T10:00:00Z"), 0x40, ams),
                 "2026-06-21T00:00:00+02:00");
  // Only Monday (bit 0), from a Monday late in the day: stays.
  EXPECT_INSTANT(NextAllowedDay(Ts("2026-06-15T21:59:00Z"), 0x01, ams), "2026-06-15T21:59:00Z");
  // ... and one minute later it is Tuesday locally: next Monday.
  EXPECT_INSTANT(NextAllowedDay(Ts("2026-06-15T22:00:00Z"), 0x01, ams),
                 "2026-06-22T00:00:00+02:00");
}

TEST(CalendarWeekdays, EmptyOrFullMaskAllowsEveryDay) {
  const Zone ams = MustLoad("Europe/Amsterdam");
  for (uint8_t mask : {uint8_t{0}, uint8_t{0x7f}, uint8_t{0xff}, uint8_t{0x80}}) {
    EXPECT_INSTANT(NextAllowedDay(Ts("2026-06-13T10:00:00Z"), mask, ams), "2026-06-13T10:00:00Z")
        << "mask " << int{mask};
  }
}

TEST(CalendarWeekdays, MidnightInAGap) {
  // Santiago skips 00:00-01:00 on Sunday 2026-09-06.
  EXPECT_INSTANT(NextAllowedDay(Ts("2026-09-05T16:00:00Z"), 0x40, MustLoad("America/Santiago")),
                 "2026-09-06T01:00:00-03:00");
}

// ---- Profile dates and day arithmetic ----------------------------------------------------

TEST(CalendarProfileDate, LiteralDates) {
  const Zone nyc = MustLoad("America/New_York");
  auto d = ParseProfileDate("1990-05-17", nyc);
  ASSERT_TRUE(d.has_value());
  EXPECT_DATE(*d, 1990, 5, 17);
  d = ParseProfileDate("2024-02-29", nyc);
  ASSERT_TRUE(d.has_value());
  EXPECT_DATE(*d, 2024, 2, 29);
  d = ParseProfileDate("2000-02-29", nyc);
  ASSERT_TRUE(d.has_value());
  EXPECT_DATE(*d, 2000, 2, 29);
  // A literal date is not shifted by the zone (it is not midnight UTC).
  d = ParseProfileDate("2026-01-01", MustLoad("Pacific/Honolulu"));
  ASSERT_TRUE(d.has_value());
  EXPECT_DATE(*d, 2026, 1, 1);
}

TEST(CalendarProfileDate, TimestampsTakeTheirLocalDate) {
  const Zone ams = MustLoad("Europe/Amsterdam");
  const Zone nyc = MustLoad("America/New_York");
  auto d = ParseProfileDate("2026-05-17T23:30:00Z", ams);
  ASSERT_TRUE(d.has_value());
  EXPECT_DATE(*d, 2026, 5, 18);
  d = ParseProfileDate("2026-05-17T23:30:00Z", nyc);
  ASSERT_TRUE(d.has_value());
  EXPECT_DATE(*d, 2026, 5, 17);
  d = ParseProfileDate("2026-05-17T01:00:00.250+02:00", nyc);
  ASSERT_TRUE(d.has_value());
  EXPECT_DATE(*d, 2026, 5, 16);
  // Unix milliseconds: 1779008400000 is 2026-05-17T09:00:00Z.
  ASSERT_EQ(Ts("1779008400000"), Ts("2026-05-17T09:00:00Z"));
  d = ParseProfileDate("1779008400000", Zone::Utc());
  ASSERT_TRUE(d.has_value());
  EXPECT_DATE(*d, 2026, 5, 17);
  d = ParseProfileDate("1779008400000", MustLoad("Pacific/Kiritimati"));  // UTC+14
  ASSERT_TRUE(d.has_value());
  EXPECT_DATE(*d, 2026, 5, 17);
  d = ParseProfileDate("1779051600000", MustLoad("Pacific/Kiritimati"));  // 21:00Z
  ASSERT_TRUE(d.has_value());
  EXPECT_DATE(*d, 2026, 5, 18);
}

TEST(CalendarProfileDate, GarbageIsRefused) {
  const Zone ams = MustLoad("Europe/Amsterdam");
  for (const char* text : {"",
                           "garbage",
                           "2023-02-29",
                           "1900-02-29",
                           "1990-13-01",
                           "1990-00-10",
                           "1990-04-31",
                           "1990-05-00",
                           "1990-5-17",
                           "1990/05/17",
                           "17-05-1990",
                           "1990-05-17 ",
                           " 1990-05-17",
                           "1990-05-1x",
                           "+990-05-17",
                           "-1",
                           "12abc",
                           "2026-05-17T25:00:00Z",
                           "2026-05-17T09:00",
                           "99999999999999999999999",
                           "9000000000000000000"}) {
    EXPECT_FALSE(ParseProfileDate(text, ams).has_value()) << "accepted: '" << text << "'";
  }
}

TEST(CalendarAddDays, CivilArithmetic) {
  EXPECT_DATE(AddDays({2024, 2, 28}, 1), 2024, 2, 29);
  EXPECT_DATE(AddDays({2023, 2, 28}, 1), 2023, 3, 1);
  EXPECT_DATE(AddDays({2026, 12, 31}, 1), 2027, 1, 1);
  EXPECT_DATE(AddDays({2024, 3, 1}, -1), 2024, 2, 29);
  EXPECT_DATE(AddDays({2027, 1, 1}, -1), 2026, 12, 31);
  EXPECT_DATE(AddDays({2026, 5, 17}, 0), 2026, 5, 17);
  EXPECT_DATE(AddDays({2026, 5, 17}, 365), 2027, 5, 17);
  EXPECT_DATE(AddDays({2028, 1, 1}, 366), 2029, 1, 1);
  // The local midnight of the shifted date is what callers schedule at.
  EXPECT_INSTANT(MustLoad("Europe/Amsterdam").At(AddDays({2026, 3, 28}, 1), 0),
                 "2026-03-28T23:00:00Z");
}

}  // namespace
}  // namespace journeyd::engine
