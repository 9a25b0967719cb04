// The per-step journey counts a partition's commits add up (journeyd:{N}:stats), as
// `GET /v1/flows` reads them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "journeyd/store/keys.h"
#include "journeyd/store/op.h"

namespace journeyd::store {

struct StatsEntry {
  std::string field;  // "<flow>\t<step>\t<kind>\t<reason>" (Keys::stats)
  int64_t count = 0;
};

// Every count of the partition, in the hash's order (HGETALL).
Op<std::vector<StatsEntry>> JourneyCounts(const Keys& keys);

}  // namespace journeyd::store
