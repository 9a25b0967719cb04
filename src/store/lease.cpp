#include "journeyd/store/lease.h"

#include "journeyd/store/await.h"

namespace journeyd::store {

namespace asio = boost::asio;

asio::awaitable<std::string> Lease::TryTake(RedisConnection& conn, bool* taken) {
  *taken = false;
  Result fence = co_await Call(conn, Cmd("INCR", keys_.fence()));
  if (!fence.ok()) co_return "cannot get a fencing token: " + fence.what();
  std::string token = std::to_string(fence.reply.integer);
  Result set =
      co_await Call(conn, Cmd("SET", keys_.lease(), token, "NX", "PX", std::to_string(lease_ms_)));
  if (!set.error.empty()) co_return set.error;
  if (set.reply.type == Reply::Type::kStatus) {
    token_ = std::move(token);
    *taken = true;
  }
  co_return "";
}

asio::awaitable<std::string> Lease::Renew(RedisConnection& conn) {
  Result r = co_await Call(
      conn, Cmd("EVAL", kRenewScript, "1", keys_.lease(), token_, std::to_string(lease_ms_)));
  if (!r.ok()) co_return "cannot renew the lease: " + r.what();
  if (r.reply.integer != 1) co_return "lost the lease to another instance";
  co_return "";
}

asio::awaitable<void> Lease::Release(RedisConnection& conn) {
  if (!conn.connected() || token_.empty()) co_return;
  co_await Call(conn, Cmd("EVAL", kReleaseScript, "1", keys_.lease(), token_));
}

}  // namespace journeyd::store
