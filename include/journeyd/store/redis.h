// Redis over hiredis's async API, driven by a Boost.Asio io_context. One RedisConnection is
// one TCP connection: commands are pipelined in order, every command has a deadline, and a
// missed deadline or a lost connection fails every pending command so the caller can
// reconnect and resume (from its pending stream entries) instead of hanging.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "journeyd/common/time.h"

struct redisAsyncContext;
struct redisReader;
struct redisReply;

namespace journeyd::store {

struct Reply {
  enum class Type : uint8_t { kNil, kStatus, kError, kInteger, kString, kArray };
  Type type = Type::kNil;
  std::string str;  // status, error or string
  long long integer = 0;
  std::vector<Reply> elements;

  bool is_error() const { return type == Type::kError; }
  bool is_nil() const { return type == Type::kNil; }
  static Reply From(const redisReply* r);
};

struct Result {
  Reply reply;
  std::string error;  // connection-level failure; a Redis error reply is reply.is_error()
  bool ok() const { return error.empty() && !reply.is_error(); }
  std::string what() const { return error.empty() ? reply.str : error; }
};

// RESP bytes into Replies as a connection reads them (hiredis's reader building Replies
// directly, as below), without a socket: for tests and the fuzzer.
class ReplyReader {
 public:
  ReplyReader();
  ~ReplyReader();
  ReplyReader(const ReplyReader&) = delete;
  ReplyReader& operator=(const ReplyReader&) = delete;

  void Feed(std::string_view bytes);
  enum class Status { kReply, kMore, kError };
  // The next whole reply into `*out`; kMore when more bytes are needed; kError on a protocol
  // error (`*error` says which), after which the reader reads nothing more.
  Status Next(Reply* out, std::string* error);

 private:
  redisReader* reader_;
};

class RespCommand;

struct RedisOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string password;
  Duration connect_timeout{2000};
  Duration command_timeout{5000};
};

class RedisConnection : public std::enable_shared_from_this<RedisConnection> {
 public:
  // `error` is empty on success; the reply may still be a Redis error reply (is_error()).
  using Callback = std::function<void(Reply reply, const std::string& error)>;
  // A batch's results, one per command, in order.
  using BatchCallback = std::function<void(std::vector<Result> results)>;

  static std::shared_ptr<RedisConnection> Create(boost::asio::io_context& io, RedisOptions options);
  ~RedisConnection();

  // Connects (and AUTHs when a password is set). `done` gets "" or the reason it failed.
  void AsyncConnect(std::function<void(const std::string& error)> done);
  // Queues a command. `timeout` overrides the default (for blocking reads: block time + margin).
  void AsyncCommand(std::vector<std::string> args, Callback cb,
                    std::optional<Duration> timeout = std::nullopt);
  // The same for a command already in wire form (store/resp.h); the bytes are copied at once.
  void AsyncWire(std::string_view wire, Callback cb,
                 std::optional<Duration> timeout = std::nullopt);
  // Commands in wire form sent back to back; `done` runs once, when the last has its reply
  // (or the connection failed them). One callback for the whole batch: a MULTI/EXEC of
  // thousands of commands costs no handler per queued reply.
  void AsyncBatch(std::span<const RespCommand> commands, BatchCallback done,
                  std::optional<Duration> timeout = std::nullopt);
  bool connected() const { return ac_ != nullptr && connected_; }
  size_t pending() const { return pending_.size(); }
  // Drops the connection; pending commands fail with `reason`.
  void Close(const std::string& reason = "connection closed");

 private:
  struct Pending {
    uint64_t id = 0;
    Callback cb;  // a single command's; empty for a batch
    std::chrono::steady_clock::time_point deadline;
    // A batch: every command's result, filled in order; `got` of `expected` have come.
    BatchCallback batch_cb;
    std::vector<Result> results;
    size_t got = 0, expected = 0;
  };

  RedisConnection(boost::asio::io_context& io, RedisOptions options);
  static void OnReply(redisAsyncContext* ac, void* reply, void* privdata);
  static void OnConnect(const redisAsyncContext* ac, int status);
  static void OnDisconnect(const redisAsyncContext* ac, int status);
  static void AddRead(void* p);
  static void DelRead(void* p);
  static void AddWrite(void* p);
  static void DelWrite(void* p);
  static void Cleanup(void* p);

  void WaitRead();
  void WaitWrite();
  void ArmDeadline();
  void FailAll(const std::string& reason);
  void Finish(uint64_t id, Reply reply, const std::string& error);
  // Hands a finished batch's results to its callback, on the io_context.
  void PostBatch(Pending&& p);

  boost::asio::io_context& io_;
  RedisOptions options_;
  redisAsyncContext* ac_ = nullptr;
  std::unique_ptr<boost::asio::posix::stream_descriptor> socket_;
  boost::asio::steady_timer deadline_timer_;
  boost::asio::steady_timer connect_timer_;
  bool reading_ = false, writing_ = false;
  bool read_wait_ = false, write_wait_ = false;
  bool connected_ = false;
  bool destroying_ = false;
  bool deadline_armed_ = false;
  std::function<void(const std::string&)> on_connect_;
  std::deque<Pending> pending_;
  uint64_t next_id_ = 1;
  // Each context gets a fresh generation so stale Asio handlers can tell it is gone.
  uint64_t generation_ = 0;
};

}  // namespace journeyd::store
