// The daemon's Prometheus metrics: one registry that the partition workers (on their threads),
// the senders and the admin endpoint share. A commit counts its events and mails in a Tally
// and adds it at once: one lock per family and batch, not per event. Internal to the app
// module.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "journeyd/admin/metrics.h"

namespace journeyd::app::internal {

// Counts by two label values (type and outcome, flow and outcome) gathered over a batch.
class Tally {
 public:
  void Add(std::string_view a, std::string_view b, double n = 1) {
    for (auto& [labels, count] : rows_) {
      if (labels[0] == a && labels[1] == b) {
        count += n;
        return;
      }
    }
    rows_.push_back({{std::string(a), std::string(b)}, n});
  }
  const std::vector<std::pair<admin::LabelValues, double>>& rows() const { return rows_; }

 private:
  std::vector<std::pair<admin::LabelValues, double>> rows_;
};

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
  // A batch's event counts by {type, outcome}, and its mails by {flow, outcome}.
  void CountEvents(const Tally& t);
  void CountMails(const Tally& t) { mails.IncMany(t.rows()); }
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
  admin::ValueFamily& stream_lag;             // {partition, stream}
  admin::ValueFamily& delivery_up;            // {sink}: 1 while mail goes out
  admin::ValueFamily& delivery_down_seconds;  // {sink}: since when it has not
};

}  // namespace journeyd::app::internal
