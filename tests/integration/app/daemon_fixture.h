// A fixture that runs the real journeyd binary against a real redis-server (and, when a test
// asks, a real SMTP peer): config writing, start/stop, publishing, reading keys and mails.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "../redis_server.h"
#include "journeyd/common/time.h"
#include "journeyd/engine/state_codec.h"
#include "journeyd/store/keys.h"
#include "journeyd/store/outbox.h"
#include "journeyd/store/sync.h"

namespace journeyd::testing {

namespace fs = std::filesystem;
using store::Reply;

class Daemon : public ::testing::Test {
 protected:
  testing::RedisServer redis_;
  fs::path dir_;
  int admin_port_ = 0;
  pid_t pid_ = -1;
  pid_t second_pid_ = -1;
  int64_t anchor_ = 0;      // the daemon's clock anchor, read once
  int partitions_ = 1;      // redis.partitions in WriteConfig
  int worker_threads_ = 0;  // redis.worker_threads (0: the daemon picks)
  std::unique_ptr<store::SyncRedis> client_;
  std::string smtp_config_;    // the config's smtp section when a test sets it
  int daemon_redis_port_ = 0;  // the port the daemon is told Redis is on (a proxy's), if set

  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("journeyd-it-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "mail");
    admin_port_ = testing::FreeLoopbackPort();
    store::RedisOptions o;
    o.port = redis_.port();
    std::string err;
    client_ = store::SyncRedis::Connect(o, &err);
    ASSERT_TRUE(client_) << err;
  }

  void TearDown() override {
    Stop(SIGKILL);
    std::swap(pid_, second_pid_);
    Stop(SIGKILL);
    if (!HasFailure()) fs::remove_all(dir_);  // kept for a look at journeyd.log
  }

  void WriteConfig(double scale, const std::string& name = "journeyd.yaml", int admin_port = 0) {
    if (admin_port == 0) admin_port = admin_port_;
    std::ofstream(dir_ / name) << "redis: { port: "
                               << (daemon_redis_port_ ? daemon_redis_port_ : redis_.port())
                               << ", lease_ms: 2000, partitions: " << partitions_
                               << ", worker_threads: " << worker_threads_ << " }\n"
                               << "flows: { dir: " << JOURNEYD_SOURCE_DIR << "/flows }\n"
                               << (smtp_config_.empty()
                                       ? "smtp: { mode: file, dir: " + (dir_ / "mail").string() +
                                             ", from: \"Shop <news@shop.example>\" }\n"
                                       : smtp_config_)
                               << "admin: { listen: \"127.0.0.1:" << admin_port << "\" }\n"
                               << "clock: { scale: " << scale << " }\n"
                               << "log: { level: warn }\n";
  }

  void Start(const std::string& name = "journeyd.yaml") { pid_ = Spawn(name); }

  pid_t Spawn(const std::string& name) {
    pid_t pid = ::fork();
    if (pid == 0) {
      std::string bin = std::string(JOURNEYD_BINARY_DIR) + "/src/journeyd";
      std::string cfg = (dir_ / name).string();
      std::string log = (dir_ / "journeyd.log").string();
      FILE* f = std::freopen(log.c_str(), "a", stderr);
      (void)f;
      ::dup2(2, 1);
      ::execl(bin.c_str(), bin.c_str(), "-c", cfg.c_str(), nullptr);
      ::_exit(127);
    }
    return pid;
  }

  int Stop(int sig) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, sig);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }

  // To the customer's partition: the field after "customer_id" names it (else partition 0).
  std::string Publish(std::vector<std::string> fields) {
    int partition = 0;
    for (size_t i = 0; i + 1 < fields.size(); ++i) {
      if (fields[i] == "customer_id") partition = store::PartitionOf(fields[i + 1], partitions_);
    }
    std::vector<std::string> cmd = {"XADD", store::Keys("journeyd", partition).events(), "*"};
    for (auto& f : fields) cmd.push_back(std::move(f));
    std::string err;
    auto r = client_->Command(cmd, &err);
    EXPECT_TRUE(r && !r->is_error()) << err;
    return r ? r->str : "";
  }

  // The daemon's virtual time (clock.scale from the anchor it keeps in Redis).
  int64_t VirtualNow(double scale) {
    if (anchor_ == 0) anchor_ = std::stoll(Cmd({"GET", "journeyd:clock_anchor"}).str);
    const int64_t anchor = anchor_;
    int64_t real = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
    return anchor + static_cast<int64_t>(static_cast<double>(real - anchor) * scale);
  }

  // When customer `id` entered the journey of `flow` on the daemon's clock (ms since the epoch),
  // as its stored state says; nullopt while the state holds no such journey.
  std::optional<int64_t> JourneyEntered(const std::string& id, const std::string& flow) {
    Reply r =
        Cmd({"GET", store::Keys("journeyd", store::PartitionOf(id, partitions_)).customer(id)});
    if (r.type != Reply::Type::kString) return std::nullopt;
    engine::CustomerState state;
    std::string err;
    EXPECT_TRUE(engine::DecodeState(r.str, &state, &err)) << err;
    for (const auto& j : state.journeys) {
      if (j.flow == flow) return ToUnixMillis(j.entered_at);
    }
    return std::nullopt;
  }

  static std::map<std::string, std::string> Fields(const Reply& entry) {
    std::map<std::string, std::string> f;
    const auto& kv = entry.elements[1].elements;
    for (size_t i = 0; i + 1 < kv.size(); i += 2) f[kv[i].str] = kv[i + 1].str;
    return f;
  }

  // As Fields, with a send job's `job` field read into "step" and "at" as well
  // (store/outbox.h); a `job` field that cannot be read fails the test.
  static std::map<std::string, std::string> JobFields(const Reply& entry) {
    std::map<std::string, std::string> f = Fields(entry);
    if (f.count("job") == 0) return f;
    engine::SendJob j;
    std::string err;
    EXPECT_TRUE(store::ReadOutboxJob(f["job"], &j, &err)) << err << ": " << f["job"];
    f["step"] = j.step;
    f["at"] = FormatRfc3339(j.at);
    return f;
  }

  // Every job in the outbox appears once, and there is one per customer.
  void ExpectOneMailPerCustomer(int customers) {
    Reply out = Cmd({"XRANGE", "journeyd:{0}:outbox", "-", "+"});
    std::set<std::string> jobs, seen;
    for (const Reply& e : out.elements) {
      const auto& f = e.elements[1].elements;
      for (size_t i = 0; i + 1 < f.size(); i += 2) {
        if (f[i].str == "job_id") {
          EXPECT_TRUE(jobs.insert(f[i + 1].str).second) << "job twice: " << f[i + 1].str;
        }
        if (f[i].str == "customer_id") seen.insert(f[i + 1].str);
      }
    }
    EXPECT_EQ(jobs.size(), static_cast<size_t>(customers));
    EXPECT_EQ(seen.size(), static_cast<size_t>(customers));
  }

  Reply Cmd(std::vector<std::string> cmd) {
    std::string err;
    auto r = client_->Command(cmd, &err);
    EXPECT_TRUE(r) << err;
    return r.value_or(Reply{});
  }

  std::vector<fs::path> Mails() {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(dir_ / "mail")) {
      if (e.path().extension() == ".eml") out.push_back(e.path());
    }
    return out;
  }

  template <typename Pred>
  bool WaitFor(Pred pred, std::chrono::milliseconds limit = std::chrono::seconds(30)) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
      if (pred()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return pred();
  }

  static std::string Read(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  static std::string Header(const std::string& mail, const std::string& name) {
    auto at = mail.find("\r\n" + name + ": ");
    if (at == std::string::npos) return "";
    at += name.size() + 4;
    return mail.substr(at, mail.find("\r\n", at) - at);
  }

  // Sends `request` as it is (any method, any headers, oversized or malformed) and returns
  // everything the server answers until it closes. "" when the connection fails.
  std::string HttpRaw(const std::string& request) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(admin_port_));
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd);
      return "";
    }
    // The server may refuse and stop reading early: no SIGPIPE, and keep what it answered.
    for (size_t sent = 0; sent < request.size();) {
      ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }
    std::string resp;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) resp.append(buf, static_cast<size_t>(n));
    ::close(fd);
    return resp;
  }

  // The status code of a raw HTTP response, 0 when there is none.
  static int Status(const std::string& response) {
    if (response.rfind("HTTP/1.1 ", 0) != 0 || response.size() < 12) return 0;
    return std::atoi(response.substr(9, 3).c_str());
  }

  // The body of a raw HTTP response (after the blank line).
  static std::string Body(const std::string& response) {
    auto at = response.find("\r\n\r\n");
    return at == std::string::npos ? "" : response.substr(at + 4);
  }

  std::string HttpGet(const std::string& path) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(admin_port_));
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd);
      return "";
    }
    std::string req = "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    (void)!::write(fd, req.data(), req.size());
    std::string resp;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) resp.append(buf, static_cast<size_t>(n));
    ::close(fd);
    return resp;
  }
};

inline constexpr const char* kAnna =
    R"({"email":"anna@example.com","first_name":"Anna","email_opt_in":true})";

}  // namespace journeyd::testing
