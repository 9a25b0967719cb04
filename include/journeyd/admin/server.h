// The admin HTTP server (Boost.Beast) on admin.listen: a table of routes, each with its
// methods, a one-line help and an asynchronous handler, behind a session that bounds request
// size, header count and time. The table knows nothing of Redis or the engine: the daemon
// (app) fills it.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace journeyd::admin {

struct Request {
  std::string method;  // as sent: "GET", "POST", ...
  std::string path;    // the target before '?', not decoded
  std::string query;   // the target after '?', not decoded
  std::string body;
};

struct Response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra header fields
};

Response Text(int status, std::string body);
Response Json(int status, std::string body);

// Handlers run on the daemon's main io_context: anything slow (Redis) is awaited, never
// waited for.
using Handler = std::function<boost::asio::awaitable<Response>(const Request&)>;

struct Route {
  std::string path;  // exact path, or with `prefix` every path that starts with it
  bool prefix = false;
  std::vector<std::string> methods;  // "GET" also answers HEAD
  std::string help;                  // one line, shown by GET /
  Handler handler;
};

class Routes {
 public:
  void Add(Route route) { routes_.push_back(std::move(route)); }
  const std::vector<Route>& all() const { return routes_; }

  // The pure part of dispatch: the route for `method` and `path`, or the response to send
  // instead (the index for GET /, 404 for an unknown path, 405 with Allow for a method the
  // path does not take).
  struct Match {
    const Route* route = nullptr;
    Response response;
  };
  Match Find(std::string_view method, std::string_view path) const;
  std::string Index() const;

 private:
  std::vector<Route> routes_;
};

// Finds the route and runs its handler; a handler that throws gives 500.
boost::asio::awaitable<Response> Dispatch(const Routes& routes, const Request& request);

// Percent-decoding; with `plus_is_space` (query strings) '+' is a space. nullopt when a '%'
// is not followed by two hex digits.
std::optional<std::string> UrlDecode(std::string_view s, bool plus_is_space = false);
// The decoded value of `name` in a query string (first occurrence), nullopt when absent or
// malformed.
std::optional<std::string> QueryParam(std::string_view query, std::string_view name);
std::string HtmlEscape(std::string_view s);

// What /readyz needs to know, gathered by the daemon. Ready: Redis answers, every partition
// has an owner, and this instance is one of them. Delivery that cannot reach its relay (or
// write its folder) is said in the body but keeps a ready instance ready: it still commits
// every event and timer, and its unsubscribe links must keep working.
struct ReadyStatus {
  bool redis_ok = false;
  std::string redis_error;
  int partitions = 0;
  int owned_here = 0;
  std::vector<int> unowned;     // partitions no instance holds a lease on
  std::string delivery_error;   // "" while mail goes out
  int64_t delivery_down_s = 0;  // for how long it has not
};
Response ReadyzResponse(const ReadyStatus& status);

struct Limits {
  size_t body_bytes = 64 * 1024;
  size_t header_bytes = 16 * 1024;  // request line and header fields
  size_t header_fields = 64;
  // For a whole request, from its first byte (or from the previous response on a kept-alive
  // connection) to its last: slow or idle clients are dropped.
  std::chrono::milliseconds read_time{10000};
  size_t sessions = 128;  // concurrent connections; more are closed at once
};

class AdminServer {
 public:
  // `listen` is admin.listen: "127.0.0.1:8725", "[::1]:8725".
  AdminServer(boost::asio::io_context& io, std::string listen, Routes routes, Limits limits = {});
  ~AdminServer();
  // Binds and starts accepting; returns "" or why it could not.
  std::string Start();
  void Stop();
  unsigned short port() const { return port_; }

 private:
  void Accept();

  boost::asio::io_context& io_;
  std::string listen_;
  // Shared with the sessions, which may outlive a stopped server by one request.
  std::shared_ptr<const Routes> routes_;
  Limits limits_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::shared_ptr<size_t> sessions_;
  unsigned short port_ = 0;
};

}  // namespace journeyd::admin
