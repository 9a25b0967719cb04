#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <stdexcept>

#include "journeyd/admin/server.h"

namespace journeyd::admin {
namespace {

namespace asio = boost::asio;

Handler Fixed(std::string body) {
  return [body](const Request&) -> asio::awaitable<Response> { co_return Text(200, body); };
}

Routes Table() {
  Routes r;
  r.Add({"/healthz", false, {"GET"}, "the process is alive", Fixed("ok\n")});
  r.Add({"/v1/customers/", true, {"GET"}, "a customer's state", Fixed("customer\n")});
  r.Add({"/unsubscribe", false, {"GET", "POST"}, "one-click unsubscribe", Fixed("unsub\n")});
  r.Add({"/boom", false, {"GET"}, "throws", [](const Request&) -> asio::awaitable<Response> {
           throw std::runtime_error("handler failed");
           co_return Text(200, "");
         }});
  return r;
}

Response Serve(const Routes& routes, std::string method, std::string path) {
  asio::io_context io;
  Response out;
  Request req;
  req.method = std::move(method);
  req.path = std::move(path);
  asio::co_spawn(io, Dispatch(routes, req), [&](std::exception_ptr e, Response r) {
    if (e) std::rethrow_exception(e);
    out = std::move(r);
  });
  io.run();
  return out;
}

std::string HeaderOf(const Response& r, const std::string& name) {
  for (const auto& [n, v] : r.headers) {
    if (n == name) return v;
  }
  return "";
}

TEST(AdminRoutes, IndexListsEveryRouteWithItsHelp) {
  Routes t = Table();
  Response index = Serve(t, "GET", "/");
  EXPECT_EQ(index.status, 200);
  EXPECT_NE(index.body.find("/healthz"), std::string::npos);
  EXPECT_NE(index.body.find("the process is alive"), std::string::npos);
  EXPECT_NE(index.body.find("GET,POST"), std::string::npos);
  EXPECT_NE(index.body.find("/v1/customers/..."), std::string::npos);
}

TEST(AdminRoutes, ExactPrefixAndHead) {
  Routes t = Table();
  EXPECT_EQ(Serve(t, "GET", "/healthz").body, "ok\n");
  EXPECT_EQ(Serve(t, "HEAD", "/healthz").status, 200);
  EXPECT_EQ(Serve(t, "GET", "/v1/customers/c42").body, "customer\n");
  EXPECT_EQ(Serve(t, "POST", "/unsubscribe").body, "unsub\n");
}

TEST(AdminRoutes, UnknownPathIs404) {
  Routes t = Table();
  EXPECT_EQ(Serve(t, "GET", "/nope").status, 404);
  EXPECT_EQ(Serve(t, "GET", "/healthz/").status, 404);
  // The prefix alone names no customer.
  EXPECT_EQ(Serve(t, "GET", "/v1/customers/").status, 404);
}

TEST(AdminRoutes, WrongMethodIs405WithAllow) {
  Routes t = Table();
  Response r = Serve(t, "POST", "/healthz");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(HeaderOf(r, "Allow"), "GET, HEAD");
  r = Serve(t, "DELETE", "/unsubscribe");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(HeaderOf(r, "Allow"), "GET, HEAD, POST");
  EXPECT_EQ(Serve(t, "POST", "/").status, 405);
}

TEST(AdminRoutes, AThrowingHandlerIs500) { EXPECT_EQ(Serve(Table(), "GET", "/boom").status, 500); }

TEST(AdminReadyz, NamesWhatIsMissing) {
  ReadyStatus st;
  st.redis_error = "connection refused";
  Response r = ReadyzResponse(st);
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body.find("Redis unreachable: connection refused"), std::string::npos);
  st.redis_ok = true;
  st.partitions = 4;
  st.owned_here = 2;
  st.unowned = {1, 3};
  r = ReadyzResponse(st);
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body.find("partition(s) 1, 3 not owned"), std::string::npos);
  st.unowned.clear();
  st.owned_here = 0;
  r = ReadyzResponse(st);
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body.find("owns no partition"), std::string::npos);
  st.owned_here = 2;
  r = ReadyzResponse(st);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "ready: all 4 partition(s) owned, 2 by this instance\n");
}

TEST(AdminText, UrlDecodeAndQuery) {
  EXPECT_EQ(UrlDecode("a%20b%2Fc"), "a b/c");
  EXPECT_EQ(UrlDecode("a+b"), "a+b");
  EXPECT_EQ(UrlDecode("a+b", true), "a b");
  EXPECT_EQ(UrlDecode("bad%2"), std::nullopt);
  EXPECT_EQ(UrlDecode("bad%zz"), std::nullopt);
  EXPECT_EQ(UrlDecode("%"), std::nullopt);
  EXPECT_EQ(QueryParam("a=1&token=x.y%2Ez&b", "token"), "x.y.z");
  EXPECT_EQ(QueryParam("a=1&b", "b"), "");
  EXPECT_EQ(QueryParam("a=1", "token"), std::nullopt);
  EXPECT_EQ(QueryParam("token=%G0", "token"), std::nullopt);
}

TEST(AdminText, HtmlEscape) {
  EXPECT_EQ(HtmlEscape(R"(<a href="x">'&'</a>)"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
}

}  // namespace
}  // namespace journeyd::admin
