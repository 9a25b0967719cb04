#include "journeyd/engine/calendar.h"

#include <cctz/civil_time.h>
#include <cctz/time_zone.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

namespace journeyd::engine {

namespace {

using Seconds = std::chrono::time_point<std::chrono::system_clock, std::chrono::seconds>;

constexpr size_t kMaxZoneName = 64;

// IANA names only: letters, digits and "/_+-." with no "..", no leading '/' (no absolute
// paths), no ':' (cctz reads "file:/any/path"), no control characters.
bool SafeZoneName(std::string_view name) {
  if (name.empty() || name.size() > kMaxZoneName) return false;
  if (name.front() == '/' || name.find("..") != std::string_view::npos) return false;
  for (char c : name) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '/' || c == '_' || c == '+' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

TimePoint FromCctz(Seconds s) { return std::chrono::time_point_cast<Duration>(s); }
Seconds ToCctz(TimePoint t) { return std::chrono::floor<std::chrono::seconds>(t); }

cctz::civil_day ToCivilDay(const CivilDate& d) { return cctz::civil_day(d.year, d.month, d.day); }
CivilDate FromCivilDay(const cctz::civil_day& d) {
  return CivilDate{static_cast<int>(d.year()), d.month(), d.day()};
}

bool IsLeap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysInMonth(int64_t year, int month) {
  static constexpr int kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month == 2 && IsLeap(year)) return 29;
  return kDays[month - 1];
}

class UtcOnly final : public TimeZoneDatabase {
 protected:
  bool Load(const std::string&, cctz::time_zone*) const override { return false; }
};

}  // namespace

struct Zone::Impl {
  std::string name;
  cctz::time_zone tz;
};

// The zones a database has found: they live until the database is destroyed.
struct TimeZoneDatabase::Cache {
  std::mutex mu;
  std::map<std::string, std::unique_ptr<const Zone::Impl>, std::less<>> zones;
};

TimeZoneDatabase::TimeZoneDatabase() : cache_(std::make_unique<Cache>()) {
  static std::atomic<uint64_t> next_id{1};
  id_ = next_id.fetch_add(1, std::memory_order_relaxed);
}

TimeZoneDatabase::~TimeZoneDatabase() = default;

std::optional<Zone> TimeZoneDatabase::Find(std::string_view name) const {
  // The engine asks for the same zone (policy.timezone, mostly) on nearly every step: the
  // last one found is kept per thread, which spares the lock and the map. The database's id
  // (never reused) tells whether that zone is this database's, and so still alive.
  thread_local uint64_t last_db = 0;
  thread_local const Zone::Impl* last = nullptr;
  if (last_db == id_ && last->name == name) return Zone(last);
  if (name == "UTC") return Zone::Utc();
  if (!SafeZoneName(name)) return std::nullopt;
  const Zone::Impl* impl = nullptr;
  {
    std::lock_guard<std::mutex> lock(cache_->mu);
    auto it = cache_->zones.find(name);
    if (it != cache_->zones.end()) impl = it->second.get();
  }
  if (impl == nullptr) {
    auto loaded = std::make_unique<Zone::Impl>();
    loaded->name = std::string(name);
    if (!Load(loaded->name, &loaded->tz)) return std::nullopt;
    std::lock_guard<std::mutex> lock(cache_->mu);
    auto [it, inserted] = cache_->zones.try_emplace(loaded->name, std::move(loaded));
    impl = it->second.get();
  }
  last_db = id_;
  last = impl;
  return Zone(impl);
}

const TimeZoneDatabase& UtcOnlyTimeZones() {
  static const UtcOnly* const db = new UtcOnly();  // never freed: zones may outlive main
  return *db;
}

Zone Zone::Utc() {
  static const Impl* const utc = new Impl{"UTC", cctz::utc_time_zone()};  // never freed
  return Zone(utc);
}

const std::string& Zone::name() const { return impl_->name; }

CivilDate Zone::DateOf(TimePoint t) const {
  return FromCivilDay(cctz::civil_day(cctz::convert(ToCctz(t), impl_->tz)));
}

int Zone::MinuteOfDay(TimePoint t) const {
  const cctz::civil_second cs = cctz::convert(ToCctz(t), impl_->tz);
  return cs.hour() * 60 + cs.minute();
}

int Zone::Weekday(TimePoint t) const {
  const cctz::civil_day d(cctz::convert(ToCctz(t), impl_->tz));
  return static_cast<int>(cctz::get_weekday(d));  // cctz: monday = 0 ... sunday = 6
}

TimePoint Zone::AtOrAfter(const CivilDate& date, int minute_of_day, TimePoint not_before) const {
  const TimePoint first = At(date, minute_of_day);
  if (first >= not_before) return first;
  const auto cl =
      impl_->tz.lookup(cctz::civil_second(date.year, date.month, date.day, 0, minute_of_day, 0));
  TimePoint best = first;
  for (Seconds s : {cl.pre, cl.trans, cl.post}) {
    const TimePoint c = FromCctz(s);
    if (c >= not_before && (best < not_before || c < best)) best = c;
  }
  return best;
}

TimePoint Zone::At(const CivilDate& date, int minute_of_day) const {
  const auto cl =
      impl_->tz.lookup(cctz::civil_second(date.year, date.month, date.day, 0, minute_of_day, 0));
  switch (cl.kind) {
    case cctz::time_zone::civil_lookup::SKIPPED:
      return FromCctz(cl.trans);  // the first instant after the gap
    case cctz::time_zone::civil_lookup::REPEATED:
    case cctz::time_zone::civil_lookup::UNIQUE:
    default:
      return FromCctz(cl.pre);  // in a fold: the first of the two
  }
}

std::optional<CivilDate> ParseProfileDate(std::string_view text, const Zone& zone) {
  auto digits = [&](size_t pos, size_t n, int* out) {
    int v = 0;
    for (size_t i = pos; i < pos + n; ++i) {
      if (text[i] < '0' || text[i] > '9') return false;
      v = v * 10 + (text[i] - '0');
    }
    *out = v;
    return true;
  };
  if (text.size() == 10 && text[4] == '-' && text[7] == '-') {
    int y = 0, m = 0, d = 0;
    if (!digits(0, 4, &y) || !digits(5, 2, &m) || !digits(8, 2, &d)) return std::nullopt;
    if (m < 1 || m > 12 || d < 1 || d > DaysInMonth(y, m)) return std::nullopt;
    return CivilDate{y, m, d};
  }
  const std::optional<TimePoint> t = ParseTimestamp(text);
  if (!t) return std::nullopt;
  const CivilDate local = zone.DateOf(*t);
  if (local.year < 0 || local.year > 9999) return std::nullopt;
  return local;
}

CivilDate AddDays(const CivilDate& d, int days) { return FromCivilDay(ToCivilDay(d) + days); }

TimePoint NextYearly(int month, int day, int minute_of_day, const Zone& zone, TimePoint after) {
  month = std::clamp(month, 1, 12);
  minute_of_day = std::clamp(minute_of_day, 0, 24 * 60 - 1);
  const int year = zone.DateOf(after).year;
  // Start a year early: zones that once moved across the date line can put the local
  // date of `after` ahead of an instant that is still to come.
  for (int y = year - 1; y <= year + 8; ++y) {
    // 29 February → 28 February in common years (and any day past the month's end likewise).
    const int d = std::clamp(day, 1, DaysInMonth(y, month));
    const TimePoint candidate = zone.At(CivilDate{y, month, d}, minute_of_day);
    if (candidate > after) return candidate;
  }
  return zone.At(CivilDate{year + 1, month, std::clamp(day, 1, DaysInMonth(year + 1, month))},
                 minute_of_day);
}

TimePoint AfterQuietHours(TimePoint t, int start_minute, int end_minute, const Zone& zone) {
  if (start_minute == end_minute) return t;
  const int m = zone.MinuteOfDay(t);
  const CivilDate today = zone.DateOf(t);
  if (start_minute < end_minute) {
    if (m >= start_minute && m < end_minute) return zone.AtOrAfter(today, end_minute, t);
    return t;
  }
  // Wraps midnight: [start, 24:00) ∪ [00:00, end).
  if (m >= start_minute) return zone.AtOrAfter(AddDays(today, 1), end_minute, t);
  if (m < end_minute) return zone.AtOrAfter(today, end_minute, t);
  return t;
}

TimePoint NextAllowedDay(TimePoint t, uint8_t weekday_mask, const Zone& zone) {
  const unsigned mask = weekday_mask & 0x7fu;
  if (mask == 0 || mask == 0x7fu) return t;
  if ((mask >> zone.Weekday(t)) & 1u) return t;
  const cctz::civil_day today(ToCivilDay(zone.DateOf(t)));
  for (int i = 1; i <= 7; ++i) {
    const cctz::civil_day d = today + i;
    if ((mask >> static_cast<int>(cctz::get_weekday(d))) & 1u) {
      return zone.At(FromCivilDay(d), 0);
    }
  }
  return t;  // unreachable: some bit of a non-zero mask is set
}

}  // namespace journeyd::engine
