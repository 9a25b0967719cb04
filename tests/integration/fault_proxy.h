// The fault proxy for integration tests: tests/integration/fault_proxy.py as a private process
// between journeyd and a real server (Redis or SMTP), told on its control port to delay, go
// silent, cut a reply in half, trickle, drop or reset connections, or refuse new ones.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "redis_server.h"

namespace journeyd::testing {

class FaultProxy {
 public:
  explicit FaultProxy(int target_port) : port_(FreeLoopbackPort()), control_(FreeLoopbackPort()) {
    pid_ = ::fork();
    if (pid_ == 0) {
      std::vector<std::string> args = {
          "/usr/bin/python3",
          std::string(JOURNEYD_SOURCE_DIR) + "/tests/integration/fault_proxy.py",
          "--listen",
          std::to_string(port_),
          "--target-port",
          std::to_string(target_port),
          "--control",
          std::to_string(control_)};
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    for (int i = 0; i < 1000 && !PortAcceptsConnections(control_); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  ~FaultProxy() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  // The port clients connect to.
  int port() const { return port_; }

  // One command (see fault_proxy.py); its answer ("ok", "ok <n>", or "error: ...").
  std::string Tell(const std::string& command) const {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(control_));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::string answer;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      std::string line = command + "\n";
      if (::send(fd, line.data(), line.size(), 0) == static_cast<ssize_t>(line.size())) {
        char c = 0;
        while (::recv(fd, &c, 1, 0) == 1 && c != '\n') answer += c;
      }
    }
    ::close(fd);
    return answer;
  }

 private:
  int port_;
  int control_;
  pid_t pid_ = -1;
};

}  // namespace journeyd::testing
