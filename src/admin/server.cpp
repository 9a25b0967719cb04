#include "journeyd/admin/server.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <memory>

namespace journeyd::admin {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

AdminResponse HandleAdminRequest(std::string_view method, std::string_view target,
                                 const AdminStatus& st) {
  std::string_view path = target.substr(0, target.find('?'));
  struct Route {
    std::string_view path, help;
  };
  static constexpr Route kRoutes[] = {
      {"/healthz", "the process is alive"},
      {"/readyz", "Redis is reachable and this instance owns partitions"},
  };
  bool known = false;
  for (const auto& r : kRoutes) known = known || r.path == path;
  if (path == "/") {
    std::string body = "journeyd admin\n\n";
    for (const auto& r : kRoutes) body += fmt::format("GET {:<10} {}\n", r.path, r.help);
    return {200, "text/plain; charset=utf-8", body};
  }
  if (!known) return {404, "text/plain; charset=utf-8", "not found; GET / lists the endpoints\n"};
  if (method != "GET" && method != "HEAD") {
    return {405, "text/plain; charset=utf-8", "method not allowed\n"};
  }
  if (path == "/healthz") return {200, "text/plain; charset=utf-8", "ok\n"};
  // /readyz
  if (!st.redis_ok) return {503, "text/plain; charset=utf-8", "not ready: Redis unreachable\n"};
  if (st.partitions_owned <= 0) {
    return {503, "text/plain; charset=utf-8", "not ready: no partition owned yet\n"};
  }
  return {200, "text/plain; charset=utf-8",
          fmt::format("ready: {} of {} partitions owned\n", st.partitions_owned, st.partitions)};
}

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::function<AdminStatus()> status)
      : stream_(std::move(socket)), status_(std::move(status)) {}

  void Start() { Read(); }

 private:
  void Read() {
    parser_.emplace();
    parser_->body_limit(64 * 1024);
    parser_->header_limit(16 * 1024);
    stream_.expires_after(std::chrono::seconds(10));
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout) return Close();
    if (ec) {
      // Oversized or malformed: answer 4xx, never crash.
      bool too_big = ec == http::error::body_limit || ec == http::error::header_limit;
      Reply(too_big ? 413 : 400, too_big ? "request too large\n" : "bad request\n", false);
      return;
    }
    const auto& req = parser_->get();
    AdminResponse r = HandleAdminRequest(std::string_view(req.method_string()),
                                         std::string_view(req.target()), status_());
    Reply(r.status, r.body, req.keep_alive(), r.content_type, req.method() == http::verb::head);
  }

  void Reply(int status, std::string body, bool keep_alive,
             std::string content_type = "text/plain; charset=utf-8", bool head = false) {
    auto res = std::make_shared<http::response<http::string_body>>();
    res->result(static_cast<http::status>(status));
    res->version(11);
    res->set(http::field::server, "journeyd");
    res->set(http::field::content_type, content_type);
    res->keep_alive(keep_alive);
    if (!head) res->body() = std::move(body);
    res->prepare_payload();
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res, keep_alive](beast::error_code ec, size_t) {
                        if (ec || !keep_alive) return self->Close();
                        self->Read();
                      });
  }

  void Close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::function<AdminStatus()> status_;
};

}  // namespace

AdminServer::AdminServer(asio::io_context& io, std::string listen,
                         std::function<AdminStatus()> status)
    : io_(io), listen_(std::move(listen)), status_(std::move(status)), acceptor_(io) {}

std::string AdminServer::Start() {
  const std::string& listen = listen_;
  auto colon = listen.rfind(':');
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
    if (!ec) std::make_shared<Session>(std::move(socket), status_)->Start();
    Accept();
  });
}

}  // namespace journeyd::admin
