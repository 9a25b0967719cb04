// The host module: the system's tz database and flow files read from disk.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "journeyd/host/flow_files.h"
#include "journeyd/host/time_zones.h"

namespace journeyd::host {
namespace {

namespace fs = std::filesystem;

TEST(SystemTimeZones, FindsTheSystemsZonesOnly) {
  const auto& zones = SystemTimeZones();
  EXPECT_EQ(&zones, &SystemTimeZones());
  auto ams = zones.Find("Europe/Amsterdam");
  ASSERT_TRUE(ams);
  EXPECT_EQ(ams->name(), "Europe/Amsterdam");
  EXPECT_TRUE(zones.Find("UTC"));
  EXPECT_FALSE(zones.Find("Mars/Olympus"));
  EXPECT_FALSE(zones.Find("Europe"));  // a folder, not a zone file
}

TEST(FlowFiles, AMissingDirectoryOrFileIsReported) {
  auto r = LoadFlowDirectory("/nonexistent/flows");
  EXPECT_FALSE(r.flows);
  ASSERT_EQ(r.diagnostics.all().size(), 1u);
  EXPECT_EQ(r.diagnostics.all()[0].ToString(),
            "/nonexistent/flows: error: flows directory not found");
  auto f = ReadSourceFile("/nonexistent/flows/a.yaml");
  EXPECT_EQ(f.text, "");
  EXPECT_EQ(f.error.rfind("cannot read file: ", 0), 0u) << f.error;
}

TEST(FlowFiles, ReadsTheDirectoryTheCompilerSees) {
  const fs::path dir = fs::temp_directory_path() / ("journeyd-host-" + std::to_string(::getpid()));
  fs::create_directories(dir / "templates" / "nl");
  std::ofstream(dir / "templates" / "note.yaml") << "subject: Hi\ntext: hi\n";
  std::ofstream(dir / "templates" / "nl" / "note.yaml") << "subject: Hoi\ntext: hoi\n";
  std::ofstream(dir / "f.yaml") << "flow: f\ntrigger: signup\nsteps:\n  - send: note\n";
  std::ofstream(dir / "README.txt") << "not a flow\n";
  auto r = LoadFlowDirectory(dir.string());
  for (const auto& d : r.diagnostics.all()) ADD_FAILURE() << d.ToString();
  ASSERT_TRUE(r.flows);
  EXPECT_EQ(r.flows->flows().size(), 1u);
  EXPECT_EQ(r.flows->flows()[0].file, (dir / "f.yaml").string());
  fs::remove_all(dir);
}

}  // namespace
}  // namespace journeyd::host
