#include "journeyd/store/await.h"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include "journeyd/store/entries.h"

namespace journeyd::store {

namespace asio = boost::asio;
using asio::use_awaitable;

asio::awaitable<void> Sleep(Duration d) {
  asio::steady_timer t(co_await asio::this_coro::executor);
  t.expires_after(d);
  boost::system::error_code ec;
  co_await t.async_wait(asio::redirect_error(use_awaitable, ec));
}

asio::awaitable<std::string> Connect(RedisConnection& c) {
  if (c.connected()) co_return "";
  co_return co_await asio::async_initiate<decltype(use_awaitable), void(std::string)>(
      [&c](auto handler) {
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        c.AsyncConnect([h](const std::string& e) { std::move (*h)(e); });
      },
      use_awaitable);
}

asio::awaitable<Result> Script(RedisConnection& conn, std::string& sha, std::string_view body,
                               std::vector<std::string> args) {
  if (!sha.empty()) {
    args.insert(args.begin(), sha);
    args.insert(args.begin(), "EVALSHA");
    Result r = co_await Call(conn, args);
    if (!(r.reply.is_error() && r.reply.str.rfind("NOSCRIPT", 0) == 0)) co_return r;
    args.erase(args.begin(), args.begin() + 2);
  }
  Result load = co_await Call(conn, Cmd("SCRIPT", "LOAD", std::string(body)));
  if (!load.ok()) co_return load;
  sha = load.reply.str;
  args.insert(args.begin(), sha);
  args.insert(args.begin(), "EVALSHA");
  co_return co_await Call(conn, args);
}

std::map<std::string, std::string> FieldMap(const Reply& fields) {
  std::map<std::string, std::string> m;
  for (size_t i = 0; i + 1 < fields.elements.size(); i += 2) {
    m.emplace(fields.elements[i].str, fields.elements[i + 1].str);
  }
  return m;
}

size_t EntryCount(const Reply& r) {
  if (r.type != Reply::Type::kArray || r.elements.empty()) return 0;
  const Reply& stream = r.elements[0];
  if (stream.elements.size() < 2) return 0;
  return stream.elements[1].elements.size();
}

const Reply* StreamEntries(const Reply& r) {
  if (r.type == Reply::Type::kArray && !r.elements.empty() && r.elements[0].elements.size() >= 2) {
    return &r.elements[0].elements[1];
  }
  return nullptr;
}

}  // namespace journeyd::store
