#include "journeyd/host/time_zones.h"

#include <sys/stat.h>

#include <cctz/time_zone.h>
#include <cstdlib>
#include <string>

namespace journeyd::host {
namespace {

// cctz remembers every name it was asked for, including unknown ones. Asking it only for
// names that exist as a file in the zoneinfo directory (TZDIR, as cctz itself honours) keeps
// hostile profile data from growing that table.
bool ZoneFileExists(const std::string& name) {
  const char* dir = std::getenv("TZDIR");
  std::string path = (dir != nullptr && *dir != '\0') ? dir : "/usr/share/zoneinfo";
  path += '/';
  path += name;
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

class SystemDatabase final : public engine::TimeZoneDatabase {
 protected:
  bool Load(const std::string& name, cctz::time_zone* out) const override {
    return ZoneFileExists(name) && cctz::load_time_zone(name, out);
  }
};

}  // namespace

const engine::TimeZoneDatabase& SystemTimeZones() {
  static const SystemDatabase* const db = new SystemDatabase();  // never freed, like its zones
  return *db;
}

}  // namespace journeyd::host
