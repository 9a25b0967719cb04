// The admin HTTP server (Boost.Beast) on admin.listen: a table of handlers, each a pure
// function from request to response, with limits on request size, headers and time.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <functional>
#include <string>

namespace journeyd::admin {

struct AdminStatus {
  bool redis_ok = false;
  int partitions_owned = 0;
  int partitions = 0;
};

struct AdminResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// The pure part: method and target in, response out.
AdminResponse HandleAdminRequest(std::string_view method, std::string_view target,
                                 const AdminStatus& status);

class AdminServer {
 public:
  // `listen` is admin.listen: "127.0.0.1:8725", "[::1]:8725".
  AdminServer(boost::asio::io_context& io, std::string listen, std::function<AdminStatus()> status);
  // Binds and starts accepting; returns "" or why it could not.
  std::string Start();
  void Stop();
  unsigned short port() const { return port_; }

 private:
  void Accept();

  boost::asio::io_context& io_;
  std::string listen_;
  std::function<AdminStatus()> status_;
  boost::asio::ip::tcp::acceptor acceptor_;
  unsigned short port_ = 0;
};

}  // namespace journeyd::admin
