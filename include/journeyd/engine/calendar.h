// Local time for customers: time zones (IANA, via cctz and the system's tzdata), the next
// occurrence of yearly and one-off dates at a local time of day, quiet hours and weekdays.
// Pure functions; zones are loaded once and cached (thread-safe).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "journeyd/common/time.h"

namespace journeyd::engine {

struct CivilDate {
  int year = 0;
  int month = 0;  // 1-12
  int day = 0;    // 1-31
};

// A loaded time zone. Cheap to copy.
class Zone {
 public:
  // Loads an IANA zone ("Europe/Amsterdam", "UTC"). nullopt for an unknown name.
  static std::optional<Zone> Load(std::string_view name);
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

  struct Impl;  // defined in calendar.cpp

 private:
  explicit Zone(const Impl* impl) : impl_(impl) {}
  const Impl* impl_;  // owned by the process-wide cache
};

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
