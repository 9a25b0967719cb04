#include "journeyd/store/streams.h"

#include "journeyd/store/await.h"

namespace journeyd::store {

namespace asio = boost::asio;

asio::awaitable<std::string> EnsureGroup(RedisConnection& conn, const std::string& stream,
                                         std::string_view group) {
  Result r = co_await Call(conn, Cmd("XGROUP", "CREATE", stream, group, "0", "MKSTREAM"));
  if (!r.error.empty()) co_return r.error;
  if (r.reply.is_error() && r.reply.str.rfind("BUSYGROUP", 0) != 0) {
    co_return "cannot create consumer group: " + r.reply.str;
  }
  co_return "";
}

asio::awaitable<int64_t> StreamLength(RedisConnection& conn, const std::string& stream) {
  Result len = co_await Call(conn, Cmd("XLEN", stream));
  co_return len.ok() ? len.reply.integer : -1;
}

namespace {

// The last entry id delivered to `group`, from XINFO GROUPS ("" when the group is missing).
std::string LastDelivered(const Reply& groups, std::string_view group) {
  std::string min_id;
  for (const Reply& g : groups.elements) {
    std::string name, last;
    for (size_t i = 0; i + 1 < g.elements.size(); i += 2) {
      if (g.elements[i].str == "name") name = g.elements[i + 1].str;
      if (g.elements[i].str == "last-delivered-id") last = g.elements[i + 1].str;
    }
    if (name == group) min_id = last;
  }
  return min_id;
}

}  // namespace

asio::awaitable<std::string> TrimAcknowledged(RedisConnection& conn, const std::string& stream,
                                              std::string_view group) {
  Result pending = co_await Call(conn, Cmd("XPENDING", stream, group));
  if (!pending.ok()) co_return "XPENDING: " + pending.what();
  std::string min_id;
  if (pending.reply.elements.size() >= 2 && pending.reply.elements[0].integer > 0) {
    min_id = pending.reply.elements[1].str;
  } else {
    Result info = co_await Call(conn, Cmd("XINFO", "GROUPS", stream));
    if (!info.ok()) co_return "XINFO: " + info.what();
    min_id = LastDelivered(info.reply, group);
  }
  if (min_id.empty() || min_id == "0-0") co_return "";
  Result t = co_await Call(conn, Cmd("XTRIM", stream, "MINID", "~", min_id));
  if (!t.ok()) co_return "XTRIM: " + t.what();
  co_return "";
}

}  // namespace journeyd::store
