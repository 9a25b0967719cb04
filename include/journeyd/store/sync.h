// A small blocking Redis client for command-line tools (journeyctl publish / inspect).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "journeyd/store/redis.h"

namespace journeyd::store {

class SyncRedis {
 public:
  // Connects (and AUTHs); nullopt and a reason on failure.
  static std::unique_ptr<SyncRedis> Connect(const RedisOptions& options, std::string* error);
  ~SyncRedis();
  // Runs one command; `error` is set on connection failures, error replies come back as such.
  std::optional<Reply> Command(const std::vector<std::string>& args, std::string* error);
  // Sends every command before reading any reply (one round trip for the lot).
  std::optional<std::vector<Reply>> Pipeline(const std::vector<std::vector<std::string>>& commands,
                                             std::string* error);

 private:
  SyncRedis() = default;
  void* ctx_ = nullptr;  // redisContext*
};

}  // namespace journeyd::store
