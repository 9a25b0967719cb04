// A small Prometheus registry and text writer (exposition format 0.0.4): counters and gauges
// with labels, histograms with fixed buckets. The daemon's partitions run on several threads:
// each family guards its series with its own mutex, held while a call updates or renders them.
// Families are registered before those threads start.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace journeyd::admin {

using LabelValues = std::vector<std::string>;

class Family {
 public:
  enum class Type { kCounter, kGauge, kHistogram };
  Family(Type type, std::string name, std::string help, std::vector<std::string> labels)
      : type_(type), name_(std::move(name)), help_(std::move(help)), labels_(std::move(labels)) {}
  virtual ~Family() = default;
  Family(const Family&) = delete;
  Family& operator=(const Family&) = delete;

  const std::string& name() const { return name_; }
  // Appends this family's HELP, TYPE and sample lines to `out`.
  virtual void Render(std::string& out) const = 0;

 protected:
  void RenderHeader(std::string& out) const;
  // `{a="x",b="y"` without the closing brace ("" when there are no labels and no extra).
  std::string LabelText(const LabelValues& values) const;

  mutable std::mutex mu_;  // the family's series
  Type type_;
  std::string name_;
  std::string help_;
  std::vector<std::string> labels_;
};

// A counter or a gauge: one value per label combination.
class ValueFamily final : public Family {
 public:
  using Family::Family;
  // Adds to or sets the series for `values` (one per label name; missing ones are ""),
  // created at 0.
  void Inc(const LabelValues& values = {}, double by = 1);
  void Set(const LabelValues& values, double v);
  // Inc for each (values, by), under one lock: a batch's counts at once.
  void IncMany(const std::vector<std::pair<LabelValues, double>>& adds);
  double Get(const LabelValues& values = {}) const;
  void Render(std::string& out) const override;

 private:
  double& With(const LabelValues& values);  // with mu_ held
  std::map<LabelValues, double> series_;
};

class HistogramFamily final : public Family {
 public:
  // `buckets` are the upper bounds, ascending; +Inf is implied.
  HistogramFamily(std::string name, std::string help, std::vector<std::string> labels,
                  std::vector<double> buckets);
  void Observe(double v, const LabelValues& values = {});
  // Observe for each of `vs`, under one lock.
  void ObserveMany(const std::vector<double>& vs, const LabelValues& values = {});
  void Render(std::string& out) const override;

 private:
  struct Series {
    std::vector<uint64_t> counts;  // per bucket, not cumulative; last is +Inf
    double sum = 0;
    uint64_t count = 0;
  };
  void Add(Series& s, double v) const;  // with mu_ held
  std::vector<double> buckets_;
  std::map<LabelValues, Series> series_;
};

class Registry {
 public:
  ValueFamily& Counter(std::string name, std::string help, std::vector<std::string> labels = {});
  ValueFamily& Gauge(std::string name, std::string help, std::vector<std::string> labels = {});
  HistogramFamily& Histogram(std::string name, std::string help, std::vector<double> buckets,
                             std::vector<std::string> labels = {});
  // The exposition text of every family, in registration order.
  std::string Render() const;

 private:
  std::vector<std::unique_ptr<Family>> families_;
};

// Bounds a label's cardinality when its values come from outside (event types from shops):
// the first `max` distinct values pass, later new ones become "other".
class LabelCap {
 public:
  explicit LabelCap(size_t max) : max_(max) {}
  std::string operator()(std::string_view value);

 private:
  std::mutex mu_;
  size_t max_;
  std::set<std::string, std::less<>> seen_;
};

// The exposition's escaping: label values escape backslash, double quote and newline; HELP
// text escapes backslash and newline.
std::string EscapeLabelValue(std::string_view v);
std::string EscapeHelp(std::string_view v);
// A sample value as Prometheus writes it: integers without a fraction, +Inf, -Inf, NaN.
std::string FormatValue(double v);

// Content-Type of the text format.
inline constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace journeyd::admin
