// The daemon's Prometheus metrics: one registry that the partition workers, the sender and
// the admin endpoint share on the io_context. Internal to the app module.
#pragma once

#include <string>
#include <string_view>

#include "journeyd/admin/metrics.h"

namespace journeyd::app::internal {

class AppMetrics {
 public:
  AppMetrics();
  AppMetrics(const AppMetrics&) = delete;
  AppMetrics& operator=(const AppMetrics&) = delete;

  std::string Render() const { return registry_.Render(); }

  // (Plain functions, not braced label lists at the call sites: those sites are coroutines.)
  // Shops choose event types, so only the first 100 distinct ones get their own series.
  void CountEvent(std::string_view type, std::string_view outcome) {
    events.Inc({event_types_(type), std::string(outcome)});
  }
  void CountDead(std::string_view reason) { dead.Inc({std::string(reason)}); }
  void CountMail(std::string_view flow, std::string_view outcome) {
    mails.Inc({std::string(flow), std::string(outcome)});
  }
  // A dead entry's error field ("profile.email", "data", ...) as a short reason class.
  static std::string DeadReason(std::string_view field);

 private:
  admin::Registry registry_;
  admin::LabelCap event_types_{100};

 public:
  admin::ValueFamily& build_info;
  admin::ValueFamily& events;  // {type, outcome}: processed, duplicate, dead
  admin::ValueFamily& dead;    // {reason}
  admin::HistogramFamily& commit_seconds;
  admin::HistogramFamily& timer_lateness_seconds;
  admin::ValueFamily& mails;  // {flow, outcome}: queued (here); sent, retried, ... (sender)
  admin::HistogramFamily& smtp_seconds;
  admin::ValueFamily& partitions_owned;
  admin::ValueFamily& stream_lag;  // {partition, stream}
};

}  // namespace journeyd::app::internal
