#include "journeyd/admin/metrics.h"

#include <fmt/format.h>

#include <cmath>

namespace journeyd::admin {

std::string EscapeLabelValue(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string EscapeHelp(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{}", static_cast<int64_t>(v));
  return fmt::format("{}", v);
}

void Family::RenderHeader(std::string& out) const {
  static constexpr std::string_view kTypes[] = {"counter", "gauge", "histogram"};
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name_, EscapeHelp(help_), name_,
                     kTypes[static_cast<int>(type_)]);
}

std::string Family::LabelText(const LabelValues& values) const {
  std::string out;
  for (size_t i = 0; i < labels_.size(); ++i) {
    out += out.empty() ? "{" : ",";
    out += fmt::format("{}=\"{}\"", labels_[i], EscapeLabelValue(values[i]));
  }
  return out;
}

namespace {

// Series keys always carry one value per label name.
LabelValues Normalize(const LabelValues& values, size_t n) {
  LabelValues v = values;
  v.resize(n);
  return v;
}

}  // namespace

double& ValueFamily::With(const LabelValues& values) {
  if (values.size() == labels_.size()) return series_[values];
  return series_[Normalize(values, labels_.size())];
}

void ValueFamily::Inc(const LabelValues& values, double by) {
  std::lock_guard lock(mu_);
  With(values) += by;
}

void ValueFamily::Set(const LabelValues& values, double v) {
  std::lock_guard lock(mu_);
  With(values) = v;
}

void ValueFamily::IncMany(const std::vector<std::pair<LabelValues, double>>& adds) {
  std::lock_guard lock(mu_);
  for (const auto& [values, by] : adds) With(values) += by;
}

double ValueFamily::Get(const LabelValues& values) const {
  std::lock_guard lock(mu_);
  auto it = series_.find(Normalize(values, labels_.size()));
  return it == series_.end() ? 0 : it->second;
}

void ValueFamily::Render(std::string& out) const {
  RenderHeader(out);
  std::lock_guard lock(mu_);
  for (const auto& [values, v] : series_) {
    std::string labels = LabelText(values);
    if (!labels.empty()) labels += "}";
    out += fmt::format("{}{} {}\n", name_, labels, FormatValue(v));
  }
}

HistogramFamily::HistogramFamily(std::string name, std::string help,
                                 std::vector<std::string> labels, std::vector<double> buckets)
    : Family(Type::kHistogram, std::move(name), std::move(help), std::move(labels)),
      buckets_(std::move(buckets)) {}

void HistogramFamily::Observe(double v, const LabelValues& values) {
  std::lock_guard lock(mu_);
  Add(series_[Normalize(values, labels_.size())], v);
}

void HistogramFamily::ObserveMany(const std::vector<double>& vs, const LabelValues& values) {
  if (vs.empty()) return;
  std::lock_guard lock(mu_);
  Series& s = series_[Normalize(values, labels_.size())];
  for (double v : vs) Add(s, v);
}

void HistogramFamily::Add(Series& s, double v) const {
  if (s.counts.empty()) s.counts.assign(buckets_.size() + 1, 0);
  size_t i = 0;
  while (i < buckets_.size() && v > buckets_[i]) ++i;
  ++s.counts[i];
  s.sum += v;
  ++s.count;
}

void HistogramFamily::Render(std::string& out) const {
  RenderHeader(out);
  std::lock_guard lock(mu_);
  for (const auto& [values, s] : series_) {
    std::string labels = LabelText(values);
    std::string open = labels.empty() ? "{" : labels + ",";
    std::string closed = labels.empty() ? "" : labels + "}";
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= buckets_.size(); ++i) {
      cumulative += s.counts[i];
      std::string le = i < buckets_.size() ? FormatValue(buckets_[i]) : "+Inf";
      out += fmt::format("{}_bucket{}le=\"{}\"}} {}\n", name_, open, le, cumulative);
    }
    out += fmt::format("{}_sum{} {}\n", name_, closed, FormatValue(s.sum));
    out += fmt::format("{}_count{} {}\n", name_, closed, s.count);
  }
}

ValueFamily& Registry::Counter(std::string name, std::string help,
                               std::vector<std::string> labels) {
  auto f = std::make_unique<ValueFamily>(Family::Type::kCounter, std::move(name), std::move(help),
                                         std::move(labels));
  auto& ref = *f;
  families_.push_back(std::move(f));
  return ref;
}

ValueFamily& Registry::Gauge(std::string name, std::string help, std::vector<std::string> labels) {
  auto f = std::make_unique<ValueFamily>(Family::Type::kGauge, std::move(name), std::move(help),
                                         std::move(labels));
  auto& ref = *f;
  families_.push_back(std::move(f));
  return ref;
}

HistogramFamily& Registry::Histogram(std::string name, std::string help,
                                     std::vector<double> buckets, std::vector<std::string> labels) {
  auto f = std::make_unique<HistogramFamily>(std::move(name), std::move(help), std::move(labels),
                                             std::move(buckets));
  auto& ref = *f;
  families_.push_back(std::move(f));
  return ref;
}

std::string Registry::Render() const {
  std::string out;
  for (const auto& f : families_) f->Render(out);
  return out;
}

std::string LabelCap::operator()(std::string_view value) {
  std::lock_guard lock(mu_);
  if (seen_.find(value) != seen_.end()) return std::string(value);
  if (seen_.size() >= max_) return "other";
  seen_.emplace(value);
  return std::string(value);
}

}  // namespace journeyd::admin
