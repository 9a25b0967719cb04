// One event added to a partition's events stream, as a shop would (SPEC §3): `journeyctl
// publish` and the admin API's one-click unsubscribe.
#pragma once

#include <span>
#include <string>
#include <utility>

#include "journeyd/store/keys.h"
#include "journeyd/store/op.h"

namespace journeyd::store {

using EventField = std::pair<std::string, std::string>;

// XADD journeyd:{N}:events * <fields>; the value is the new entry's id.
Op<std::string> PublishEvent(const Keys& keys, std::span<const EventField> fields);

}  // namespace journeyd::store
