// Stream entries as Redis returns them: the field/value array of one entry, and how many
// entries an XREADGROUP reply holds.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "journeyd/store/redis.h"

namespace journeyd::store {

// A stream entry's field/value array as a map.
std::map<std::string, std::string> FieldMap(const Reply& fields);

// The number of entries in an XREADGROUP reply for one stream.
size_t EntryCount(const Reply& r);

// The entries of an XREADGROUP reply for one stream (an array, maybe empty), or null when the
// reply holds no stream (nil: nothing new).
const Reply* StreamEntries(const Reply& r);

// Calls `f(id, fields)` for each entry of `entries` (an array of [id, [field, value, ...]]),
// with the fields as views into the reply, in one list reused from entry to entry.
template <typename F>
void ForEachEntry(const Reply& entries, F&& f) {
  std::vector<std::pair<std::string_view, std::string_view>> fields;
  for (const Reply& e : entries.elements) {
    if (e.elements.size() < 2) continue;
    fields.clear();
    const Reply& kv = e.elements[1];
    for (size_t i = 0; i + 1 < kv.elements.size(); i += 2) {
      fields.emplace_back(kv.elements[i].str, kv.elements[i + 1].str);
    }
    f(std::string_view(e.elements[0].str), fields);
  }
}

}  // namespace journeyd::store
