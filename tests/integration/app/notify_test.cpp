// sd_notify from the real daemon: a unix datagram socket stands in for systemd's
// NOTIFY_SOCKET, and the test reads what the daemon tells it and when.
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "daemon_fixture.h"

namespace journeyd {
namespace {

using testing::Daemon;
namespace fs = std::filesystem;

class Notify : public Daemon {
 protected:
  int sock_ = -1;
  std::string path_;
  std::vector<std::string> lines_;  // every assignment received, in order

  void SetUp() override {
    Daemon::SetUp();
    // sun_path holds 108 bytes: a short name rather than one under the test's directory.
    static int n = 0;
    path_ = "/tmp/journeyd-notify-" + std::to_string(::getpid()) + "-" + std::to_string(++n);
    ::unlink(path_.c_str());
    sock_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(sock_, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_.c_str());
    ASSERT_EQ(::bind(sock_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    // The daemon inherits the environment of the fork in Spawn().
    ::setenv("NOTIFY_SOCKET", path_.c_str(), 1);
    ::unsetenv("WATCHDOG_USEC");
    ::unsetenv("WATCHDOG_PID");
  }

  void TearDown() override {
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
    ::unsetenv("JOURNAL_STREAM");
    Daemon::TearDown();
    if (sock_ >= 0) ::close(sock_);
    ::unlink(path_.c_str());
  }

  // Reads datagrams for up to `limit`, until `line` has arrived `times` times in all.
  bool Receive(const std::string& line, std::chrono::milliseconds limit, size_t times = 1) {
    auto until = std::chrono::steady_clock::now() + limit;
    for (;;) {
      if (Seen(line) >= times) return true;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{sock_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[4096];
      ssize_t got = ::recv(sock_, buf, sizeof buf, 0);
      if (got <= 0) continue;
      std::stringstream ss(std::string(buf, static_cast<size_t>(got)));
      for (std::string l; std::getline(ss, l);) lines_.push_back(l);
    }
  }

  size_t Seen(const std::string& line) const {
    return static_cast<size_t>(std::count(lines_.begin(), lines_.end(), line));
  }

  std::string Lines() const {
    std::string all;
    for (const auto& l : lines_) all += l + "\n";
    return all;
  }

  bool Ready() { return HttpGet("/readyz").find(" 200 ") != std::string::npos; }
};

TEST_F(Notify, ReadyOnlyOnceThePartitionIsOwnedAndStoppingOnSigterm) {
  // Another instance holds the partition: the daemon runs but must not claim readiness.
  Cmd({"SET", "journeyd:{0}:lease", "someone-else", "PX", "60000"});
  WriteConfig(1);
  Start();
  EXPECT_FALSE(Receive("READY=1", std::chrono::milliseconds(2500))) << Lines();
  EXPECT_FALSE(Ready());
  bool status_before = false;
  for (const auto& l : lines_) status_before |= l.rfind("STATUS=0/1 partition(s) owned", 0) == 0;
  EXPECT_TRUE(status_before) << Lines();

  Cmd({"DEL", "journeyd:{0}:lease"});
  ASSERT_TRUE(Receive("READY=1", std::chrono::seconds(15))) << Lines();
  // By the time systemd hears READY=1 the partition is ours.
  EXPECT_TRUE(Ready());
  EXPECT_NE(Cmd({"GET", "journeyd:{0}:lease"}).str, "someone-else");
  EXPECT_EQ(Seen("READY=1"), 1u);
  EXPECT_EQ(Seen("WATCHDOG=1"), 0u) << "no WATCHDOG_USEC, no pings";

  ::kill(pid_, SIGHUP);
  ASSERT_TRUE(Receive("READY=1", std::chrono::seconds(10), 2)) << Lines();
  auto reloading = std::find(lines_.begin(), lines_.end(), "RELOADING=1");
  ASSERT_NE(reloading, lines_.end()) << Lines();
  EXPECT_EQ(std::find(reloading, lines_.end(), "READY=1") != lines_.end(), true) << Lines();

  EXPECT_EQ(Stop(SIGTERM), 0);
  EXPECT_TRUE(Receive("STOPPING=1", std::chrono::seconds(1))) << Lines();
}

TEST_F(Notify, WatchdogIsPingedWhenSystemdAsksForIt) {
  ::setenv("WATCHDOG_USEC", "1000000", 1);
  WriteConfig(1);
  Start();
  // A ping every half second while the loop is healthy: three after READY=1. How soon a
  // sanitized daemon gets going on a busy machine varies, so the deadlines are generous.
  ASSERT_TRUE(Receive("READY=1", std::chrono::seconds(30))) << Lines();
  auto pings_since_ready = [&] {
    return std::count(std::find(lines_.begin(), lines_.end(), "READY=1"), lines_.end(),
                      "WATCHDOG=1");
  };
  while (pings_since_ready() < 3 &&
         Receive("WATCHDOG=1", std::chrono::seconds(30), Seen("WATCHDOG=1") + 1)) {
  }
  EXPECT_GE(pings_since_ready(), 3) << Lines();
  EXPECT_EQ(Stop(SIGTERM), 0);
}

TEST_F(Notify, LogsGoToTheJournalOnlyWhenStderrIsTheJournalStream) {
  WriteConfig(1);
  // The fixture's daemon appends its stderr to journeyd.log: name that file as the journal
  // stream, as systemd does, and the plain-text lines must not appear there.
  const fs::path log_file = dir_ / "journeyd.log";
  std::ofstream(log_file).flush();
  struct stat st {};
  ASSERT_EQ(::stat(log_file.c_str(), &st), 0);
  ::setenv("JOURNAL_STREAM", (std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino)).c_str(),
           1);
  Start();
  ASSERT_TRUE(Receive("READY=1", std::chrono::seconds(10))) << Lines();
  EXPECT_EQ(Stop(SIGTERM), 0);
  EXPECT_EQ(Read(log_file).find("admin.secret_file is not set"), std::string::npos)
      << Read(log_file);

  // Inherited from a parent whose stderr was the journal: not ours, plain text with times.
  ::setenv("JOURNAL_STREAM", (std::to_string(st.st_dev) + ":1").c_str(), 1);
  Start();
  ASSERT_TRUE(Receive("READY=1", std::chrono::seconds(10), 2)) << Lines();
  EXPECT_EQ(Stop(SIGTERM), 0);
  EXPECT_NE(Read(log_file).find(" warning admin.secret_file is not set"), std::string::npos)
      << Read(log_file);
}

}  // namespace
}  // namespace journeyd
