// The moment virtual time began, with clock.scale: every instance and every restart must agree
// on it, or timers would fire early or late, so it is kept in Redis (`<prefix>:clock_anchor`,
// Unix ms) and the first writer wins.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "journeyd/store/op.h"
#include "journeyd/store/sync.h"

namespace journeyd::store {

std::string ClockAnchorKey(std::string_view prefix);

// SET NX: true when `unix_ms` became the anchor, false when there was one already.
Op<bool> OfferClockAnchor(std::string_view prefix, int64_t unix_ms);
// GET: the anchor, nullopt when there is none.
Op<std::optional<int64_t>> ClockAnchor(std::string_view prefix);

// Offers `unix_ms`, then reads what the anchor is (the offer's own outcome does not matter).
// nullopt when Redis cannot say; `*error` then says why, when it was an error.
std::optional<int64_t> AgreeClockAnchor(SyncRedis& redis, std::string_view prefix, int64_t unix_ms,
                                        std::string* error);

}  // namespace journeyd::store
