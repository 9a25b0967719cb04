// A real redis-server for integration tests: a private process on a free loopback port with
// its data in a temporary directory, stopped when the object goes away.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace journeyd::testing {

// A loopback port for a server a test is about to start, which nothing else on the host can
// be handed meanwhile. The port is a listener's that accepted one connection of its own and
// closed its end first, so that end stays in TIME_WAIT on the port for a minute: the kernel
// gives such a port to no bind(port 0) and no connect(), so tests running side by side never
// draw the same one, while the server meant for it binds it all the same (redis-server,
// aiosmtpd in smtp_server.py, fault_proxy.py and journeyd's admin listener set SO_REUSEADDR,
// which a server must for this). A port merely bound and closed again, as before, could be
// handed to a parallel test before its server bound it.
inline int FreeLoopbackPort() {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  const int on = 1;
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int accepted = -1;
  int port = 0;
  if (listener >= 0 && client >= 0 &&
      ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) == 0 &&
      ::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::listen(listener, 1) == 0 &&
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) == 0 &&
      ::connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      (accepted = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC)) >= 0) {
    port = ntohs(addr.sin_port);
  }
  for (int fd : {accepted, client, listener}) {  // the accepted end first: its TIME_WAIT
    if (fd >= 0) ::close(fd);
  }
  if (port == 0) std::abort();  // no test can run without one
  return port;
}

inline bool PortAcceptsConnections(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

class RedisServer {
 public:
  explicit RedisServer(bool append_only = false) : append_only_(append_only) {
    dir_ = std::filesystem::temp_directory_path() /
           ("journeyd-redis-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    std::filesystem::create_directories(dir_);
    port_ = FreeLoopbackPort();
    Start();
  }
  ~RedisServer() {
    Stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  int port() const { return port_; }
  bool running() const { return pid_ > 0; }

  void Start() {
    pid_ = ::fork();
    if (pid_ == 0) {
      std::string port = std::to_string(port_);
      std::vector<std::string> args = {"redis-server",
                                       "--port",
                                       port,
                                       "--bind",
                                       "127.0.0.1",
                                       "--dir",
                                       dir_.string(),
                                       "--save",
                                       "",
                                       "--appendonly",
                                       append_only_ ? "yes" : "no",
                                       "--appendfsync",
                                       "always",
                                       "--loglevel",
                                       "warning",
                                       "--logfile",
                                       (dir_ / "redis.log").string()};
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      // Not the test's stdout and stderr (it logs to its file): a test that aborts leaves
      // this server behind, and ctest would wait for it to close the test's output.
      const int null = ::open("/dev/null", O_WRONLY);
      if (null >= 0) {
        ::dup2(null, 1);
        ::dup2(null, 2);
      }
      ::execvp("redis-server", argv.data());
      ::_exit(127);
    }
    for (int i = 0; i < 500 && !PortAcceptsConnections(port_); ++i) {
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

 private:
  static inline int counter_ = 0;
  bool append_only_;
  std::filesystem::path dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace journeyd::testing
