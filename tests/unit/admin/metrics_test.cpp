#include "journeyd/admin/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace journeyd::admin {
namespace {

TEST(Metrics, CountersAndGaugesWithLabels) {
  Registry r;
  auto& events =
      r.Counter("journeyd_events_total", "Events by type and outcome.", {"type", "outcome"});
  auto& owned = r.Gauge("journeyd_partitions_owned", "Partitions this instance owns.");
  events.Inc({"signup", "processed"});
  events.Inc({"signup", "processed"}, 2);
  events.Inc({"cart_updated", "duplicate"});
  owned.Set({}, 3);
  EXPECT_EQ(r.Render(),
            "# HELP journeyd_events_total Events by type and outcome.\n"
            "# TYPE journeyd_events_total counter\n"
            "journeyd_events_total{type=\"cart_updated\",outcome=\"duplicate\"} 1\n"
            "journeyd_events_total{type=\"signup\",outcome=\"processed\"} 3\n"
            "# HELP journeyd_partitions_owned Partitions this instance owns.\n"
            "# TYPE journeyd_partitions_owned gauge\n"
            "journeyd_partitions_owned 3\n");
}

TEST(Metrics, LabelValuesAndHelpAreEscaped) {
  Registry r;
  auto& c = r.Counter("x_total", "a \\ help\nline", {"v"});
  c.Inc({"back\\slash \"quoted\"\nnext"});
  EXPECT_EQ(r.Render(),
            "# HELP x_total a \\\\ help\\nline\n"
            "# TYPE x_total counter\n"
            "x_total{v=\"back\\\\slash \\\"quoted\\\"\\nnext\"} 1\n");
}

TEST(Metrics, HistogramBucketsAreCumulativeWithInfSumAndCount) {
  Registry r;
  auto& h = r.Histogram("journeyd_commit_seconds", "Commit round trip.", {0.001, 0.01, 0.1});
  h.Observe(0.0005);
  h.Observe(0.001);  // on the bound: counts in le="0.001"
  h.Observe(0.05);
  h.Observe(3);
  EXPECT_EQ(r.Render(),
            "# HELP journeyd_commit_seconds Commit round trip.\n"
            "# TYPE journeyd_commit_seconds histogram\n"
            "journeyd_commit_seconds_bucket{le=\"0.001\"} 2\n"
            "journeyd_commit_seconds_bucket{le=\"0.01\"} 2\n"
            "journeyd_commit_seconds_bucket{le=\"0.1\"} 3\n"
            "journeyd_commit_seconds_bucket{le=\"+Inf\"} 4\n"
            "journeyd_commit_seconds_sum 3.0515\n"
            "journeyd_commit_seconds_count 4\n");
}

TEST(Metrics, HistogramWithLabelsPutsLeLast) {
  Registry r;
  auto& h = r.Histogram("smtp_seconds", "SMTP.", {1, 2.5}, {"host"});
  h.Observe(2, {"a\"b"});
  EXPECT_EQ(r.Render(),
            "# HELP smtp_seconds SMTP.\n"
            "# TYPE smtp_seconds histogram\n"
            "smtp_seconds_bucket{host=\"a\\\"b\",le=\"1\"} 0\n"
            "smtp_seconds_bucket{host=\"a\\\"b\",le=\"2.5\"} 1\n"
            "smtp_seconds_bucket{host=\"a\\\"b\",le=\"+Inf\"} 1\n"
            "smtp_seconds_sum{host=\"a\\\"b\"} 2\n"
            "smtp_seconds_count{host=\"a\\\"b\"} 1\n");
}

TEST(Metrics, FamiliesWithoutSamplesStillDeclareThemselves) {
  Registry r;
  r.Histogram("journeyd_smtp_seconds", "Filled by the sender.", {1});
  EXPECT_EQ(r.Render(),
            "# HELP journeyd_smtp_seconds Filled by the sender.\n"
            "# TYPE journeyd_smtp_seconds histogram\n");
}

TEST(Metrics, SpecialValues) {
  EXPECT_EQ(FormatValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatValue(std::nan("")), "NaN");
  EXPECT_EQ(FormatValue(-2), "-2");
  EXPECT_EQ(FormatValue(0.25), "0.25");
}

TEST(Metrics, LabelCapFoldsNewValuesIntoOtherOnceFull) {
  LabelCap cap(2);
  EXPECT_EQ(cap("signup"), "signup");
  EXPECT_EQ(cap("purchase"), "purchase");
  EXPECT_EQ(cap("weird_1"), "other");
  EXPECT_EQ(cap("signup"), "signup");
  EXPECT_EQ(cap("weird_2"), "other");
}

}  // namespace
}  // namespace journeyd::admin
