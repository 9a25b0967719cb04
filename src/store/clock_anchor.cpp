#include "journeyd/store/clock_anchor.h"

#include <cstdlib>

namespace journeyd::store {

std::string ClockAnchorKey(std::string_view prefix) {
  return std::string(prefix) + ":clock_anchor";
}

Op<bool> OfferClockAnchor(std::string_view prefix, int64_t unix_ms) {
  return {{"SET", ClockAnchorKey(prefix), std::to_string(unix_ms), "NX"},
          [](const Reply& r) { return r.type == Reply::Type::kStatus; }};
}

Op<std::optional<int64_t>> ClockAnchor(std::string_view prefix) {
  return {{"GET", ClockAnchorKey(prefix)}, [](const Reply& r) -> std::optional<int64_t> {
            if (r.type != Reply::Type::kString) return std::nullopt;
            return std::strtoll(r.str.c_str(), nullptr, 10);
          }};
}

std::optional<int64_t> AgreeClockAnchor(SyncRedis& redis, std::string_view prefix, int64_t unix_ms,
                                        std::string* error) {
  Run(redis, OfferClockAnchor(prefix, unix_ms));
  Got<std::optional<int64_t>> got = Run(redis, ClockAnchor(prefix));
  if (!got.ok()) {
    *error = got.error;
    return std::nullopt;
  }
  return *got.value;
}

}  // namespace journeyd::store
