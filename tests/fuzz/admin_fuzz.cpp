// The admin HTTP endpoints: raw request bytes through Beast's request parser with the
// session's limits (admin/server.h Limits), into the daemon's own route table and handlers
// (src/app/admin_api.cpp) and back out as a Beast response, with no listening socket. The
// handlers that need Redis find it refusing connections (a closed loopback port), as when it
// is down. Several requests in one input are read one after the other, as on a kept-alive
// connection. Invariants: every request gets a response with a real HTTP status, and no
// handler puts CR or LF into a header.
#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

#include "admin_api.h"
#include "journeyd/admin/server.h"
#include "journeyd/app/config.h"
#include "journeyd/app/unsubscribe.h"
#include "runtime.h"

using namespace journeyd;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

app::Config FuzzConfig() {
  app::Config c;
  c.redis.host = "127.0.0.1";
  c.redis.port = 1;  // nothing listens: Redis is down
  c.redis.partitions = 2;
  return c;
}

struct Daemon {
  asio::io_context io;
  app::Config config = FuzzConfig();
  app::internal::Shared shared{config, std::make_shared<const flow::FlowSet>(),
                               {},     app::ScaledClock(1, FromUnixMillis(1779278400000)),
                               {},     false,
                               "fuzz", nullptr,
                               {}};
  app::UnsubscribeTokens tokens{"admin fuzzing secret"};
  app::internal::AdminApi api{io, shared, tokens};
  admin::Routes routes = api.Routes();
};

[[noreturn]] void Fail(const char* what, std::string_view detail) {
  std::fprintf(stderr, "%s: %.*s\n", what, static_cast<int>(detail.size()), detail.data());
  std::abort();
}

bool HasLineBreak(std::string_view s) { return s.find_first_of("\r\n") != std::string_view::npos; }

// The request as the session builds it from a parsed message.
admin::Request ToRequest(const http::request<http::string_body>& msg) {
  admin::Request req;
  req.method = std::string(msg.method_string());
  std::string_view target(msg.target().data(), msg.target().size());
  const size_t q = target.find('?');
  req.path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) req.query = std::string(target.substr(q + 1));
  req.body = msg.body();
  return req;
}

void Answer(Daemon& d, const admin::Request& req, bool head) {
  std::optional<admin::Response> got;
  asio::co_spawn(d.io, admin::Dispatch(d.routes, req),
                 [&got](std::exception_ptr e, admin::Response r) {
                   if (e) Fail("Dispatch threw", "");
                   got = std::move(r);
                 });
  d.io.restart();
  d.io.run();
  if (!got) Fail("no response", req.path);
  const admin::Response& r = *got;
  if (r.status < 100 || r.status > 599) Fail("bad status", req.path);
  if (HasLineBreak(r.content_type)) Fail("CR or LF in Content-Type", r.content_type);
  for (const auto& [name, value] : r.headers) {
    if (HasLineBreak(name) || HasLineBreak(value)) Fail("CR or LF in a header", value);
  }
  // As the session writes it.
  http::response<http::string_body> res;
  res.result(static_cast<http::status>(r.status));
  res.version(11);
  res.set(http::field::content_type, r.content_type);
  for (const auto& [name, value] : r.headers) res.set(name, value);
  res.body() = r.body;
  res.prepare_payload();
  if (head) res.body().clear();
  std::ostringstream wire;
  wire << res;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Daemon* d = [] {
    spdlog::set_level(spdlog::level::off);
    return new Daemon();
  }();
  const admin::Limits limits;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  for (int n = 0; n < 8 && !in.empty(); ++n) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<uint32_t>(limits.header_bytes));
    parser.body_limit(limits.body_bytes);
    parser.eager(true);
    beast::error_code ec;
    // As http::read feeds it: parts of the message one put() after the other. need_more with
    // every byte given means the request is cut short (the session waits, then times out);
    // put() must not see the same bytes again after it.
    while (!in.empty() && !ec && !parser.is_done()) {
      const size_t used = parser.put(asio::buffer(in.data(), in.size()), ec);
      in.remove_prefix(used);
    }
    // Malformed or cut short: the session answers 4xx or stops reading; no handler runs.
    if (ec || !parser.is_done()) return 0;
    const auto& msg = parser.get();
    if (static_cast<size_t>(std::distance(msg.begin(), msg.end())) > limits.header_fields) {
      return 0;
    }
    Answer(*d, ToRequest(msg), msg.method() == http::verb::head);
    if (!msg.keep_alive()) return 0;
  }
  return 0;
}
