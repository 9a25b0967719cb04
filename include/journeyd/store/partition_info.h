// What the admin endpoints read about a partition: whether an instance holds its lease, and
// how far its consumer groups are behind (XINFO GROUPS).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "journeyd/store/keys.h"
#include "journeyd/store/op.h"

namespace journeyd::store {

// True while some instance holds the partition's lease (EXISTS journeyd:{N}:lease).
Op<bool> LeaseHeld(const Keys& keys);

// One consumer group of a stream, from XINFO GROUPS.
struct GroupInfo {
  bool found = false;  // the stream has the group
  // Entries not yet delivered to the group. Redis 7 answers nil when it cannot tell (entries
  // deleted from the middle of the stream): nullopt, never 0.
  std::optional<int64_t> lag;
  int64_t pending = 0;  // delivered, not yet acknowledged
};

// The events stream's group (kEventsGroup) and the outbox's (kOutboxGroup). A stream that does
// not exist yet is an error reply ("ERR no such key").
Op<GroupInfo> EventsGroup(const Keys& keys);
Op<GroupInfo> OutboxGroup(const Keys& keys);

// The pure reading of an XINFO GROUPS reply for `group`.
GroupInfo ReadGroupInfo(const Reply& groups, std::string_view group);

}  // namespace journeyd::store
