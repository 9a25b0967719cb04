#include "journeyd/store/sync.h"

#include <hiredis/hiredis.h>

#include <fmt/format.h>

namespace journeyd::store {

std::unique_ptr<SyncRedis> SyncRedis::Connect(const RedisOptions& o, std::string* error) {
  timeval tv{static_cast<time_t>(o.connect_timeout.count() / 1000),
             static_cast<suseconds_t>(o.connect_timeout.count() % 1000 * 1000)};
  redisContext* c = redisConnectWithTimeout(o.host.c_str(), o.port, tv);
  if (!c || c->err) {
    *error = fmt::format("cannot connect to Redis at {}:{}: {}", o.host, o.port,
                         c ? c->errstr : "out of memory");
    if (c) redisFree(c);
    return nullptr;
  }
  timeval ctv{static_cast<time_t>(o.command_timeout.count() / 1000),
              static_cast<suseconds_t>(o.command_timeout.count() % 1000 * 1000)};
  redisSetTimeout(c, ctv);
  std::unique_ptr<SyncRedis> r(new SyncRedis());
  r->ctx_ = c;
  if (!o.password.empty()) {
    auto reply = r->Command({"AUTH", o.password}, error);
    if (!reply) return nullptr;
    if (reply->is_error()) {
      *error = "Redis refused the password: " + reply->str;
      return nullptr;
    }
  }
  return r;
}

SyncRedis::~SyncRedis() {
  if (ctx_) redisFree(static_cast<redisContext*>(ctx_));
}

std::optional<Reply> SyncRedis::Command(const std::vector<std::string>& args, std::string* error) {
  auto* c = static_cast<redisContext*>(ctx_);
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* reply = static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
  if (!reply) {
    *error = fmt::format("Redis: {}", c->errstr);
    return std::nullopt;
  }
  Reply r = Reply::From(reply);
  freeReplyObject(reply);
  return r;
}

std::optional<std::vector<Reply>> SyncRedis::Pipeline(
    const std::vector<std::vector<std::string>>& commands, std::string* error) {
  auto* c = static_cast<redisContext*>(ctx_);
  for (const auto& args : commands) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    if (redisAppendCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()) !=
        REDIS_OK) {
      *error = fmt::format("Redis: {}", c->errstr);
      return std::nullopt;
    }
  }
  std::vector<Reply> out;
  out.reserve(commands.size());
  for (size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(c, &raw) != REDIS_OK || !raw) {
      *error = fmt::format("Redis: {}", c->errstr);
      return std::nullopt;
    }
    out.push_back(Reply::From(static_cast<redisReply*>(raw)));
    freeReplyObject(raw);
  }
  return out;
}

}  // namespace journeyd::store
