#include "bench_support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <string>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

namespace journeyd::bench {

namespace fs = std::filesystem;

double RssMib(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atof(line.c_str() + 6) / 1024.0;
  }
  return 0;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t mid = v.size() / 2;
  return v.size() % 2 == 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

int FreeLoopbackPort() {
  // A listener that accepts one connection of its own and closes its end first: that end stays
  // in TIME_WAIT on the port for a minute. The kernel hands such a port to no bind(port 0) and
  // no connect(), so nothing else on the host takes it before the server meant for it binds
  // it, which redis-server, smtp-sink and journeyd can (they set SO_REUSEADDR).
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  const int on = 1;
  int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  int client = ::socket(AF_INET, SOCK_STREAM, 0);
  int accepted = -1;
  int port = 0;
  if (listener >= 0 && client >= 0 &&
      ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) == 0 &&
      ::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::listen(listener, 1) == 0 &&
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) == 0 &&
      ::connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      (accepted = ::accept(listener, nullptr, nullptr)) >= 0) {
    port = ntohs(addr.sin_port);
  }
  for (int fd : {accepted, client, listener}) {
    if (fd >= 0) ::close(fd);
  }
  return port;
}

std::optional<bool> GroupDone(store::SyncRedis& redis, const std::string& stream,
                              std::string* err) {
  auto info = redis.Command({"XINFO", "GROUPS", stream}, err);
  if (!info) return std::nullopt;
  if (info->is_error() || info->elements.empty()) return false;  // no stream or group yet
  const store::Reply* pending = nullptr;
  const store::Reply* lag = nullptr;
  const store::Reply* delivered = nullptr;
  const auto& g = info->elements[0].elements;
  for (size_t i = 0; i + 1 < g.size(); i += 2) {
    if (g[i].str == "pending") pending = &g[i + 1];
    if (g[i].str == "lag") lag = &g[i + 1];
    if (g[i].str == "last-delivered-id") delivered = &g[i + 1];
  }
  if (!pending || !lag || !delivered) {
    *err = "XINFO GROUPS " + stream + " has no pending, lag or last-delivered-id";
    return std::nullopt;
  }
  if (pending->integer != 0) return false;
  if (lag->type == store::Reply::Type::kInteger) return lag->integer == 0;
  // A nil lag: Redis cannot tell (entries deleted or trimmed past the group). The group has
  // read everything when it has been handed the stream's last entry.
  auto s = redis.Command({"XINFO", "STREAM", stream}, err);
  if (!s) return std::nullopt;
  for (size_t i = 0; i + 1 < s->elements.size(); i += 2) {
    if (s->elements[i].str == "last-generated-id") {
      return s->elements[i + 1].str == delivered->str;
    }
  }
  *err = "XINFO STREAM " + stream + " has no last-generated-id";
  return std::nullopt;
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

std::string ExitText(int status) {
  if (WIFEXITED(status)) return "exited " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "was killed by signal " + std::to_string(WTERMSIG(status));
  return "ended with wait status " + std::to_string(status);
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

RedisProc::RedisProc(const std::string& dir) : port_(FreeLoopbackPort()), dir_(dir) {
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
  auto c = store::SyncRedis::Connect(o, &err);
  if (!c) {
    std::cerr << "cannot connect to redis-server on port " << port_ << ": " << err
              << " (its log: " << dir_ << "/redis.log)\n";
  }
  return c;
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

std::string DefaultCacheDir() {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  if (xdg && *xdg == '/') return std::string(xdg) + "/journeyd-bench";
  const char* home = std::getenv("HOME");
  if (home && *home == '/') return std::string(home) + "/.cache/journeyd-bench";
  return (fs::temp_directory_path() / "journeyd-bench-cache").string();
}

int StartSmtpSink(const PostfixTools& tools, const std::string& dir, Process* sink) {
  const int port = FreeLoopbackPort();
  // -c: the counts on stdout (into sink.log), which SinkMessages reads.
  std::vector<std::string> argv = {tools.sink, "-c"};
  if (::geteuid() == 0) {
    argv.push_back("-u");
    argv.push_back("nobody");
  }
  argv.push_back("127.0.0.1:" + std::to_string(port));
  argv.push_back("1024");
  sink->Start(argv, tools.Env(), dir + "/sink.log");
  return WaitForPort(port, 5000) ? port : 0;
}

int64_t SinkMessages(const std::string& dir) {
  std::ifstream in(dir + "/sink.log", std::ios::binary | std::ios::ate);
  if (!in) return -1;
  const std::streamoff size = in.tellg();
  in.seekg(std::max<std::streamoff>(0, size - 256));
  std::string tail((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto at = tail.rfind("mesg=");
  return at == std::string::npos ? 0 : std::atoll(tail.c_str() + at + 5);
}

std::string SmtpConfig(int port, int connections, const std::string& dir) {
  if (port == 0) return "smtp: { mode: file, dir: \"" + dir + "/mail\" }\n";
  return "smtp: { mode: smtp, host: 127.0.0.1, port: " + std::to_string(port) +
         ", tls: none, connections: " + std::to_string(connections) +
         ", from: \"Shop <news@shop.example>\" }\n";
}

}  // namespace journeyd::bench
