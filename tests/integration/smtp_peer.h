// A real SMTP server for integration tests: tests/integration/smtp_server.py (aiosmtpd) as a
// private process on a free loopback port, storing what it accepts as <n>.eml files and
// logging AUTH/RCPT/DATA outcomes, plus a self-signed certificate for the TLS tests.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "redis_server.h"

namespace journeyd::testing {

class SmtpPeer {
 public:
  // `flags`: the server's options (see smtp_server.py), e.g. {"--reject", "x@y.example"}.
  explicit SmtpPeer(std::vector<std::string> flags = {}, int port = 0)
      : flags_(std::move(flags)), port_(port ? port : FreeLoopbackPort()) {
    dir_ = std::filesystem::temp_directory_path() /
           ("journeyd-smtp-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    std::filesystem::create_directories(dir_ / "mail");
    Start();
  }
  ~SmtpPeer() {
    Stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  int port() const { return port_; }
  std::filesystem::path mail_dir() const { return dir_ / "mail"; }
  std::filesystem::path dir() const { return dir_; }

  void Start(std::vector<std::string> flags) {
    flags_ = std::move(flags);
    Start();
  }

  void Start() {
    pid_ = ::fork();
    if (pid_ == 0) {
      std::vector<std::string> args = {
          "/usr/bin/python3",
          std::string(JOURNEYD_SOURCE_DIR) + "/tests/integration/smtp_server.py",
          "--port",
          std::to_string(port_),
          "--dir",
          mail_dir().string(),
          "--log",
          (dir_ / "smtp.log").string()};
      for (const auto& f : flags_) args.push_back(f);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      std::string out = (dir_ / "server.out").string();
      FILE* f = std::freopen(out.c_str(), "a", stdout);
      (void)f;
      ::dup2(1, 2);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    for (int i = 0; i < 1000 && !PortAcceptsConnections(port_); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  void Stop(int sig = SIGTERM) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  // True once the server process has ended on its own (e.g. --die-after-data).
  bool Exited() {
    if (pid_ <= 0) return true;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return true;
    }
    return false;
  }

  // The messages it accepted, in order.
  std::vector<std::string> Messages() const {
    std::vector<std::string> out;
    for (int n = 1;; ++n) {
      std::ifstream in(mail_dir() / (std::to_string(n) + ".eml"), std::ios::binary);
      if (!in) break;
      std::ostringstream ss;
      ss << in.rdbuf();
      out.push_back(ss.str());
    }
    return out;
  }

  std::string Log() const {
    std::ifstream in(dir_ / "smtp.log");
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  // How many log lines start with `prefix`.
  int Count(const std::string& prefix) const {
    std::istringstream in(Log());
    int n = 0;
    for (std::string line; std::getline(in, line);) n += line.rfind(prefix, 0) == 0;
    return n;
  }

 private:
  static inline int counter_ = 0;
  std::vector<std::string> flags_;
  int port_;
  std::filesystem::path dir_;
  pid_t pid_ = -1;
};

// A self-signed certificate for localhost and 127.0.0.1, made with the openssl tool.
struct TestCertificate {
  std::string cert, key;
  explicit TestCertificate(const std::filesystem::path& dir) {
    cert = (dir / "cert.pem").string();
    key = (dir / "key.pem").string();
    std::string cmd =
        "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost "
        "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout " +
        key + " -out " + cert + " >/dev/null 2>&1";
    ok = std::system(cmd.c_str()) == 0;
  }
  bool ok = false;
};

}  // namespace journeyd::testing
