#include "journeyd/common/time.h"

#include <fmt/format.h>
#include <array>
#include <charconv>
#include <cstdio>
#include <cstring>

namespace journeyd {
namespace {

bool ParseInt(std::string_view s, int64_t* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

bool Digits(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

}  // namespace

std::optional<Duration> ParseDuration(std::string_view text, std::string* error) {
  auto fail = [&](std::string msg) -> std::optional<Duration> {
    if (error) *error = std::move(msg);
    return std::nullopt;
  };
  std::string_view s = text;
  bool negative = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s.empty())
    return fail(fmt::format("duration '{}' is empty: write e.g. 30m, 1h, 3d or 6w", text));
  // One or more <number><unit> groups: "1h30m".
  int64_t total = 0;
  bool any = false;
  while (!s.empty()) {
    size_t i = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    if (i == 0) {
      return fail(
          fmt::format("duration '{}': expected a number followed by s, m, h, d or w", text));
    }
    int64_t n = 0;
    if (!ParseInt(s.substr(0, i), &n) || n > 1'000'000'000) {
      return fail(fmt::format("duration '{}' is too large", text));
    }
    if (i == s.size()) {
      return fail(
          fmt::format("duration '{}' has no unit: use s, m, h, d or w (e.g. {}d)", text, n));
    }
    int64_t unit = 0;
    switch (s[i]) {
      case 's':
        unit = kSecond.count();
        break;
      case 'm':
        unit = kMinute.count();
        break;
      case 'h':
        unit = kHour.count();
        break;
      case 'd':
        unit = kDay.count();
        break;
      case 'w':
        unit = kWeek.count();
        break;
      default:
        return fail(fmt::format("duration '{}': use s, m, h, d or w", text));
    }
    // "ms", "min" and the like are not units here.
    if (i + 1 < s.size() && !(s[i + 1] >= '0' && s[i + 1] <= '9')) {
      return fail(fmt::format("duration '{}': use s, m, h, d or w", text));
    }
    if (n > (int64_t{1} << 53) / unit) return fail(fmt::format("duration '{}' is too large", text));
    total += n * unit;
    if (total > 100LL * 366 * kDay.count()) {
      return fail(fmt::format("duration '{}' is longer than 100 years", text));
    }
    any = true;
    s.remove_prefix(i + 1);
  }
  if (!any) return fail(fmt::format("duration '{}': use s, m, h, d or w", text));
  return Duration{negative ? -total : total};
}

std::string FormatDuration(Duration d) {
  int64_t ms = d.count();
  std::string out;
  if (ms < 0) {
    out += '-';
    ms = -ms;
  }
  if (ms == 0) return "0s";
  struct Unit {
    int64_t ms;
    char c;
  };
  static constexpr Unit kUnits[] = {{kWeek.count(), 'w'},
                                    {kDay.count(), 'd'},
                                    {kHour.count(), 'h'},
                                    {kMinute.count(), 'm'},
                                    {kSecond.count(), 's'}};
  for (const Unit& u : kUnits) {
    if (ms >= u.ms) {
      out += fmt::format("{}{}", ms / u.ms, u.c);
      ms %= u.ms;
    }
  }
  if (ms > 0) out += fmt::format("{}ms", ms);
  return out;
}

std::optional<TimePoint> ParseTimestamp(std::string_view s) {
  using namespace std::chrono;
  if (s.empty() || s.size() > 40) return std::nullopt;
  bool all_digits = true;
  for (char c : s) all_digits = all_digits && c >= '0' && c <= '9';
  if (all_digits) {
    int64_t ms = 0;
    if (!ParseInt(s, &ms)) return std::nullopt;
    return FromUnixMillis(ms);
  }
  int y, mo, d;
  if (!Digits(s, 0, 4, &y) || s.size() < 10 || s[4] != '-' || !Digits(s, 5, 2, &mo) ||
      s[7] != '-' || !Digits(s, 8, 2, &d)) {
    return std::nullopt;
  }
  year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (!ymd.ok()) return std::nullopt;
  sys_days days{ymd};
  if (s.size() == 10) return TimePoint{duration_cast<Duration>(days.time_since_epoch())};
  if (s[10] != 'T' && s[10] != 't' && s[10] != ' ') return std::nullopt;
  int hh, mm, ss;
  if (!Digits(s, 11, 2, &hh) || s.size() < 19 || s[13] != ':' || !Digits(s, 14, 2, &mm) ||
      s[16] != ':' || !Digits(s, 17, 2, &ss) || hh > 23 || mm > 59 || ss > 60) {
    return std::nullopt;
  }
  size_t pos = 19;
  int64_t frac_ms = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    int ndig = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (ndig < 3) frac_ms = frac_ms * 10 + (s[pos] - '0');
      ++ndig;
      ++pos;
    }
    if (ndig == 0) return std::nullopt;
    for (int i = ndig; i < 3; ++i) frac_ms *= 10;
  }
  int64_t offset_min = 0;
  if (pos >= s.size()) return std::nullopt;
  if (s[pos] == 'Z' || s[pos] == 'z') {
    ++pos;
  } else if (s[pos] == '+' || s[pos] == '-') {
    int oh, om;
    if (!Digits(s, pos + 1, 2, &oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !Digits(s, pos + 4, 2, &om) || oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset_min = (oh * 60 + om) * (s[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  int64_t ms = duration_cast<milliseconds>(days.time_since_epoch()).count() +
               ((hh * 60 + mm) * 60 + std::min(ss, 59)) * 1000LL + frac_ms - offset_min * 60'000LL;
  return FromUnixMillis(ms);
}

namespace {

// Writes `v` (>= 0) at `at` in at least `width` digits, zero-padded (wider values keep all
// their digits); returns the end.
char* PutDigits(char* at, int64_t v, int width) {
  char buf[20];
  int n = 0;
  do {
    buf[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v > 0 && n < 20);
  for (int i = n; i < width; ++i) *at++ = '0';
  while (n > 0) *at++ = buf[--n];
  return at;
}

// "00" to "99", two characters each.
constexpr std::array<char, 200> kTwoDigits = [] {
  std::array<char, 200> t{};
  for (int i = 0; i < 100; ++i) {
    t[2 * i] = static_cast<char>('0' + i / 10);
    t[2 * i + 1] = static_cast<char>('0' + i % 10);
  }
  return t;
}();

char* Put2(char* at, unsigned v) {
  std::memcpy(at, kTwoDigits.data() + 2 * v, 2);
  return at + 2;
}

struct CivilDate {
  int64_t year;
  unsigned month;  // 1 to 12
  unsigned day;    // 1 to 31
};

// The proleptic Gregorian date `days` after 1970-01-01. Counted in 400-year eras (146097 days
// each) of years that start on March 1st, so that the leap day ends the year: the day of the
// era gives the year of the era, the day of that year the month (153 days per five months
// from March on), and January and February belong to the next calendar year.
CivilDate CivilFromDays(int64_t days) {
  const int64_t z = days + 719468;  // days since 0000-03-01
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);                    // [0, 146096]
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;  // [0, 399]
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);                // [0, 365]
  const unsigned mp = (5 * doy + 2) / 153;                                     // [0, 11]
  CivilDate c;
  c.day = doy - (153 * mp + 2) / 5 + 1;
  c.month = mp < 10 ? mp + 3 : mp - 9;
  c.year = static_cast<int64_t>(yoe) + era * 400 + (c.month <= 2 ? 1 : 0);
  return c;
}

}  // namespace

// Written by hand: send jobs and history entries format a time each, by the hundred thousand.
void AppendRfc3339(std::string& out, TimePoint t) {
  constexpr int64_t kDayMs = 86'400'000;
  const int64_t total = ToUnixMillis(t);
  int64_t days = total / kDayMs;
  int64_t ms = total % kDayMs;
  if (ms < 0) {
    ms += kDayMs;
    --days;
  }
  const CivilDate c = CivilFromDays(days);
  char buf[48];
  char* p = buf;
  if (c.year >= 0 && c.year <= 9999) {
    p = Put2(p, static_cast<unsigned>(c.year / 100));
    p = Put2(p, static_cast<unsigned>(c.year % 100));
  } else {
    if (c.year < 0) *p++ = '-';
    p = PutDigits(p, c.year < 0 ? -c.year : c.year, 4);
  }
  *p++ = '-';
  p = Put2(p, c.month);
  *p++ = '-';
  p = Put2(p, c.day);
  *p++ = 'T';
  const auto secs = static_cast<unsigned>(ms / 1000);
  p = Put2(p, secs / 3600);
  *p++ = ':';
  p = Put2(p, secs / 60 % 60);
  *p++ = ':';
  p = Put2(p, secs % 60);
  if (const auto frac = static_cast<unsigned>(ms % 1000); frac != 0) {
    *p++ = '.';
    *p++ = static_cast<char>('0' + frac / 100);
    p = Put2(p, frac % 100);
  }
  *p++ = 'Z';
  out.append(buf, static_cast<size_t>(p - buf));
}

std::string FormatRfc3339(TimePoint t) {
  std::string out;
  AppendRfc3339(out, t);
  return out;
}

std::string FormatDate(TimePoint t) {
  using namespace std::chrono;
  year_month_day ymd{floor<days>(t)};
  return fmt::format("{:04}-{:02}-{:02}", static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
}

}  // namespace journeyd
