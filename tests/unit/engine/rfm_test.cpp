// RFM scores and segments (engine/rfm.h), and customer.rfm.* read by a flow: scored when read,
// so that a customer's segment follows the clock without any event.
#include "journeyd/engine/rfm.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "journeyd/engine/engine.h"
#include "journeyd/host/flow_files.h"
#include "test_support.h"

namespace journeyd::engine {
namespace {

using testing::T;

Rfm Score(int64_t orders, double revenue, int days_ago, const RfmThresholds& t = {}) {
  const TimePoint now = T("2026-06-01T00:00:00Z");
  return ScoreRfm(orders, revenue, now - std::chrono::hours(24 * days_ago), now, t);
}

TEST(Rfm, ScoresAndSegmentsByTheDocumentedTable) {
  struct Case {
    int64_t orders;
    double revenue;
    int days;
    int r, f, m;
    std::string_view segment;
  };
  const Case cases[] = {
      {1, 80, 10, 5, 1, 1, "new"},          {1, 80, 100, 3, 1, 1, "one_time"},
      {1, 80, 31, 4, 1, 1, "one_time"},     {6, 600, 20, 5, 4, 4, "champions"},
      {12, 2000, 60, 4, 5, 5, "champions"}, {3, 300, 150, 3, 3, 3, "loyal"},
      {2, 150, 40, 4, 2, 2, "potential"},   {2, 150, 200, 2, 2, 2, "at_risk"},
      {8, 900, 200, 2, 4, 4, "at_risk"},    {8, 900, 400, 1, 4, 4, "lost"},
      {1, 20, 366, 1, 1, 1, "lost"},        {3, 100, 30, 5, 3, 2, "loyal"},
  };
  for (const Case& c : cases) {
    const Rfm got = Score(c.orders, c.revenue, c.days);
    EXPECT_EQ(got.r, c.r) << c.orders << " orders, " << c.days << " days";
    EXPECT_EQ(got.f, c.f) << c.orders << " orders";
    EXPECT_EQ(got.m, c.m) << c.revenue << " revenue";
    EXPECT_EQ(got.segment, c.segment) << c.orders << " orders, " << c.days << " days";
  }
}

TEST(Rfm, NoPurchaseIsAProspectWithoutScores) {
  const Rfm got = ScoreRfm(0, 0, std::nullopt, T("2026-06-01T00:00:00Z"), {});
  EXPECT_EQ(got.segment, "prospect");
  EXPECT_EQ(got.r + got.f + got.m, 0);
  // Orders imported without a date: the oldest recency.
  EXPECT_EQ(ScoreRfm(3, 300, std::nullopt, T("2026-06-01T00:00:00Z"), {}).r, 1);
}

TEST(Rfm, TheThresholdsAreTheConfigs) {
  RfmThresholds t;
  t.recency_days = {7, 14, 21, 28};
  t.frequency = {10, 20, 30, 40};
  t.monetary = {1, 2, 3, 4};
  const Rfm got = Score(15, 3.5, 10, t);
  EXPECT_EQ(got.r, 4);
  EXPECT_EQ(got.f, 2);
  EXPECT_EQ(got.m, 4);
}

// A flow that mails lost customers when they next show up: the same customer, the same state,
// is not lost a month after buying and is a year later.
TEST(Rfm, AFlowReadsTheSegmentAsOfNow) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("journeyd-rfm-" + std::to_string(::getpid()));
  fs::create_directories(dir / "templates");
  std::ofstream(dir / "templates/note.yaml")
      << "subject: \"{{customer.rfm.segment}} r{{customer.rfm.r}}\"\ntext: hi\n";
  std::ofstream(dir / "lost.yaml")
      << "flow: lost\nname: Lost\ncategory: transactional\n"
         "trigger: { event: visit, when: 'customer.rfm.segment == \"lost\" && customer.rfm.f "
         ">= 1' }\nreentry: always\nsteps:\n  - send: note\n";
  auto loaded = host::LoadFlowDirectory(dir.string());
  for (const auto& d : loaded.diagnostics.all()) ADD_FAILURE() << d.ToString();
  ASSERT_TRUE(loaded.flows);
  Policy p;
  CustomerState st;
  st.id = "c1";
  auto at = [](const std::string& ts, const std::string& type, const std::string& extra) {
    return testing::Ev(R"({"type":")" + type + R"(","customer_id":"c1","ts":")" + ts + "\"" +
                       extra + "," + testing::kOptedIn + "}");
  };
  Step(*loaded.flows, p, st,
       EventInput{at("2026-01-01T00:00:00Z", "purchase", R"(,"data":{"total":40})")},
       T("2026-01-01T00:00:00Z"));
  auto soon = Step(*loaded.flows, p, st, EventInput{at("2026-02-01T00:00:00Z", "visit", "")},
                   T("2026-02-01T00:00:00Z"));
  EXPECT_TRUE(soon.sends.empty());
  auto later = Step(*loaded.flows, p, st, EventInput{at("2027-02-01T00:00:00Z", "visit", "")},
                    T("2027-02-01T00:00:00Z"));
  ASSERT_EQ(later.sends.size(), 1u);
  EXPECT_EQ(later.sends[0].subject, "lost r1");
  fs::remove_all(dir);
}

TEST(Rfm, AMistypedFieldIsAnErrorNamingTheFields) {
  namespace fs = std::filesystem;
  const fs::path dir =
      fs::temp_directory_path() / ("journeyd-rfm-typo-" + std::to_string(::getpid()));
  fs::create_directories(dir / "templates");
  std::ofstream(dir / "templates/note.yaml") << "subject: s\ntext: hi\n";
  std::ofstream(dir / "f.yaml")
      << "flow: f\nname: F\ncategory: transactional\n"
         "trigger: { event: visit, when: 'customer.rfm.segmnt == \"lost\"' "
         "}\nsteps:\n  - send: note\n";
  auto loaded = host::LoadFlowDirectory(dir.string());
  std::string all;
  for (const auto& d : loaded.diagnostics.all()) all += d.ToString() + "\n";
  EXPECT_NE(all.find("f.yaml:4:33: error: 'customer.rfm.segmnt': the RFM fields are "
                     "customer.rfm.r, .f, .m and .segment — did you mean 'segment'?"),
            std::string::npos)
      << all;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace journeyd::engine
