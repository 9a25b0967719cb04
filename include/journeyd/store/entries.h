// Stream entries as Redis returns them: the field/value array of one entry, and how many
// entries an XREADGROUP reply holds.
#pragma once

#include <cstddef>
#include <map>
#include <string>

#include "journeyd/store/redis.h"

namespace journeyd::store {

// A stream entry's field/value array as a map.
std::map<std::string, std::string> FieldMap(const Reply& fields);

// The number of entries in an XREADGROUP reply for one stream.
size_t EntryCount(const Reply& r);

}  // namespace journeyd::store
