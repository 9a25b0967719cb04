// A small Prometheus registry and text writer (exposition format 0.0.4): counters and gauges
// with labels, histograms with fixed buckets. The daemon runs on one io_context thread, so
// series are plain values; only registration and rendering walk the maps.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
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

  Type type_;
  std::string name_;
  std::string help_;
  std::vector<std::string> labels_;
};

// A counter or a gauge: one value per label combination.
class ValueFamily final : public Family {
 public:
  using Family::Family;
  // The series for `values` (one per label name; missing ones are ""), created at 0.
  double& With(const LabelValues& values = {});
  void Inc(const LabelValues& values = {}, double by = 1) { With(values) += by; }
  void Set(const LabelValues& values, double v) { With(values) = v; }
  double Get(const LabelValues& values = {}) const;
  void Render(std::string& out) const override;

 private:
  std::map<LabelValues, double> series_;
};

class HistogramFamily final : public Family {
 public:
  // `buckets` are the upper bounds, ascending; +Inf is implied.
  HistogramFamily(std::string name, std::string help, std::vector<std::string> labels,
                  std::vector<double> buckets);
  void Observe(double v, const LabelValues& values = {});
  void Render(std::string& out) const override;

 private:
  struct Series {
    std::vector<uint64_t> counts;  // per bucket, not cumulative; last is +Inf
    double sum = 0;
    uint64_t count = 0;
  };
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
