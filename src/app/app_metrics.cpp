#include "app_metrics.h"

#include <array>

namespace journeyd::app::internal {

#ifndef JOURNEYD_VERSION
#define JOURNEYD_VERSION "unknown"
#endif

AppMetrics::AppMetrics()
    : build_info(
          registry_.Gauge("journeyd_build_info", "The running journeyd's version.", {"version"})),
      events(registry_.Counter("journeyd_events_total",
                               "Stream entries taken from the events streams, by event type and "
                               "outcome (processed, duplicate, dead).",
                               {"type", "outcome"})),
      dead(registry_.Counter("journeyd_dead_total",
                             "Entries moved to a dead stream, by reason class.", {"reason"})),
      commit_seconds(registry_.Histogram(
          "journeyd_commit_seconds", "Round trip of one batch commit script.",
          {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5})),
      timer_lateness_seconds(registry_.Histogram(
          "journeyd_timer_lateness_seconds",
          "Virtual time between a customer's wake time and the moment it fired.",
          {0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300, 3600, 86400})),
      mails(registry_.Counter("journeyd_mails_total", "Mails by flow and outcome.",
                              {"flow", "outcome"})),
      smtp_seconds(registry_.Histogram("journeyd_smtp_seconds",
                                       "Time to hand one mail to the SMTP gateway.",
                                       {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30})),
      partitions_owned(registry_.Gauge("journeyd_partitions_owned",
                                       "Partitions this instance holds the lease of.")),
      stream_lag(registry_.Gauge(
          "journeyd_stream_lag",
          "Entries of a partition's stream not yet delivered to its consumer group.",
          {"partition", "stream"})),
      delivery_up(registry_.Gauge("journeyd_delivery_up",
                                  "1 while mail can be handed on (the SMTP relay answers, or the "
                                  "mail folder can be written), 0 while it cannot.",
                                  {"sink"})),
      delivery_down_seconds(registry_.Gauge(
          "journeyd_delivery_down_seconds",
          "For how long mail could not be handed on (0 while it can); the mails wait.", {"sink"})) {
  build_info.Set({JOURNEYD_VERSION}, 1);
}

void AppMetrics::CountEvents(const Tally& t) {
  std::vector<std::pair<admin::LabelValues, double>> rows = t.rows();
  for (auto& [labels, n] : rows) labels[0] = event_types_(labels[0]);
  events.IncMany(rows);
}

std::string AppMetrics::DeadReason(std::string_view field) {
  std::string_view head = field.substr(0, field.find('.'));
  static constexpr std::array<std::string_view, 6> kFields = {"type", "customer_id", "event_id",
                                                              "ts",   "data",        "profile"};
  for (auto f : kFields) {
    if (head == f) return "bad_" + std::string(f);
  }
  return "bad_entry";
}

}  // namespace journeyd::app::internal
