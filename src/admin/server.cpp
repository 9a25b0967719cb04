#include "journeyd/admin/server.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <iterator>

namespace journeyd::admin {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

Response Text(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

Response Json(int status, std::string body) {
  Response r;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body);
  return r;
}

namespace {

bool Allows(const Route& r, std::string_view method) {
  for (const auto& m : r.methods) {
    if (m == method || (m == "GET" && method == "HEAD")) return true;
  }
  return false;
}

bool Matches(const Route& r, std::string_view path) {
  return r.prefix ? path.substr(0, r.path.size()) == r.path && path.size() > r.path.size()
                  : path == r.path;
}

std::string AllowHeader(const std::vector<std::string>& methods) {
  std::string allow;
  for (const auto& m : methods) {
    if (!allow.empty()) allow += ", ";
    allow += m;
    if (m == "GET") allow += ", HEAD";
  }
  return allow;
}

}  // namespace

std::string Routes::Index() const {
  std::string body = "journeyd admin\n\n";
  for (const auto& r : routes_) {
    std::string methods;
    for (const auto& m : r.methods) methods += (methods.empty() ? "" : ",") + m;
    std::string path = r.prefix ? r.path + "..." : r.path;
    body += fmt::format("{:<9} {:<20} {}\n", methods, path, r.help);
  }
  return body;
}

Routes::Match Routes::Find(std::string_view method, std::string_view path) const {
  if (path == "/") {
    if (method != "GET" && method != "HEAD") {
      Response r = Text(405, "method not allowed; GET / lists the endpoints\n");
      r.headers.emplace_back("Allow", "GET, HEAD");
      return {nullptr, std::move(r)};
    }
    return {nullptr, Text(200, Index())};
  }
  for (const auto& route : routes_) {
    if (!Matches(route, path)) continue;
    if (Allows(route, method)) return {&route, {}};
    Response r = Text(405, fmt::format("method not allowed; {} takes {}\n", route.path,
                                       AllowHeader(route.methods)));
    r.headers.emplace_back("Allow", AllowHeader(route.methods));
    return {nullptr, std::move(r)};
  }
  return {nullptr, Text(404, "not found; GET / lists the endpoints\n")};
}

asio::awaitable<Response> Dispatch(const Routes& routes, const Request& request) {
  Routes::Match m = routes.Find(request.method, request.path);
  if (!m.route) co_return std::move(m.response);
  try {
    co_return co_await m.route->handler(request);
  } catch (const std::exception& e) {
    spdlog::error("admin: {} {}: {}", request.method, request.path, e.what());
  }
  co_return Text(500, "internal error\n");
}

std::optional<std::string> UrlDecode(std::string_view s, bool plus_is_space) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::optional<std::string> QueryParam(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    size_t eq = pair.find('=');
    auto key = UrlDecode(pair.substr(0, eq), true);
    if (!key || *key != name) continue;
    if (eq == std::string_view::npos) return std::string();
    return UrlDecode(pair.substr(eq + 1), true);
  }
  return std::nullopt;
}

std::string HtmlEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

Response ReadyzResponse(const ReadyStatus& st) {
  if (!st.redis_ok) {
    return Text(503, fmt::format("not ready: Redis unreachable: {}\n", st.redis_error));
  }
  if (!st.unowned.empty()) {
    return Text(503, fmt::format("not ready: partition(s) {} not owned by any instance\n",
                                 fmt::join(st.unowned, ", ")));
  }
  // A standby (or one still taking its leases) does not do the work yet: not ready, so that
  // an orchestrator waits for the instance that does.
  if (st.owned_here <= 0) {
    return Text(503, "not ready: this instance owns no partition yet (starting or standby)\n");
  }
  std::string body = fmt::format("ready: all {} partition(s) owned, {} by this instance\n",
                                 st.partitions, st.owned_here);
  if (!st.delivery_error.empty()) {
    body += fmt::format("degraded: no mail delivered for {} s: {}; the mails wait in the outbox\n",
                        st.delivery_down_s, st.delivery_error);
  }
  return Text(200, std::move(body));
}

namespace {

// Decrements the live-session count when a session ends, however it ends.
class SessionSlot {
 public:
  explicit SessionSlot(std::shared_ptr<size_t> count) : count_(std::move(count)) { ++*count_; }
  SessionSlot(SessionSlot&& o) noexcept : count_(std::move(o.count_)) {}
  SessionSlot(const SessionSlot&) = delete;
  SessionSlot& operator=(const SessionSlot&) = delete;
  SessionSlot& operator=(SessionSlot&&) = delete;
  ~SessionSlot() {
    if (count_) --*count_;
  }

 private:
  std::shared_ptr<size_t> count_;
};

asio::awaitable<void> Write(beast::tcp_stream& stream, const Limits& limits, Response r,
                            bool keep_alive, bool head, beast::error_code& ec) {
  http::response<http::string_body> res;
  res.result(static_cast<http::status>(r.status));
  res.version(11);
  res.set(http::field::server, "journeyd");
  res.set(http::field::content_type, r.content_type);
  for (const auto& [name, value] : r.headers) res.set(name, value);
  res.keep_alive(keep_alive);
  res.body() = std::move(r.body);
  res.prepare_payload();
  // HEAD: the GET response's Content-Length, no body.
  if (head) res.body().clear();
  stream.expires_after(limits.read_time);
  co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
}

// After refusing a request whose rest is still unread: half-close, then read and drop what
// the client still sends for a moment. Closing at once would make the kernel answer the
// unread bytes with a reset, which can destroy the error response before the client reads it.
asio::awaitable<void> LingeringClose(beast::tcp_stream& stream) {
  beast::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  stream.expires_after(std::chrono::seconds(2));
  std::array<char, 4096> sink;
  for (size_t total = 0; !ec && total < 1024 * 1024;) {
    total += co_await stream.async_read_some(asio::buffer(sink),
                                             asio::redirect_error(asio::use_awaitable, ec));
  }
}

asio::awaitable<void> Session(tcp::socket socket, std::shared_ptr<const Routes> routes,
                              Limits limits, SessionSlot slot) {
  (void)slot;
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer(limits.header_bytes + 1024);
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<uint32_t>(limits.header_bytes));
    parser.body_limit(limits.body_bytes);
    // One deadline for the whole request: a client trickling bytes cannot hold the slot.
    stream.expires_after(limits.read_time);
    beast::error_code ec;
    co_await http::async_read_header(stream, buffer, parser,
                                     asio::redirect_error(asio::use_awaitable, ec));
    if (!ec && static_cast<size_t>(std::distance(parser.get().begin(), parser.get().end())) >
                   limits.header_fields) {
      co_await Write(stream, limits, Text(431, "too many header fields\n"), false, false, ec);
      co_await LingeringClose(stream);
      co_return;
    }
    if (!ec && !parser.is_done()) {
      co_await http::async_read(stream, buffer, parser,
                                asio::redirect_error(asio::use_awaitable, ec));
    }
    if (ec) {
      if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
          ec == asio::error::operation_aborted || ec == http::error::partial_message ||
          ec == asio::error::connection_reset || ec == asio::error::eof) {
        break;
      }
      // Oversized or malformed: answer 4xx and close, never crash.
      Response r = Text(400, "bad request\n");
      if (ec == http::error::header_limit) r = Text(431, "request header too large\n");
      if (ec == http::error::body_limit) r = Text(413, "request body too large\n");
      co_await Write(stream, limits, std::move(r), false, false, ec);
      co_await LingeringClose(stream);
      co_return;
    }
    const auto& msg = parser.get();
    Request req;
    req.method = std::string(msg.method_string());
    std::string_view target(msg.target().data(), msg.target().size());
    size_t q = target.find('?');
    req.path = std::string(target.substr(0, q));
    if (q != std::string_view::npos) req.query = std::string(target.substr(q + 1));
    req.body = msg.body();
    const bool keep_alive = msg.keep_alive();
    const bool head = msg.method() == http::verb::head;
    Response r = co_await Dispatch(*routes, req);
    co_await Write(stream, limits, std::move(r), keep_alive, head, ec);
    if (ec || !keep_alive) break;
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

}  // namespace

AdminServer::AdminServer(asio::io_context& io, std::string listen, Routes routes, Limits limits)
    : io_(io),
      listen_(std::move(listen)),
      routes_(std::make_shared<const Routes>(std::move(routes))),
      limits_(limits),
      acceptor_(io),
      sessions_(std::make_shared<size_t>(0)) {}

AdminServer::~AdminServer() = default;

std::string AdminServer::Start() {
  const std::string& listen = listen_;
  auto colon = listen.rfind(':');
  if (colon == std::string::npos) return fmt::format("admin.listen '{}': no port", listen);
  std::string host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  int port = std::atoi(listen.substr(colon + 1).c_str());
  beast::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) return fmt::format("admin.listen '{}': '{}' is not an IP address", listen, host);
  tcp::endpoint ep(addr, static_cast<unsigned short>(port));
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return fmt::format("admin.listen '{}': {}", listen, ec.message());
  port_ = acceptor_.local_endpoint().port();
  Accept();
  return "";
}

void AdminServer::Stop() {
  beast::error_code ec;
  acceptor_.close(ec);
}

void AdminServer::Accept() {
  acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) {
      if (*sessions_ >= limits_.sessions) {
        spdlog::warn("admin: {} connections open; refusing another", *sessions_);
        socket.close(ec);
      } else {
        asio::co_spawn(io_, Session(std::move(socket), routes_, limits_, SessionSlot(sessions_)),
                       [](std::exception_ptr e) {
                         if (!e) return;
                         try {
                           std::rethrow_exception(e);
                         } catch (const std::exception& ex) {
                           spdlog::warn("admin session: {}", ex.what());
                         }
                       });
      }
    }
    Accept();
  });
}

}  // namespace journeyd::admin
