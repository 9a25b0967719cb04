// A partition's lease: one owner at a time, with a fencing token. Taking it draws a new token
// (INCR on the partition's `fence` key) and sets `lease` to it only if nobody holds it
// (SET NX PX); renewing and releasing apply only while the lease still holds our token, so a
// stale owner can neither extend nor drop a newer owner's lease. Every commit checks the
// token too (commit.h), so a stale owner's writes never land.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <string>
#include <string_view>

#include "journeyd/store/keys.h"
#include "journeyd/store/redis.h"

namespace journeyd::store {

// Renews the lease only while it still holds our token. KEYS: lease. ARGV: token, ms.
inline constexpr std::string_view kRenewScript = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
)lua";

// Deletes the lease only while it still holds our token. KEYS: lease. ARGV: token.
inline constexpr std::string_view kReleaseScript = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
)lua";

class Lease {
 public:
  Lease(Keys keys, int lease_ms) : keys_(std::move(keys)), lease_ms_(lease_ms) {}

  // One attempt to take the lease: "" and `*taken` (false while another instance holds it),
  // or why Redis could not be asked.
  boost::asio::awaitable<std::string> TryTake(RedisConnection& conn, bool* taken);
  // Extends the lease by its length: "" or why not ("lost the lease to another instance").
  boost::asio::awaitable<std::string> Renew(RedisConnection& conn);
  // Gives the lease up at once, so another instance takes over without waiting for it to
  // expire. Does nothing when the lease is no longer ours.
  boost::asio::awaitable<void> Release(RedisConnection& conn);

  // The fencing token of the last lease taken ("" before).
  const std::string& token() const { return token_; }
  int lease_ms() const { return lease_ms_; }

 private:
  Keys keys_;
  int lease_ms_;
  std::string token_;
};

}  // namespace journeyd::store
