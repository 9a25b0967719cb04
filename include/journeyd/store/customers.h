// A customer's stored state, as the admin API and `journeyctl inspect` read it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "journeyd/store/keys.h"
#include "journeyd/store/op.h"

namespace journeyd::store {

// The encoded state (engine::DecodeState reads it) of customer `id` in the partition of
// `keys`; nullopt when there is no such customer.
Op<std::optional<std::string>> CustomerState(const Keys& keys, std::string_view id);

}  // namespace journeyd::store
