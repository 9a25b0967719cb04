#include "journeyd/store/stats.h"

#include <cstdlib>

namespace journeyd::store {

Op<std::vector<StatsEntry>> JourneyCounts(const Keys& keys) {
  return {{"HGETALL", keys.stats()}, [](const Reply& r) {
            std::vector<StatsEntry> out;
            out.reserve(r.elements.size() / 2);
            for (size_t i = 0; i + 1 < r.elements.size(); i += 2) {
              out.push_back(
                  {r.elements[i].str, std::strtoll(r.elements[i + 1].str.c_str(), nullptr, 10)});
            }
            return out;
          }};
}

}  // namespace journeyd::store
