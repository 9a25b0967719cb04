#include "journeyd/app/config.h"

#include <yaml-cpp/yaml.h>
#include <array>

#include <fmt/format.h>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <vector>

namespace journeyd::app {
namespace {

namespace fs = std::filesystem;

struct Ctx {
  std::string file;
  std::string base_dir;
  Diagnostics& diags;
  Config& cfg;

  SourceLocation At(const YAML::Node& n) const {
    auto m = n.Mark();
    if (m.is_null()) return {file, 1, 1};
    return {file, m.line + 1, m.column + 1};
  }
  void Error(const YAML::Node& n, std::string msg) const { diags.Error(At(n), std::move(msg)); }

  std::string Path(const std::string& p) const {
    if (p.empty() || fs::path(p).is_absolute() || base_dir.empty()) return p;
    return (fs::path(base_dir) / p).lexically_normal().string();
  }
};

using Setter = std::function<void(const Ctx&, const std::string& key, const YAML::Node&)>;

bool Scalar(const Ctx& c, const std::string& key, const YAML::Node& n, std::string* out) {
  if (!n.IsScalar()) {
    c.Error(n, fmt::format("{}: expected a single value", key));
    return false;
  }
  *out = n.Scalar();
  return true;
}

Setter Str(std::function<std::string&(Config&)> field) {
  return [field](const Ctx& c, const std::string& key, const YAML::Node& n) {
    std::string v;
    if (Scalar(c, key, n, &v)) field(c.cfg) = v;
  };
}

Setter PathValue(std::function<std::string&(Config&)> field) {
  return [field](const Ctx& c, const std::string& key, const YAML::Node& n) {
    std::string v;
    if (!Scalar(c, key, n, &v)) return;
    if (v.empty()) {
      c.Error(n, fmt::format("{}: expected a path", key));
      return;
    }
    field(c.cfg) = c.Path(v);
  };
}

Setter OneOf(std::function<std::string&(Config&)> field, std::vector<std::string> allowed) {
  return [field, allowed](const Ctx& c, const std::string& key, const YAML::Node& n) {
    std::string v;
    if (!Scalar(c, key, n, &v)) return;
    for (const auto& a : allowed) {
      if (a == v) {
        field(c.cfg) = v;
        return;
      }
    }
    std::string list;
    for (size_t i = 0; i < allowed.size(); ++i) list += (i ? ", " : "") + allowed[i];
    c.Error(n, fmt::format("{}: '{}' is not one of {}", key, v, list));
  };
}

Setter Int(std::function<int&(Config&)> field, int lo, int hi) {
  return [field, lo, hi](const Ctx& c, const std::string& key, const YAML::Node& n) {
    std::string v;
    if (!Scalar(c, key, n, &v)) return;
    int x = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
    if (ec != std::errc() || p != v.data() + v.size()) {
      c.Error(n, fmt::format("{}: expected a whole number, got '{}'", key, v));
      return;
    }
    if (x < lo || x > hi) {
      c.Error(n, fmt::format("{}: {} is out of range ({} to {})", key, x, lo, hi));
      return;
    }
    field(c.cfg) = x;
  };
}

Setter Double(std::function<double&(Config&)> field, double lo, double hi) {
  return [field, lo, hi](const Ctx& c, const std::string& key, const YAML::Node& n) {
    std::string v;
    if (!Scalar(c, key, n, &v)) return;
    double x = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
    if (ec != std::errc() || p != v.data() + v.size() || !std::isfinite(x)) {
      c.Error(n, fmt::format("{}: expected a number, got '{}'", key, v));
      return;
    }
    if (x < lo || x > hi) {
      c.Error(n, fmt::format("{}: {} is out of range ({} to {})", key, v, lo, hi));
      return;
    }
    field(c.cfg) = x;
  };
}

Setter Bool(std::function<bool&(Config&)> field) {
  return [field](const Ctx& c, const std::string& key, const YAML::Node& n) {
    std::string v;
    if (!Scalar(c, key, n, &v)) return;
    if (v == "true" || v == "yes" || v == "on") {
      field(c.cfg) = true;
    } else if (v == "false" || v == "no" || v == "off") {
      field(c.cfg) = false;
    } else {
      c.Error(n, fmt::format("{}: expected true or false, got '{}'", key, v));
    }
  };
}

Setter Dur(std::function<Duration&(Config&)> field) {
  return [field](const Ctx& c, const std::string& key, const YAML::Node& n) {
    std::string v, err;
    if (!Scalar(c, key, n, &v)) return;
    auto d = ParseDuration(v, &err);
    if (!d) {
      c.Error(n, fmt::format("{}: {}", key, err));
      return;
    }
    if (d->count() <= 0) {
      c.Error(n, fmt::format("{}: must be a positive duration", key));
      return;
    }
    field(c.cfg) = *d;
  };
}

// Four ascending numbers, each at least 0: the bounds of RFM scores 2 to 5 (rfm.*).
Setter Thresholds(std::function<std::array<double, 4>&(Config&)> field) {
  return [field](const Ctx& c, const std::string& key, const YAML::Node& n) {
    if (!n.IsSequence() || n.size() != 4) {
      c.Error(
          n, fmt::format("{}: expected a list of 4 ascending numbers, such as [2, 3, 5, 10]", key));
      return;
    }
    std::array<double, 4> t{};
    for (size_t i = 0; i < 4; ++i) {
      const std::string v = n[i].IsScalar() ? n[i].Scalar() : "";
      auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), t[i]);
      if (ec != std::errc() || p != v.data() + v.size() || !std::isfinite(t[i]) || t[i] < 0) {
        c.Error(n[i], fmt::format("{}: expected a number of at least 0, got '{}'", key, v));
        return;
      }
      if (i > 0 && t[i] <= t[i - 1]) {
        c.Error(n[i], fmt::format("{}: the numbers must ascend ({} is not above {})", key, v,
                                  n[i - 1].Scalar()));
        return;
      }
    }
    field(c.cfg) = t;
  };
}

bool ReadSecret(const Ctx& c, const std::string& key, const YAML::Node& n, const std::string& path,
                std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    c.Error(n, fmt::format("{}: cannot read '{}'", key, path));
    return false;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  if (s.empty()) {
    c.Error(n, fmt::format("{}: '{}' is empty", key, path));
    return false;
  }
  *out = std::move(s);
  return true;
}

Setter SecretFile(std::function<std::string&(Config&)> field,
                  std::function<std::string&(Config&)> path_field = nullptr) {
  return [field, path_field](const Ctx& c, const std::string& key, const YAML::Node& n) {
    std::string v;
    if (!Scalar(c, key, n, &v)) return;
    std::string path = c.Path(v);
    if (path_field) path_field(c.cfg) = path;
    std::string secret;
    if (ReadSecret(c, key, n, path, &secret)) field(c.cfg) = std::move(secret);
  };
}

bool ParseClock(std::string_view s, int* minutes) {
  int h = 0, m = 0;
  if (s.size() != 5 || s[2] != ':') return false;
  auto r1 = std::from_chars(s.data(), s.data() + 2, h);
  auto r2 = std::from_chars(s.data() + 3, s.data() + 5, m);
  if (r1.ec != std::errc() || r2.ec != std::errc() || h > 23 || m > 59 || h < 0 || m < 0) {
    return false;
  }
  *minutes = h * 60 + m;
  return true;
}

void QuietHours(const Ctx& c, const std::string& key, const YAML::Node& n) {
  std::string v;
  if (!Scalar(c, key, n, &v)) return;
  if (v.empty() || v == "none" || v == "off") {
    c.cfg.policy.quiet_hours.reset();
    return;
  }
  int a = 0, b = 0;
  auto dash = v.find('-');
  if (dash == std::string::npos || !ParseClock(v.substr(0, dash), &a) ||
      !ParseClock(v.substr(dash + 1), &b)) {
    c.Error(n, fmt::format("{}: expected HH:MM-HH:MM such as 21:00-08:00, got '{}'", key, v));
    return;
  }
  c.cfg.policy.quiet_hours = std::make_pair(a, b);
}

void FrequencyCap(const Ctx& c, const std::string& key, const YAML::Node& n) {
  std::string v;
  if (!Scalar(c, key, n, &v)) return;
  if (v.empty() || v == "none" || v == "off") {
    c.cfg.policy.frequency_cap.reset();
    return;
  }
  // "1/24h" or "1 per 24h"
  std::string count_text, window_text;
  if (auto slash = v.find('/'); slash != std::string::npos) {
    count_text = v.substr(0, slash);
    window_text = v.substr(slash + 1);
  } else if (auto per = v.find(" per "); per != std::string::npos) {
    count_text = v.substr(0, per);
    window_text = v.substr(per + 5);
  }
  int count = 0;
  auto [p, ec] = std::from_chars(count_text.data(), count_text.data() + count_text.size(), count);
  std::string err;
  auto window = ParseDuration(window_text, &err);
  if (count_text.empty() || ec != std::errc() || p != count_text.data() + count_text.size() ||
      count <= 0 || !window || window->count() <= 0) {
    c.Error(n, fmt::format("{}: expected COUNT/DURATION such as 1/24h (at most 1 marketing mail "
                           "a day), got '{}'",
                           key, v));
    return;
  }
  c.cfg.policy.frequency_cap = std::make_pair(count, *window);
}

const std::map<std::string, Setter>& Keys() {
  static const std::map<std::string, Setter> keys = {
      {"redis.host", Str([](Config& c) -> std::string& { return c.redis.host; })},
      {"rfm.recency_days",
       Thresholds([](Config& c) -> std::array<double, 4>& { return c.rfm.recency_days; })},
      {"rfm.frequency",
       Thresholds([](Config& c) -> std::array<double, 4>& { return c.rfm.frequency; })},
      {"rfm.monetary",
       Thresholds([](Config& c) -> std::array<double, 4>& { return c.rfm.monetary; })},
      {"redis.port", Int([](Config& c) -> int& { return c.redis.port; }, 1, 65535)},
      {"redis.password", Str([](Config& c) -> std::string& { return c.redis.password; })},
      {"redis.password_file",
       SecretFile([](Config& c) -> std::string& { return c.redis.password; })},
      {"redis.prefix", Str([](Config& c) -> std::string& { return c.redis.prefix; })},
      {"redis.partitions", Int([](Config& c) -> int& { return c.redis.partitions; }, 1, 1024)},
      {"redis.worker_threads",
       Int([](Config& c) -> int& { return c.redis.worker_threads; }, 0, 1024)},
      {"redis.lease_ms", Int([](Config& c) -> int& { return c.redis.lease_ms; }, 1000, 600000)},
      {"flows.dir", PathValue([](Config& c) -> std::string& { return c.flows.dir; })},
      {"smtp.mode", OneOf([](Config& c) -> std::string& { return c.smtp.mode; }, {"file", "smtp"})},
      {"smtp.host", Str([](Config& c) -> std::string& { return c.smtp.host; })},
      {"smtp.port", Int([](Config& c) -> int& { return c.smtp.port; }, 1, 65535)},
      {"smtp.from", Str([](Config& c) -> std::string& { return c.smtp.from; })},
      {"smtp.dir", PathValue([](Config& c) -> std::string& { return c.smtp.dir; })},
      {"smtp.tls",
       OneOf([](Config& c) -> std::string& { return c.smtp.tls; }, {"starttls", "tls", "none"})},
      {"smtp.tls_verify", Bool([](Config& c) -> bool& { return c.smtp.tls_verify; })},
      {"smtp.username", Str([](Config& c) -> std::string& { return c.smtp.username; })},
      {"smtp.password_file", SecretFile([](Config& c) -> std::string& { return c.smtp.password; })},
      {"smtp.connections", Int([](Config& c) -> int& { return c.smtp.connections; }, 1, 64)},
      {"smtp.rate_per_sec",
       Double([](Config& c) -> double& { return c.smtp.rate_per_sec; }, 0, 1e6)},
      {"smtp.max_attempts", Int([](Config& c) -> int& { return c.smtp.max_attempts; }, 1, 100)},
      {"smtp.max_age", Dur([](Config& c) -> Duration& { return c.smtp.max_age; })},
      {"smtp.unsubscribe_mailto",
       Str([](Config& c) -> std::string& { return c.smtp.unsubscribe_mailto; })},
      {"smtp.tls_ca_file", PathValue([](Config& c) -> std::string& { return c.smtp.tls_ca_file; })},
      {"smtp.helo_name", Str([](Config& c) -> std::string& { return c.smtp.helo_name; })},
      {"smtp.retry_delay", Dur([](Config& c) -> Duration& { return c.smtp.retry_delay; })},
      {"smtp.command_timeout", Dur([](Config& c) -> Duration& { return c.smtp.command_timeout; })},
      {"smtp.data_timeout", Dur([](Config& c) -> Duration& { return c.smtp.data_timeout; })},
      {"admin.listen", Str([](Config& c) -> std::string& { return c.admin.listen; })},
      {"admin.public_url", Str([](Config& c) -> std::string& { return c.admin.public_url; })},
      {"admin.secret_file",
       SecretFile([](Config& c) -> std::string& { return c.admin.secret; },
                  [](Config& c) -> std::string& { return c.admin.secret_file; })},
      {"policy.timezone", Str([](Config& c) -> std::string& { return c.policy.timezone; })},
      {"policy.quiet_hours", QuietHours},
      {"policy.frequency_cap", FrequencyCap},
      {"clock.scale", Double([](Config& c) -> double& { return c.clock_scale; }, 1e-3, 1e9)},
      {"log.level", OneOf([](Config& c) -> std::string& { return c.log_level; },
                          {"trace", "debug", "info", "warn", "error", "critical", "off"})},
  };
  return keys;
}

std::vector<std::string_view> KeyNames() {
  std::vector<std::string_view> out;
  for (const auto& [k, v] : Keys()) out.push_back(k);
  return out;
}

// Walks nested mappings ("redis: { host: x }") and dotted keys ("redis.host: x") alike.
void Walk(const Ctx& c, const YAML::Node& node, const std::string& prefix,
          std::set<std::string>& seen) {
  for (auto it = node.begin(); it != node.end(); ++it) {
    if (!it->first.IsScalar()) {
      c.Error(it->first, "a config key must be a plain word");
      continue;
    }
    std::string key = prefix.empty() ? it->first.Scalar() : prefix + "." + it->first.Scalar();
    const YAML::Node value = it->second;
    auto setter = Keys().find(key);
    if (setter != Keys().end()) {
      if (!seen.insert(key).second) {
        c.Error(it->first, fmt::format("{}: given twice", key));
        continue;
      }
      setter->second(c, key, value);
      continue;
    }
    if (value.IsMap()) {
      bool is_section = false;
      for (const auto& [k, s] : Keys()) {
        if (k.rfind(key + ".", 0) == 0) is_section = true;
      }
      if (is_section) {
        Walk(c, value, key, seen);
        continue;
      }
    }
    auto names = KeyNames();
    c.Error(it->first, fmt::format("unknown config key '{}'{}", key, DidYouMean(key, names)));
  }
}

}  // namespace

std::optional<Config> ParseConfig(const std::string& text, const std::string& file_label,
                                  const std::string& base_dir, Diagnostics& diags) {
  Config cfg;
  cfg.file = file_label;
  if (const char* p = std::getenv("REDIS_PASSWORD"); p && *p) cfg.redis.password = p;
  if (const char* p = std::getenv("SMTP_PASSWORD"); p && *p) cfg.smtp.password = p;
  if (const char* p = std::getenv("JOURNEYD_ADMIN_SECRET"); p && *p) cfg.admin.secret = p;
  Ctx c{file_label, base_dir, diags, cfg};
  cfg.flows.dir = c.Path(cfg.flows.dir);
  cfg.smtp.dir = c.Path(cfg.smtp.dir);
  int before = diags.error_count();
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    diags.Error({file_label, e.mark.line + 1, e.mark.column + 1},
                fmt::format("invalid YAML: {}", e.msg));
    return std::nullopt;
  }
  if (root.IsDefined() && !root.IsNull()) {
    if (!root.IsMap()) {
      diags.Error(c.At(root), "the config file must be a mapping of keys such as redis.host");
      return std::nullopt;
    }
    std::set<std::string> seen;
    Walk(c, root, "", seen);
  }
  if (cfg.admin.public_url.empty()) cfg.admin.public_url = "http://" + cfg.admin.listen;
  while (!cfg.admin.public_url.empty() && cfg.admin.public_url.back() == '/') {
    cfg.admin.public_url.pop_back();
  }
  // Checks across keys.
  if (cfg.redis.prefix.empty() ||
      cfg.redis.prefix.find_first_of("{} \r\n\t") != std::string::npos) {
    diags.Error({file_label, 0, 0}, "redis.prefix must be non-empty without braces or spaces");
  }
  if (cfg.admin.listen.rfind(':') == std::string::npos) {
    diags.Error({file_label, 0, 0},
                fmt::format("admin.listen '{}' must be HOST:PORT", cfg.admin.listen));
  }
  if (cfg.admin.public_url.rfind("http://", 0) != 0 &&
      cfg.admin.public_url.rfind("https://", 0) != 0) {
    diags.Error({file_label, 0, 0}, "admin.public_url must start with http:// or https://");
  }
  if (cfg.smtp.mode == "smtp" && !cfg.smtp.username.empty() && cfg.smtp.password.empty()) {
    diags.Error({file_label, 0, 0},
                "smtp.username is set but no password: set smtp.password_file or SMTP_PASSWORD");
  }
  if (diags.error_count() > before) return std::nullopt;
  return cfg;
}

store::RedisOptions RedisOptionsOf(const Config& config) {
  store::RedisOptions o;
  o.host = config.redis.host;
  o.port = config.redis.port;
  o.password = config.redis.password;
  return o;
}

std::optional<Config> LoadConfig(const std::string& path, Diagnostics& diags) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    diags.Error({path, 0, 0}, "cannot read the config file");
    return std::nullopt;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string base = fs::path(path).parent_path().string();
  if (base.empty()) base = ".";
  return ParseConfig(ss.str(), path, base, diags);
}

}  // namespace journeyd::app
