// The host's tz database: the zoneinfo files under TZDIR (as cctz itself honours it) or
// /usr/share/zoneinfo, for the engine's Policy::zones and every check of a zone name.
#pragma once

#include "journeyd/engine/calendar.h"

namespace journeyd::host {

// The process-wide database of the system's zones; it lives until the process ends.
const engine::TimeZoneDatabase& SystemTimeZones();

}  // namespace journeyd::host
