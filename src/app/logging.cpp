#include "journeyd/app/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/systemd_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>

namespace journeyd::app {

namespace {

// The journal sink, falling back to stderr (with the priority as a "<N>" prefix, which the
// journal's stream reader understands) when a send fails: a full or restarting journald must
// not lose the line or, through spdlog's exception, the batch that logged it.
class JournalSink final : public spdlog::sinks::systemd_sink<std::mutex> {
 public:
  JournalSink() : systemd_sink("journeyd") {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    try {
      systemd_sink::sink_it_(msg);
    } catch (const spdlog::spdlog_ex&) {
      std::fprintf(stderr, "<%d>%.*s\n", syslog_level(msg.level),
                   static_cast<int>(msg.payload.size()), msg.payload.data());
    }
  }
};

}  // namespace

bool StderrIsJournal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  if (!stream) return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(stream, "%llu:%llu", &dev, &ino) != 2) return false;
  struct stat st {};
  if (::fstat(STDERR_FILENO, &st) != 0) return false;
  return static_cast<unsigned long long>(st.st_dev) == dev &&
         static_cast<unsigned long long>(st.st_ino) == ino;
}

void SetupLogging(const std::string& level) {
  std::shared_ptr<spdlog::logger> logger;
  if (StderrIsJournal()) {
    // The journal stamps time, priority and unit itself: the message alone.
    logger = std::make_shared<spdlog::logger>("journeyd", std::make_shared<JournalSink>());
  } else {
    logger = std::make_shared<spdlog::logger>(
        "journeyd", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v");
  }
  // A log line that cannot be written must never take the daemon down; say so, rarely.
  logger->set_error_handler([](const std::string& what) {
    static std::atomic<int> reported{0};
    if (reported++ < 10) std::fprintf(stderr, "journeyd: logging failed: %s\n", what.c_str());
  });
  spdlog::set_default_logger(logger);
  ApplyLogLevel(level);
}

bool ApplyLogLevel(const std::string& level) {
  auto l = spdlog::level::from_str(level);
  // from_str maps anything unknown to off; only "off" itself may mean off.
  if (l == spdlog::level::off && level != "off") return false;
  spdlog::set_level(l);
  return true;
}

}  // namespace journeyd::app
