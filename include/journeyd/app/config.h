// journeyd's one config file (docs/operations.md, "Configuration"). Every key is typed and has a
// default; unknown keys and wrong types are errors naming the key and its line. Relative paths are
// taken from the config file's directory.
#pragma once

#include <optional>
#include <string>

#include "journeyd/common/diagnostics.h"
#include "journeyd/common/time.h"
#include "journeyd/engine/rfm.h"
#include "journeyd/store/redis.h"

namespace journeyd::app {

struct Config {
  std::string file;  // where it was loaded from ("" for the embedded defaults)

  struct Redis {
    std::string host = "127.0.0.1";
    int port = 6379;
    std::string password;  // from redis.password, redis.password_file or REDIS_PASSWORD
    std::string prefix = "journeyd";
    int partitions = 1;
    int worker_threads = 0;  // 0: WorkerThreads picks (app/daemon.h)
    int lease_ms = 10000;
  } redis;

  struct Flows {
    std::string dir = "flows";
  } flows;

  struct Smtp {
    std::string mode = "file";  // file | smtp
    std::string host = "127.0.0.1";
    int port = 25;
    std::string from = "journeyd <journeyd@localhost>";
    std::string dir = "mail";      // smtp.mode: file
    std::string tls = "starttls";  // starttls | tls | none
    bool tls_verify = true;
    std::string username;
    std::string password;  // from smtp.password_file or SMTP_PASSWORD
    int connections = 4;
    double rate_per_sec = 0;  // 0: no limit
    int max_attempts = 8;
    Duration max_age = 24 * kHour;
    std::string unsubscribe_mailto;
    std::string tls_ca_file;                 // a private CA to trust besides the system's
    std::string helo_name;                   // default: this machine's host name
    Duration retry_delay = kMinute;          // first retry; doubles each attempt, at most 1 h
    Duration command_timeout = 5 * kMinute;  // RFC 5321 §4.5.3.2
    Duration data_timeout = 10 * kMinute;    // waiting for the reply to the final dot
  } smtp;

  struct Admin {
    std::string listen = "127.0.0.1:8725";
    std::string public_url;  // default "http://" + listen
    std::string secret;      // from admin.secret_file or JOURNEYD_ADMIN_SECRET
    std::string secret_file;
  } admin;

  struct Policy {
    std::string timezone = "UTC";
    std::optional<std::pair<int, int>> quiet_hours;         // local minutes [start, end)
    std::optional<std::pair<int, Duration>> frequency_cap;  // count per window
  } policy;

  // rfm.recency_days, rfm.frequency, rfm.monetary: customer.rfm.* (engine/rfm.h).
  engine::RfmThresholds rfm;

  double clock_scale = 1;
  std::string log_level = "info";
};

// The Redis connection settings of a config.
store::RedisOptions RedisOptionsOf(const Config& config);

// Loads and checks a config file. Every problem goes to `diags`; returns nullopt when any
// is an error. Secrets are read from their files here and never printed.
std::optional<Config> LoadConfig(const std::string& path, Diagnostics& diags);

// The same from text (tests, embedded defaults). `base_dir` resolves relative paths.
std::optional<Config> ParseConfig(const std::string& text, const std::string& file_label,
                                  const std::string& base_dir, Diagnostics& diags);

}  // namespace journeyd::app
