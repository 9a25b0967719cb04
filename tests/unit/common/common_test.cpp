#include <fmt/format.h>
#include <gtest/gtest.h>

#include <random>

#include "journeyd/common/diagnostics.h"
#include "journeyd/common/hash.h"
#include "journeyd/common/time.h"

namespace journeyd {
namespace {

TEST(Crc32, MatchesZlib) {
  // Reference values of zlib's crc32().
  EXPECT_EQ(Crc32(""), 0u);
  EXPECT_EQ(Crc32("123456789"), 0xCBF43926u);
  EXPECT_EQ(Crc32("c42"), 0xC62D0E1Cu);
}

TEST(StableHash, IsStableAndSeeded) {
  EXPECT_EQ(StableHash64("abc", 1), StableHash64("abc", 1));
  EXPECT_NE(StableHash64("abc", 1), StableHash64("abc", 2));
  EXPECT_NE(StableHash64("abc", 1), StableHash64("abd", 1));
}

TEST(Duration, ParsesUnits) {
  EXPECT_EQ(ParseDuration("30m"), 30 * kMinute);
  EXPECT_EQ(ParseDuration("1h"), kHour);
  EXPECT_EQ(ParseDuration("3d"), 3 * kDay);
  EXPECT_EQ(ParseDuration("6w"), 6 * kWeek);
  EXPECT_EQ(ParseDuration("-14d"), -14 * kDay);
  EXPECT_EQ(ParseDuration("1h30m"), kHour + 30 * kMinute);
}

TEST(Duration, ExplainsBadInput) {
  std::string err;
  EXPECT_FALSE(ParseDuration("3x", &err));
  EXPECT_EQ(err, "duration '3x': use s, m, h, d or w");
  EXPECT_FALSE(ParseDuration("3", &err));
  EXPECT_EQ(err, "duration '3' has no unit: use s, m, h, d or w (e.g. 3d)");
  EXPECT_FALSE(ParseDuration("", &err));
  EXPECT_FALSE(ParseDuration("99999999999999d", &err));
  EXPECT_FALSE(ParseDuration("3ms", &err));
}

TEST(Duration, FormatsShortest) {
  EXPECT_EQ(FormatDuration(3 * kDay), "3d");
  EXPECT_EQ(FormatDuration(kHour + 30 * kMinute), "1h30m");
  EXPECT_EQ(FormatDuration(-14 * kDay), "-2w");
  EXPECT_EQ(FormatDuration(Duration{0}), "0s");
}

TEST(Timestamp, ParsesRfc3339DatesAndMillis) {
  auto t = ParseTimestamp("2026-05-17T09:00:00Z");
  ASSERT_TRUE(t);
  EXPECT_EQ(ToUnixMillis(*t), 1779008400000);
  EXPECT_EQ(ParseTimestamp("2026-05-17T11:00:00+02:00"), t);
  EXPECT_EQ(ParseTimestamp("1779008400000"), t);
  EXPECT_EQ(ParseTimestamp("2026-05-17T09:00:00.250Z"), *t + Duration{250});
  EXPECT_EQ(FormatRfc3339(*t), "2026-05-17T09:00:00Z");
  EXPECT_EQ(FormatRfc3339(*t + Duration{250}), "2026-05-17T09:00:00.250Z");
  EXPECT_EQ(FormatDate(*ParseTimestamp("2026-05-17")), "2026-05-17");
}

TEST(Timestamp, RefusesGarbage) {
  for (const char* s : {"", "2026-02-30", "2026-05-17T25:00:00Z", "2026-05-17T09:00:00",
                        "yesterday", "2026-05-17T09:00:00+2", "99999999999999999999999"}) {
    EXPECT_FALSE(ParseTimestamp(s)) << s;
  }
}

TEST(DidYouMean, SuggestsCloseWords) {
  constexpr std::string_view kKinds[] = {"send", "wait", "wait_until", "wait_for", "if"};
  EXPECT_EQ(DidYouMean("wiat", kKinds), " — did you mean 'wait'?");
  EXPECT_EQ(DidYouMean("sned", kKinds), " — did you mean 'send'?");
  EXPECT_EQ(DidYouMean("banana", kKinds), "");
}

TEST(Diagnostic, FormatsFileLineColumn) {
  Diagnostic d{{"flows/a.yaml", 12, 5}, Severity::kError, "boom"};
  EXPECT_EQ(d.ToString(), "flows/a.yaml:12:5: error: boom");
}

// FormatRfc3339 writes its digits by hand: the same text as the fmt format it replaced, and
// it reads back to the same instant.
TEST(Timestamp, FormatsEveryMillisecondAsTheFormatItReplaced) {
  std::mt19937_64 rng(7);
  const int64_t from = -2'208'988'800'000;  // 1900-01-01
  const int64_t to = 7'258'118'400'000;     // 2200-01-01
  for (int i = 0; i < 20000; ++i) {
    int64_t ms = from + static_cast<int64_t>(rng() % static_cast<uint64_t>(to - from));
    if (i % 3 == 0) ms -= ms % 1000;  // whole seconds: no fraction written
    TimePoint t = FromUnixMillis(ms);
    using namespace std::chrono;
    auto days = floor<std::chrono::days>(t);
    year_month_day ymd{days};
    int64_t rest = (t - days).count();
    std::string want =
        fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", static_cast<int>(ymd.year()),
                    static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                    rest / 3'600'000, rest / 60'000 % 60, rest / 1000 % 60);
    if (rest % 1000) want += fmt::format(".{:03}", rest % 1000);
    want += 'Z';
    ASSERT_EQ(FormatRfc3339(t), want) << ms;
    auto back = ParseTimestamp(want);
    ASSERT_TRUE(back) << want;
    ASSERT_EQ(ToUnixMillis(*back), ms) << want;
  }
}

// Far from now too: years before 0 and after 9999 keep every digit and their sign, and each
// day of a 400-year cycle lands on the date std::chrono gives it.
TEST(Timestamp, FormatsFarYearsAndEveryDayOfAnEra) {
  EXPECT_EQ(FormatRfc3339(FromUnixMillis(0)), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatRfc3339(FromUnixMillis(-1)), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(FormatRfc3339(FromUnixMillis(253'402'300'800'000)), "10000-01-01T00:00:00Z");
  EXPECT_EQ(FormatRfc3339(FromUnixMillis(-62'167'219'200'000)), "0000-01-01T00:00:00Z");
  EXPECT_EQ(FormatRfc3339(FromUnixMillis(-62'167'219'200'001)), "-0001-12-31T23:59:59.999Z");
  using namespace std::chrono;
  const sys_days start{year{1600} / 3 / 1};
  for (int i = 0; i < 146097 + 400; ++i) {
    const sys_days day = start + days{i};
    const year_month_day ymd{day};
    const std::string want =
        fmt::format("{:04}-{:02}-{:02}T00:00:00Z", static_cast<int>(ymd.year()),
                    static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
    ASSERT_EQ(FormatRfc3339(time_point_cast<Duration>(day)), want) << i;
  }
  std::string out = "at ";
  AppendRfc3339(out, FromUnixMillis(1'779'008'400'250));
  EXPECT_EQ(out, "at 2026-05-17T09:00:00.250Z");
}

}  // namespace
}  // namespace journeyd
