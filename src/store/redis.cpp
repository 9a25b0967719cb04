#include "journeyd/store/redis.h"

#include "journeyd/store/resp.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <unistd.h>

#include <fmt/format.h>
#include <boost/asio/post.hpp>

namespace journeyd::store {

namespace asio = boost::asio;

Reply Reply::From(const redisReply* r) {
  Reply out;
  if (!r) return out;
  switch (r->type) {
    case REDIS_REPLY_STATUS:
      out.type = Type::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = Type::kError;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_STRING:
      out.type = Type::kString;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ARRAY:
      out.type = Type::kArray;
      out.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(From(r->element[i]));
      break;
    default:
      out.type = Type::kNil;
  }
  return out;
}

namespace {

// hiredis builds replies through these, straight into Reply objects: no redisReply tree to
// copy and free afterwards. A child lives in its parent's `elements`, sized up front, so
// only the root is ever freed (hiredis frees roots only).
Reply* NewChild(const redisReadTask* task) {
  if (task->parent == nullptr) return new Reply();
  auto* parent = static_cast<Reply*>(task->parent->obj);
  if (task->idx < 0 || static_cast<size_t>(task->idx) >= parent->elements.size()) return nullptr;
  return &parent->elements[static_cast<size_t>(task->idx)];
}

void* CreateString(const redisReadTask* task, char* str, size_t len) {
  Reply* r = NewChild(task);
  if (!r) return nullptr;
  r->type = task->type == REDIS_REPLY_STATUS  ? Reply::Type::kStatus
            : task->type == REDIS_REPLY_ERROR ? Reply::Type::kError
                                              : Reply::Type::kString;
  r->str.assign(str, len);
  return r;
}

// The longest array a reply may hold. The reader sizes an array from its header, before any
// element arrives: without a bound, "*2147483647" (a corrupt or hostile reply) would ask for
// 150 GB at once. journeyd's replies are bounded by its COUNT and LIMIT arguments and its
// few keys, far below this; a longer one fails the connection as hiredis's own
// out-of-memory error.
constexpr int kMaxReplyElements = 1 << 20;

void* CreateArray(const redisReadTask* task, int elements) {
  if (elements > kMaxReplyElements) return nullptr;
  Reply* r = NewChild(task);
  if (!r) return nullptr;
  r->type = Reply::Type::kArray;
  r->elements.resize(elements > 0 ? static_cast<size_t>(elements) : 0);
  return r;
}

void* CreateInteger(const redisReadTask* task, long long value) {
  Reply* r = NewChild(task);
  if (!r) return nullptr;
  r->type = Reply::Type::kInteger;
  r->integer = value;
  return r;
}

void* CreateNil(const redisReadTask* task) {
  Reply* r = NewChild(task);
  if (!r) return nullptr;
  r->type = Reply::Type::kNil;
  return r;
}

void FreeReply(void* reply) { delete static_cast<Reply*>(reply); }

redisReplyObjectFunctions kReplyFunctions = {CreateString, CreateArray, CreateInteger, CreateNil,
                                             FreeReply};

}  // namespace

ReplyReader::ReplyReader() : reader_(redisReaderCreateWithFunctions(&kReplyFunctions)) {}

ReplyReader::~ReplyReader() { redisReaderFree(reader_); }

void ReplyReader::Feed(std::string_view bytes) {
  if (!bytes.empty()) redisReaderFeed(reader_, bytes.data(), bytes.size());
}

ReplyReader::Status ReplyReader::Next(Reply* out, std::string* error) {
  void* reply = nullptr;
  if (redisReaderGetReply(reader_, &reply) != REDIS_OK) {
    *error = reader_->errstr;
    return Status::kError;
  }
  if (!reply) return Status::kMore;
  *out = std::move(*static_cast<Reply*>(reply));
  FreeReply(reply);
  return Status::kReply;
}

std::shared_ptr<RedisConnection> RedisConnection::Create(asio::io_context& io,
                                                         RedisOptions options) {
  return std::shared_ptr<RedisConnection>(new RedisConnection(io, std::move(options)));
}

RedisConnection::RedisConnection(asio::io_context& io, RedisOptions options)
    : io_(io), options_(std::move(options)), deadline_timer_(io), connect_timer_(io) {}

RedisConnection::~RedisConnection() {
  destroying_ = true;
  pending_.clear();  // nobody is left to hear about them
  if (ac_) {
    redisAsyncContext* ac = ac_;
    redisAsyncFree(ac);  // calls Cleanup, which forgets ac_
  }
}

void RedisConnection::AsyncConnect(std::function<void(const std::string& error)> done) {
  if (ac_) Close("reconnecting");
  auto fail = [this, done](std::string error) { asio::post(io_, [done, error] { done(error); }); };
  redisAsyncContext* ac = redisAsyncConnect(options_.host.c_str(), options_.port);
  if (!ac) return fail("out of memory");
  if (ac->c.reader) ac->c.reader->fn = &kReplyFunctions;
  if (ac->err) {
    std::string error = fmt::format("cannot connect to Redis at {}:{}: {}", options_.host,
                                    options_.port, ac->errstr);
    redisAsyncFree(ac);
    return fail(error);
  }
  int fd = ::dup(ac->c.fd);
  if (fd < 0) {
    redisAsyncFree(ac);
    return fail("dup() failed");
  }
  ac_ = ac;
  ++generation_;
  socket_ = std::make_unique<asio::posix::stream_descriptor>(io_, fd);
  ac->data = this;
  ac->ev.data = this;
  ac->ev.addRead = &RedisConnection::AddRead;
  ac->ev.delRead = &RedisConnection::DelRead;
  ac->ev.addWrite = &RedisConnection::AddWrite;
  ac->ev.delWrite = &RedisConnection::DelWrite;
  ac->ev.cleanup = &RedisConnection::Cleanup;
  redisAsyncSetConnectCallback(ac, &RedisConnection::OnConnect);
  redisAsyncSetDisconnectCallback(ac, &RedisConnection::OnDisconnect);
  on_connect_ = std::move(done);
  // The socket becomes writable when the connection is made.
  AddWrite(this);
  connect_timer_.expires_after(options_.connect_timeout);
  connect_timer_.async_wait([weak = weak_from_this(), gen = generation_](auto ec) {
    auto self = weak.lock();
    if (!self || ec || self->generation_ != gen || self->connected_ || !self->on_connect_) return;
    auto cb = std::move(self->on_connect_);
    self->on_connect_ = nullptr;
    self->Close("connect timed out");
    cb(fmt::format("cannot connect to Redis at {}:{}: timed out after {} ms", self->options_.host,
                   self->options_.port, self->options_.connect_timeout.count()));
  });
}

void RedisConnection::OnConnect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<RedisConnection*>(ac->data);
  if (!self || self->destroying_) return;
  self->connect_timer_.cancel();
  auto cb = std::move(self->on_connect_);
  self->on_connect_ = nullptr;
  if (status != REDIS_OK) {
    std::string error = fmt::format("cannot connect to Redis at {}:{}: {}", self->options_.host,
                                    self->options_.port, ac->errstr ? ac->errstr : "error");
    if (cb) asio::post(self->io_, [cb, error] { cb(error); });
    return;  // hiredis frees the context after this callback
  }
  self->connected_ = true;
  if (!cb) return;
  if (self->options_.password.empty()) {
    asio::post(self->io_, [cb] { cb(""); });
    return;
  }
  self->AsyncCommand({"AUTH", self->options_.password}, [cb](Reply r, const std::string& err) {
    if (!err.empty()) return cb(err);
    if (r.is_error()) return cb("Redis refused the password: " + r.str);
    cb("");
  });
}

void RedisConnection::OnDisconnect(const redisAsyncContext* ac, int /*status*/) {
  auto* self = static_cast<RedisConnection*>(ac->data);
  if (!self || self->destroying_) return;
  self->connected_ = false;
}

void RedisConnection::OnReply(redisAsyncContext* ac, void* reply, void* privdata) {
  auto* self = static_cast<RedisConnection*>(ac->data);
  if (!self || self->destroying_) return;
  auto id = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(privdata));
  if (!reply) {
    self->Finish(id, Reply{}, "connection to Redis lost");
    return;
  }
  // Built by kReplyFunctions; hiredis frees the shell once this returns.
  self->Finish(id, std::move(*static_cast<Reply*>(reply)), "");
}

void RedisConnection::Finish(uint64_t id, Reply reply, const std::string& error) {
  // Replies come in order, so the match is almost always at the front.
  for (auto it = pending_.begin(); it != pending_.end(); ++it) {
    if (it->id != id) continue;
    if (it->batch_cb) {
      Result& r = it->results[it->got++];
      r.reply = std::move(reply);
      r.error = error;
      if (it->got < it->expected) return;
      PostBatch(std::move(*it));
      pending_.erase(it);
      return;
    }
    Callback cb = std::move(it->cb);
    pending_.erase(it);
    asio::post(io_, [cb = std::move(cb), reply = std::move(reply), error]() mutable {
      cb(std::move(reply), error);
    });
    return;
  }
}

void RedisConnection::PostBatch(Pending&& p) {
  asio::post(io_, [cb = std::move(p.batch_cb), results = std::move(p.results)]() mutable {
    cb(std::move(results));
  });
}

void RedisConnection::AsyncCommand(std::vector<std::string> args, Callback cb,
                                   std::optional<Duration> timeout) {
  RespArgs a;
  size_t bytes = 0;
  for (const auto& x : args) bytes += x.size() + 16;
  a.Reserve(bytes);
  for (const auto& x : args) a.Arg(x);
  AsyncWire(RespCommand::Of(a).wire(), std::move(cb), timeout);
}

void RedisConnection::AsyncWire(std::string_view wire, Callback cb,
                                std::optional<Duration> timeout) {
  if (!ac_ || !connected_) {
    asio::post(io_, [cb = std::move(cb)] { cb(Reply{}, "not connected to Redis"); });
    return;
  }
  uint64_t id = next_id_++;
  auto deadline = std::chrono::steady_clock::now() + timeout.value_or(options_.command_timeout);
  Pending& p = pending_.emplace_back();
  p.id = id;
  p.cb = std::move(cb);
  p.deadline = deadline;
  // hiredis copies the bytes into its output buffer before this returns.
  int rc = redisAsyncFormattedCommand(ac_, &RedisConnection::OnReply,
                                      reinterpret_cast<void*>(static_cast<uintptr_t>(id)),
                                      wire.data(), wire.size());
  if (rc != REDIS_OK) {
    Finish(id, Reply{}, "Redis command could not be queued");
    return;
  }
  if (!deadline_armed_) ArmDeadline();
}

void RedisConnection::AsyncBatch(std::span<const RespCommand> commands, BatchCallback done,
                                 std::optional<Duration> timeout) {
  Pending p;
  p.batch_cb = std::move(done);
  p.results.resize(commands.size());
  p.expected = commands.size();
  if (!ac_ || !connected_ || commands.empty()) {
    for (auto& r : p.results) r.error = "not connected to Redis";
    PostBatch(std::move(p));
    return;
  }
  p.id = next_id_++;
  p.deadline = std::chrono::steady_clock::now() + timeout.value_or(options_.command_timeout);
  void* privdata = reinterpret_cast<void*>(static_cast<uintptr_t>(p.id));
  size_t queued = 0;
  for (const RespCommand& c : commands) {
    // hiredis copies the bytes into its output buffer before this returns.
    if (redisAsyncFormattedCommand(ac_, &RedisConnection::OnReply, privdata, c.wire().data(),
                                   c.wire().size()) != REDIS_OK) {
      break;
    }
    ++queued;
  }
  for (size_t i = queued; i < commands.size(); ++i) {
    p.results[i].error = "Redis command could not be queued";
  }
  p.expected = queued;
  if (queued == 0) {
    PostBatch(std::move(p));
    return;
  }
  pending_.push_back(std::move(p));
  if (!deadline_armed_) ArmDeadline();
}

void RedisConnection::ArmDeadline() {
  if (pending_.empty()) {
    deadline_armed_ = false;
    return;
  }
  deadline_armed_ = true;
  // The earliest deadline: commands usually share one timeout, so the front is earliest.
  auto earliest = pending_.front().deadline;
  for (const auto& p : pending_) earliest = std::min(earliest, p.deadline);
  deadline_timer_.expires_at(earliest);
  deadline_timer_.async_wait([weak = weak_from_this()](auto ec) {
    auto self = weak.lock();
    if (!self || ec) return;
    self->deadline_armed_ = false;
    auto now = std::chrono::steady_clock::now();
    for (const auto& p : self->pending_) {
      if (p.deadline <= now) {
        // A command past its deadline: the connection is not trustworthy any more.
        self->Close("Redis did not answer in time");
        return;
      }
    }
    self->ArmDeadline();
  });
}

void RedisConnection::FailAll(const std::string& reason) {
  std::deque<Pending> failed;
  failed.swap(pending_);
  for (auto& p : failed) {
    if (p.batch_cb) {
      for (size_t i = p.got; i < p.expected; ++i) p.results[i].error = reason;
      PostBatch(std::move(p));
    } else {
      asio::post(io_, [cb = std::move(p.cb), reason] { cb(Reply{}, reason); });
    }
  }
}

void RedisConnection::Close(const std::string& reason) {
  FailAll(reason);
  connected_ = false;
  if (ac_) {
    redisAsyncContext* ac = ac_;
    redisAsyncFree(ac);  // Cleanup() forgets ac_ and the socket
  }
  if (on_connect_) {
    auto cb = std::move(on_connect_);
    on_connect_ = nullptr;
    asio::post(io_, [cb, reason] { cb(reason); });
  }
}

void RedisConnection::AddRead(void* p) {
  auto* self = static_cast<RedisConnection*>(p);
  self->reading_ = true;
  self->WaitRead();
}

void RedisConnection::DelRead(void* p) { static_cast<RedisConnection*>(p)->reading_ = false; }

void RedisConnection::AddWrite(void* p) {
  auto* self = static_cast<RedisConnection*>(p);
  self->writing_ = true;
  self->WaitWrite();
}

void RedisConnection::DelWrite(void* p) { static_cast<RedisConnection*>(p)->writing_ = false; }

void RedisConnection::Cleanup(void* p) {
  // hiredis is about to free the context: forget it and stop waiting on its socket.
  auto* self = static_cast<RedisConnection*>(p);
  self->ac_ = nullptr;
  self->reading_ = self->writing_ = false;
  self->read_wait_ = self->write_wait_ = false;
  self->connected_ = false;
  ++self->generation_;
  if (self->socket_) {
    boost::system::error_code ignored;
    self->socket_->cancel(ignored);
    self->socket_->close(ignored);  // our dup()ed descriptor; hiredis closes its own
  }
  if (!self->destroying_) {
    self->FailAll("connection to Redis lost");
    // Let aborted handlers run before the descriptor object goes away.
    asio::post(self->io_, [weak = self->weak_from_this(), gen = self->generation_] {
      auto s = weak.lock();
      if (s && s->generation_ == gen && !s->ac_) s->socket_.reset();
    });
  }
}

void RedisConnection::WaitRead() {
  if (read_wait_ || !socket_ || !ac_) return;
  read_wait_ = true;
  socket_->async_wait(asio::posix::stream_descriptor::wait_read,
                      [weak = weak_from_this(), gen = generation_](auto ec) {
                        auto self = weak.lock();
                        if (!self) return;
                        if (self->generation_ != gen) return;
                        self->read_wait_ = false;
                        if (ec || !self->ac_ || !self->reading_) return;
                        redisAsyncHandleRead(self->ac_);
                        if (self->generation_ == gen && self->ac_ && self->reading_) {
                          self->WaitRead();
                        }
                      });
}

void RedisConnection::WaitWrite() {
  if (write_wait_ || !socket_ || !ac_) return;
  write_wait_ = true;
  socket_->async_wait(asio::posix::stream_descriptor::wait_write,
                      [weak = weak_from_this(), gen = generation_](auto ec) {
                        auto self = weak.lock();
                        if (!self) return;
                        if (self->generation_ != gen) return;
                        self->write_wait_ = false;
                        if (ec || !self->ac_ || !self->writing_) return;
                        redisAsyncHandleWrite(self->ac_);
                        if (self->generation_ == gen && self->ac_ && self->writing_) {
                          self->WaitWrite();
                        }
                      });
}

}  // namespace journeyd::store
