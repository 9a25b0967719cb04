// Local time for customers: time zones (IANA, via cctz), the next occurrence of yearly and
// one-off dates at a local time of day, quiet hours and weekdays. Pure functions; the zones
// come from a TimeZoneDatabase passed in (the host's tz database, host/time_zones.h, or a
// test's fake), which loads each zone once and caches it (thread-safe).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "journeyd/common/time.h"

namespace cctz {
class time_zone;
}  // namespace cctz

namespace journeyd::engine {

struct CivilDate {
  int year = 0;
  int month = 0;  // 1-12
  int day = 0;    // 1-31
};

// A loaded time zone. Cheap to copy; valid as long as the database it came from.
class Zone {
 public:
  // Built in: needs no database.
  static Zone Utc();

  const std::string& name() const;
  // The local calendar date of an instant.
  CivilDate DateOf(TimePoint t) const;
  // Minutes since local midnight (0-1439) of an instant.
  int MinuteOfDay(TimePoint t) const;
  // 0 = Monday ... 6 = Sunday, in local time.
  int Weekday(TimePoint t) const;
  // The instant of a local date and time of day. In a DST gap (02:30 on a spring-forward day)
  // the instant after the gap; in a fold (02:30 twice in autumn) the first of the two.
  TimePoint At(const CivilDate& date, int minute_of_day) const;
  // The earliest instant not before `not_before` at which the local clock reads
  // `minute_of_day` on `date` (the second pass of a repeated hour when the first one is
  // already over), or At(date, minute_of_day) when none of them is.
  TimePoint AtOrAfter(const CivilDate& date, int minute_of_day, TimePoint not_before) const;

  struct Impl;  // defined in calendar.cpp

 private:
  friend class TimeZoneDatabase;
  explicit Zone(const Impl* impl) : impl_(impl) {}
  const Impl* impl_;  // owned by the cache of a TimeZoneDatabase (or the built-in UTC)
};

// Where zones come from. Find() asks Load() once for each name that exists and keeps the
// zone until the database is destroyed; unknown names are not remembered, so hostile profile
// data cannot grow the cache. The engine reaches it through Policy::zones.
class TimeZoneDatabase {
 public:
  TimeZoneDatabase();
  virtual ~TimeZoneDatabase();
  TimeZoneDatabase(const TimeZoneDatabase&) = delete;
  TimeZoneDatabase& operator=(const TimeZoneDatabase&) = delete;

  // An IANA zone ("Europe/Amsterdam"; "UTC" is built in). nullopt for a name that is not a
  // plain IANA name (no "..", no leading '/', no ':') or that the database does not have.
  std::optional<Zone> Find(std::string_view name) const;

 protected:
  // Loads the zone `name` into `out`; false when there is none. Called only for plain IANA
  // names that are not cached yet, never for "UTC"; may be called from several threads.
  virtual bool Load(const std::string& name, cctz::time_zone* out) const = 0;

 private:
  struct Cache;
  std::unique_ptr<Cache> cache_;
  uint64_t id_;  // unique for the process: tells the per-thread last zone whose it is
};

// A database that knows UTC only: the default of Policy::zones.
const TimeZoneDatabase& UtcOnlyTimeZones();

// Parses the date part of a profile date: "1990-05-17" → that date; an RFC 3339 timestamp
// or Unix ms → its local date in `zone`.
std::optional<CivilDate> ParseProfileDate(std::string_view text, const Zone& zone);

// Adds days to a civil date (negative allowed).
CivilDate AddDays(const CivilDate& d, int days);

// The first instant strictly after `after` at which the local date is (month, day) and the
// local time is `minute_of_day`. 29 February is celebrated on 28 February in years that
// have no 29 February.
TimePoint NextYearly(int month, int day, int minute_of_day, const Zone& zone, TimePoint after);

// Deferral for quiet hours: when `t` falls inside the local window [start, end) (minutes of
// day; the window may wrap midnight, 21:00-08:00), the first instant at its end; else `t`.
TimePoint AfterQuietHours(TimePoint t, int start_minute, int end_minute, const Zone& zone);

// The first instant at or after `t` whose local weekday is in `weekday_mask` (bit 0 =
// Monday) — `t` itself when its day is allowed, else local midnight of the next allowed day.
TimePoint NextAllowedDay(TimePoint t, uint8_t weekday_mask, const Zone& zone);

}  // namespace journeyd::engine
