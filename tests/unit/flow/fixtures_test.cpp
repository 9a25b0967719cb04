// Flow files under tests/fixtures/flows/: every valid one loads without an error; every
// invalid one produces exactly the errors its `# expect:` lines name, at their positions.
//
//   # expect: 12:5: error: unknown step kind 'wiat' — did you mean 'wait'?
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "journeyd/host/flow_files.h"

namespace journeyd::flow {
namespace {

using host::LoadFlowDirectory;
using host::ValidatePaths;

namespace fs = std::filesystem;

const fs::path kFixtures = fs::path(JOURNEYD_SOURCE_DIR) / "tests/fixtures/flows";

std::vector<fs::path> FlowFiles(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().extension() == ".yaml") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> Expected(const fs::path& file) {
  std::vector<std::string> out;
  std::ifstream in(file);
  std::string line;
  const std::string tag = "# expect: ";
  while (std::getline(in, line)) {
    if (line.rfind(tag, 0) == 0) out.push_back(line.substr(tag.size()));
  }
  return out;
}

TEST(FlowFixtures, ShippedFlowsValidate) {
  Diagnostics d = ValidatePaths({std::string(JOURNEYD_SOURCE_DIR) + "/flows"});
  for (const auto& x : d.all()) ADD_FAILURE() << x.ToString();
  EXPECT_FALSE(d.HasErrors());
  auto loaded = LoadFlowDirectory(std::string(JOURNEYD_SOURCE_DIR) + "/flows");
  ASSERT_TRUE(loaded.flows);
  std::set<std::string> ids;
  for (const auto& f : loaded.flows->flows()) ids.insert(f.id);
  EXPECT_EQ(ids, (std::set<std::string>{"abandoned_cart", "birthday", "points_expiry", "welcome",
                                        "review_request", "winback"}));
}

TEST(FlowFixtures, ValidFixturesHaveNoErrors) {
  auto files = FlowFiles(kFixtures / "valid");
  ASSERT_FALSE(files.empty());
  for (const auto& f : files) {
    Diagnostics d = ValidatePaths({f.string()});
    for (const auto& x : d.all()) {
      if (x.severity == Severity::kError) ADD_FAILURE() << x.ToString();
    }
  }
}

TEST(FlowFixtures, InvalidFixturesReportExactlyTheExpectedErrors) {
  auto files = FlowFiles(kFixtures / "invalid");
  EXPECT_GE(files.size(), 30u);
  for (const auto& f : files) {
    SCOPED_TRACE(f.filename().string());
    auto expected = Expected(f);
    ASSERT_FALSE(expected.empty()) << "fixture has no '# expect:' line";
    Diagnostics d = ValidatePaths({f.string()});
    std::vector<std::string> got;
    const std::string prefix = f.string() + ":";
    for (const auto& x : d.all()) {
      if (x.severity != Severity::kError) continue;
      std::string s = x.ToString();
      if (s.rfind(prefix, 0) == 0) s = s.substr(prefix.size());
      // Messages name the templates folder as given on the command line: relative in the files.
      const std::string dir = (kFixtures / "invalid").string() + "/";
      for (size_t at; (at = s.find(dir)) != std::string::npos;) s.erase(at, dir.size());
      got.push_back(s);
    }
    std::sort(expected.begin(), expected.end());
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, expected);
  }
}

}  // namespace
}  // namespace journeyd::flow
