// See rfm.h.
#include "journeyd/engine/rfm.h"

namespace journeyd::engine {

namespace {

// 1 plus the number of thresholds `x` reaches (ascending thresholds).
int AtLeast(double x, const std::array<double, 4>& t) {
  int score = 1;
  for (double bound : t) score += x >= bound ? 1 : 0;
  return score;
}

std::string_view Segment(int r, int f) {
  if (r == 1) return "lost";
  if (r >= 4 && f >= 4) return "champions";
  if (f == 1) return r == 5 ? "new" : "one_time";
  if (r >= 3 && f >= 3) return "loyal";
  if (r >= 4) return "potential";
  return "at_risk";
}

}  // namespace

Rfm ScoreRfm(int64_t orders, double revenue, std::optional<TimePoint> last_purchase, TimePoint now,
             const RfmThresholds& t) {
  Rfm out;
  if (orders <= 0) return out;
  out.r = 1;
  if (last_purchase) {
    const double days = std::chrono::duration<double>(now - *last_purchase).count() / 86400.0;
    out.r = 5;
    for (double bound : t.recency_days) out.r -= days > bound ? 1 : 0;
  }
  out.f = AtLeast(static_cast<double>(orders), t.frequency);
  out.m = AtLeast(revenue, t.monetary);
  out.segment = Segment(out.r, out.f);
  return out;
}

nlohmann::json RfmToJson(const Rfm& rfm) {
  auto score = [](int n) { return n == 0 ? nlohmann::json(nullptr) : nlohmann::json(n); };
  return {{"r", score(rfm.r)},
          {"f", score(rfm.f)},
          {"m", score(rfm.m)},
          {"segment", std::string(rfm.segment)}};
}

}  // namespace journeyd::engine
