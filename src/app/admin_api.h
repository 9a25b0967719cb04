// The admin endpoints over the daemon's state: readiness, metrics, flow statistics, customer
// state and one-click unsubscribe. The admin module serves them; this is where they meet Redis
// and the engine. Internal to the app module.
#pragma once

#include <memory>

#include "journeyd/admin/server.h"
#include "journeyd/app/unsubscribe.h"
#include "runtime.h"

namespace journeyd::app::internal {

class AdminApi {
 public:
  // `shared` and `tokens` must outlive this object, which must outlive the server.
  AdminApi(asio::io_context& io, Shared& shared, const UnsubscribeTokens& tokens);
  ~AdminApi();
  AdminApi(const AdminApi&) = delete;
  AdminApi& operator=(const AdminApi&) = delete;

  admin::Routes Routes();

 private:
  using Request = admin::Request;
  using Response = admin::Response;

  // "" when the admin connection to Redis is up (connecting it when needed).
  asio::awaitable<std::string> Redis();
  asio::awaitable<Response> Readyz(const Request& r);
  asio::awaitable<Response> Metrics(const Request& r);
  asio::awaitable<Response> Flows(const Request& r);
  asio::awaitable<Response> Customer(const Request& r);
  asio::awaitable<Response> Unsubscribe(const Request& r);

  Shared& s_;
  const UnsubscribeTokens& tokens_;
  // One connection of its own, so that admin reads never queue behind a worker's blocking
  // XREADGROUP.
  std::shared_ptr<store::RedisConnection> conn_;
  bool connecting_ = false;
};

}  // namespace journeyd::app::internal
