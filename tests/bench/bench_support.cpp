#include "bench_support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

namespace journeyd::bench {

namespace fs = std::filesystem;

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int FreeLoopbackPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

bool WaitForPort(int port, int timeout_ms) {
  for (int waited = 0; waited <= timeout_ms; waited += 10) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    if (ok) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

std::string SelfDir() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? "." : p.parent_path().string();
}

bool Process::Start(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                    const std::string& log) {
  pid_ = ::fork();
  if (pid_ < 0) return false;
  if (pid_ == 0) {
    if (!log.empty()) {
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
        ::close(fd);
      }
    }
    for (const auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  return true;
}

int Process::Stop() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  int status = 0;
  // Up to 30 s: journeyd run under valgrind (for instruction counts) takes its time to
  // finish the batch in hand, and must exit by itself to write its profile.
  for (int i = 0; i < 3000; ++i) {
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return status;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  return status;
}

TempDir::TempDir() {
  std::string tmpl = (fs::temp_directory_path() / "journeyd-bench-XXXXXX").string();
  path_ = ::mkdtemp(tmpl.data()) ? tmpl : "/tmp";
}

TempDir::~TempDir() {
  std::error_code ec;
  if (path_ != "/tmp") fs::remove_all(path_, ec);
}

RedisProc::RedisProc(const std::string& dir) : port_(FreeLoopbackPort()) {
  proc_.Start({"redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1", "--dir", dir,
               "--save", "", "--appendonly", "no", "--loglevel", "warning"},
              {}, dir + "/redis.log");
  WaitForPort(port_, 5000);
}

std::unique_ptr<store::SyncRedis> RedisProc::Client() const {
  store::RedisOptions o;
  o.port = port_;
  o.command_timeout = Duration{60000};
  std::string err;
  return store::SyncRedis::Connect(o, &err);
}

int64_t RedisProc::UsedMemory() const {
  auto c = Client();
  std::string err;
  auto r = c ? c->Command({"INFO", "memory"}, &err) : std::nullopt;
  if (!r) return -1;
  auto at = r->str.find("used_memory:");
  return at == std::string::npos ? -1 : std::atoll(r->str.c_str() + at + 12);
}

std::vector<std::string> PostfixTools::Env() const { return {"LD_LIBRARY_PATH=" + library_dir}; }

PostfixTools FindPostfixTools(const std::string& cache_dir) {
  PostfixTools t;
  auto found = [&](const fs::path& root) {
    if (fs::exists(root / "usr/sbin/smtp-sink") && fs::exists(root / "usr/sbin/smtp-source")) {
      t.sink = (root / "usr/sbin/smtp-sink").string();
      t.source = (root / "usr/sbin/smtp-source").string();
      t.library_dir = (root / "usr/lib/postfix").string();
      return true;
    }
    return false;
  };
  if (found("/")) return t;
  fs::path root = fs::path(cache_dir) / "postfix-root";
  if (found(root)) return t;
  // Not installed: unpack the package's files without installing a running MTA.
  fs::create_directories(cache_dir);
  std::string cmd = "cd '" + cache_dir +
                    "' && (ls postfix_*.deb >/dev/null 2>&1 || apt-get download postfix "
                    ">/dev/null 2>&1) && dpkg-deb -x postfix_*.deb postfix-root";
  if (std::system(cmd.c_str()) != 0 || !found(root)) {
    t.why_not =
        "Postfix's smtp-sink/smtp-source are not available (apt-get download postfix "
        "failed in " +
        cache_dir + ")";
  }
  return t;
}

int StartSmtpSink(const PostfixTools& tools, const std::string& dir, Process* sink) {
  const int port = FreeLoopbackPort();
  std::vector<std::string> argv = {tools.sink};
  if (::geteuid() == 0) {
    argv.push_back("-u");
    argv.push_back("nobody");
  }
  argv.push_back("127.0.0.1:" + std::to_string(port));
  argv.push_back("1024");
  sink->Start(argv, tools.Env(), dir + "/sink.log");
  return WaitForPort(port, 5000) ? port : 0;
}

std::string SmtpConfig(int port, int connections, const std::string& dir) {
  if (port == 0) return "smtp: { mode: file, dir: \"" + dir + "/mail\" }\n";
  return "smtp: { mode: smtp, host: 127.0.0.1, port: " + std::to_string(port) +
         ", tls: none, connections: " + std::to_string(connections) +
         ", from: \"Shop <news@shop.example>\" }\n";
}

}  // namespace journeyd::bench
