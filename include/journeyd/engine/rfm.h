// The RFM model: recency, frequency and monetary scores 1-5 from the attributes the daemon
// keeps from purchases (last_purchase_at, orders, revenue), and the segment they put a customer
// in. Computed when read (customer.rfm.*), so that recency follows the clock: a customer who
// stops buying moves from champions to at_risk to lost without any event.
//
// | segment     | rule (the first that holds)                          |
// |-------------|------------------------------------------------------|
// | `prospect`  | no purchase yet (r, f and m are then null)           |
// | `lost`      | R = 1                                                |
// | `champions` | R >= 4 and F >= 4                                    |
// | `new`       | F = 1 and R = 5 (a first order, lately)              |
// | `one_time`  | F = 1 (one order, a while ago)                       |
// | `loyal`     | R >= 3 and F >= 3                                    |
// | `potential` | R >= 4 (recent, a second order or so)                |
// | `at_risk`   | the rest: R 2-3 with a few orders, slipping away     |
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#include <nlohmann/json.hpp>

#include "journeyd/common/time.h"

namespace journeyd::engine {

struct RfmThresholds {
  // Days since the last purchase, at most, for R = 5, 4, 3 and 2 (later: 1).
  std::array<double, 4> recency_days{30, 90, 180, 365};
  // Orders, at least, for F = 2, 3, 4 and 5 (fewer: 1).
  std::array<double, 4> frequency{2, 3, 5, 10};
  // Revenue, at least, for M = 2, 3, 4 and 5 (less: 1).
  std::array<double, 4> monetary{100, 250, 500, 1000};
};

inline constexpr std::array<std::string_view, 8> kRfmSegments = {
    "prospect", "lost", "champions", "new", "one_time", "loyal", "potential", "at_risk"};

struct Rfm {
  int r = 0, f = 0, m = 0;  // 0: no purchase yet
  std::string_view segment = kRfmSegments[0];
};

// A customer without a known last purchase but with orders (imported without dates) has R = 1.
Rfm ScoreRfm(int64_t orders, double revenue, std::optional<TimePoint> last_purchase, TimePoint now,
             const RfmThresholds& thresholds);

// {"r": 5, "f": 1, "m": 1, "segment": "new"}, the scores null for a prospect (inspect, the
// admin API).
nlohmann::json RfmToJson(const Rfm& rfm);

}  // namespace journeyd::engine
