// What journeyd-bench needs to set a run up by itself on loopback: child processes, free
// ports, a private redis-server with persistence off, Postfix's smtp-sink / smtp-source
// (fetched with apt-get download when they are not installed) and the journeyd binary.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "journeyd/store/sync.h"

namespace journeyd::bench {

// The middle value; of an even count, the mean of the two middle ones. 0 when empty.
double Median(std::vector<double> v);
// A process's resident memory (VmRSS), in MiB; 0 when it cannot be read.
double RssMib(int pid);
// A loopback port that no other socket is handed until a server binds it (see the .cpp); 0 when
// none could be had.
int FreeLoopbackPort();
// True when `stream`'s first consumer group has read and acknowledged every entry; false while
// it has not, or when there is no such stream or group yet; nullopt (and `err`) when Redis
// cannot be asked. A nil lag (Redis cannot count it after entries were trimmed) is not read as
// 0: the group's last delivered id is compared with the stream's last id instead.
std::optional<bool> GroupDone(store::SyncRedis& redis, const std::string& stream, std::string* err);
bool WaitForPort(int port, int timeout_ms);
std::string SelfDir();
// A wait status in words: "exited 0", "exited 3", "was killed by signal 9".
std::string ExitText(int status);  // the directory of this executable (journeyd sits beside it)

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
  std::string dir_;
  Process proc_;
};

// smtp-sink and smtp-source from Debian's postfix package. Empty paths when unavailable.
struct PostfixTools {
  std::string sink, source, library_dir;
  std::string why_not;  // when unavailable
  std::vector<std::string> Env() const;
};
PostfixTools FindPostfixTools(const std::string& cache_dir);
// Where Postfix's tools are unpacked unless --cache-dir says otherwise: a user's cache folder
// ($XDG_CACHE_HOME/journeyd-bench, else ~/.cache/journeyd-bench), never the install prefix.
std::string DefaultCacheDir();

// Starts smtp-sink on a free loopback port with its log in `dir`: the port, or 0.
int StartSmtpSink(const PostfixTools& tools, const std::string& dir, Process* sink);
// The number of messages the sink started in `dir` has received so far (its -c counter in
// sink.log), -1 when there is no log.
int64_t SinkMessages(const std::string& dir);

// The `smtp:` config section for journeyd: to the sink on `port`, or files in `dir` when 0.
std::string SmtpConfig(int port, int connections, const std::string& dir);

}  // namespace journeyd::bench
