#include "journeyd/store/partition_info.h"

namespace journeyd::store {

namespace {

Op<GroupInfo> GroupOf(std::string stream, std::string_view group) {
  return {{"XINFO", "GROUPS", std::move(stream)},
          [group](const Reply& r) { return ReadGroupInfo(r, group); }};
}

}  // namespace

Op<bool> LeaseHeld(const Keys& keys) {
  return {{"EXISTS", keys.lease()}, [](const Reply& r) { return r.integer != 0; }};
}

Op<GroupInfo> EventsGroup(const Keys& keys) { return GroupOf(keys.events(), kEventsGroup); }

Op<GroupInfo> OutboxGroup(const Keys& keys) { return GroupOf(keys.outbox(), kOutboxGroup); }

GroupInfo ReadGroupInfo(const Reply& groups, std::string_view group) {
  for (const Reply& g : groups.elements) {
    GroupInfo info;
    std::string_view name;
    for (size_t i = 0; i + 1 < g.elements.size(); i += 2) {
      const std::string& field = g.elements[i].str;
      const Reply& value = g.elements[i + 1];
      if (field == "name") name = value.str;
      if (field == "lag" && value.type == Reply::Type::kInteger) info.lag = value.integer;
      if (field == "pending" && value.type == Reply::Type::kInteger) info.pending = value.integer;
    }
    if (name == group) {
      info.found = true;
      return info;
    }
  }
  return {};
}

}  // namespace journeyd::store
