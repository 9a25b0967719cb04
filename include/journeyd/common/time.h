// Time values used everywhere: milliseconds on the UTC system clock, and the injected Clock.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace journeyd {

using Duration = std::chrono::milliseconds;
using TimePoint = std::chrono::sys_time<std::chrono::milliseconds>;

inline constexpr Duration kSecond{1000};
inline constexpr Duration kMinute{60 * 1000};
inline constexpr Duration kHour{60 * 60 * 1000};
inline constexpr Duration kDay{24 * 60 * 60 * 1000};
inline constexpr Duration kWeek{7 * 24 * 60 * 60 * 1000};

// Parses "30m", "1h", "3d", "6w", "45s", "-14d". On failure returns nullopt and, when
// `error` is given, a message a marketer understands ("duration '3x': use s, m, h, d or w").
std::optional<Duration> ParseDuration(std::string_view text, std::string* error = nullptr);

// "3d", "1h30m", "0s": the shortest exact spelling.
std::string FormatDuration(Duration d);

// RFC 3339 ("2026-05-17T09:00:00Z", "2026-05-17T09:00:00.250+02:00"), a date alone
// ("2026-05-17", midnight UTC) or Unix milliseconds ("1779008400000").
std::optional<TimePoint> ParseTimestamp(std::string_view text);

// RFC 3339 in UTC with millisecond precision only when non-zero: "2026-05-17T09:00:00Z".
std::string FormatRfc3339(TimePoint t);
// The same, appended to `out`.
void AppendRfc3339(std::string& out, TimePoint t);

// "2026-05-17".
std::string FormatDate(TimePoint t);

inline int64_t ToUnixMillis(TimePoint t) { return t.time_since_epoch().count(); }
inline TimePoint FromUnixMillis(int64_t ms) { return TimePoint{Duration{ms}}; }

// The only source of "now" outside tests. app::ScaledClock (app/daemon.h) honours clock.scale.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;
};

class VirtualClock final : public Clock {
 public:
  explicit VirtualClock(TimePoint start) : now_(start) {}
  TimePoint Now() const override { return now_; }
  void Set(TimePoint t) { now_ = t; }
  void Advance(Duration d) { now_ += d; }

 private:
  TimePoint now_;
};

}  // namespace journeyd
