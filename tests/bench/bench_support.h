// What journeyd-bench needs to set a run up by itself on loopback: child processes, free
// ports, a private redis-server with persistence off, Postfix's smtp-sink / smtp-source
// (fetched with apt-get download when they are not installed) and the journeyd binary.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "journeyd/store/sync.h"

namespace journeyd::bench {

double Median(std::vector<double> v);
int FreeLoopbackPort();
bool WaitForPort(int port, int timeout_ms);
std::string SelfDir();  // the directory of this executable (journeyd sits beside it)

// A child process, killed (SIGTERM, then SIGKILL) when the object goes away.
class Process {
 public:
  Process() = default;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  ~Process() { Stop(); }
  // `env`: extra NAME=value entries; stdout and stderr go to `log` ("" keeps them).
  bool Start(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
             const std::string& log = "");
  int Stop();  // the exit status
  int pid() const { return pid_; }

 private:
  int pid_ = -1;
};

// A scratch directory removed at the end.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class RedisProc {
 public:
  explicit RedisProc(const std::string& dir);
  int port() const { return port_; }
  std::unique_ptr<store::SyncRedis> Client() const;
  // INFO memory's used_memory.
  int64_t UsedMemory() const;

 private:
  int port_;
  Process proc_;
};

// smtp-sink and smtp-source from Debian's postfix package. Empty paths when unavailable.
struct PostfixTools {
  std::string sink, source, library_dir;
  std::string why_not;  // when unavailable
  std::vector<std::string> Env() const;
};
PostfixTools FindPostfixTools(const std::string& cache_dir);

// Starts smtp-sink on a free loopback port with its log in `dir`: the port, or 0.
int StartSmtpSink(const PostfixTools& tools, const std::string& dir, Process* sink);

// The `smtp:` config section for journeyd: to the sink on `port`, or files in `dir` when 0.
std::string SmtpConfig(int port, int connections, const std::string& dir);

}  // namespace journeyd::bench
