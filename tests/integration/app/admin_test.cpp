// The admin endpoints of the real journeyd binary over a real socket, against a real
// redis-server: the handler table, request limits, flow counts, customer state and the
// one-click unsubscribe from a real mail's List-Unsubscribe header.
#include <nlohmann/json.hpp>

#include "daemon_fixture.h"

namespace journeyd {
namespace {

using store::Reply;
using testing::Daemon;
using Json = nlohmann::json;

std::string Profile(const std::string& email) {
  return Json::object({{"email", email}, {"first_name", "Ann"}, {"email_opt_in", true}}).dump();
}

class Admin : public Daemon {
 protected:
  void StartReady(double scale) {
    WriteConfig(scale);
    Start();
    ASSERT_TRUE(WaitFor([&] { return Status(HttpGet("/readyz")) == 200; })) << HttpGet("/readyz");
  }

  Json GetJson(const std::string& path, int expect_status = 200) {
    std::string r = HttpGet(path);
    EXPECT_EQ(Status(r), expect_status) << r;
    return Json::parse(Body(r), nullptr, false);
  }

  static const Json* FindFlow(const Json& flows, const std::string& id) {
    for (const auto& f : flows["flows"]) {
      if (f["id"] == id) return &f;
    }
    return nullptr;
  }

  static const Json* FindStep(const Json& flow, const std::string& id) {
    for (const auto& s : flow["steps"]) {
      if (s["id"] == id) return &s;
    }
    return nullptr;
  }

  // Entries of type `type` in the partition-0 events stream.
  int EventsOfType(const std::string& type) {
    int n = 0;
    for (const Reply& e : Cmd({"XRANGE", "journeyd:{0}:events", "-", "+"}).elements) {
      if (Fields(e)["type"] == type) ++n;
    }
    return n;
  }

  static std::string TokenOf(const std::string& list_unsubscribe) {
    auto at = list_unsubscribe.find("token=");
    if (at == std::string::npos) return "";
    at += 6;
    return list_unsubscribe.substr(at, list_unsubscribe.find('>', at) - at);
  }

  std::string Post(const std::string& target, const std::string& body) {
    return HttpRaw("POST " + target +
                   " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                   "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: " +
                   std::to_string(body.size()) + "\r\n\r\n" + body);
  }
};

TEST_F(Admin, TheHandlerTableAnswersEveryPathAndMethod) {
  StartReady(1);
  std::string index = HttpGet("/");
  EXPECT_EQ(Status(index), 200);
  for (const char* path :
       {"/healthz", "/readyz", "/metrics", "/v1/flows", "/v1/customers/", "/unsubscribe"}) {
    EXPECT_NE(index.find(path), std::string::npos) << path;
  }
  EXPECT_EQ(Body(HttpGet("/healthz")), "ok\n");
  EXPECT_NE(Body(HttpGet("/readyz")).find("ready: all 1 partition(s) owned"), std::string::npos);
  EXPECT_EQ(Status(HttpGet("/nope")), 404);
  EXPECT_EQ(Status(HttpGet("/v1/flows/extra")), 404);

  std::string wrong = Post("/healthz", "");
  EXPECT_EQ(Status(wrong), 405);
  EXPECT_NE(wrong.find("Allow: GET, HEAD\r\n"), std::string::npos) << wrong;
  std::string brew = HttpRaw("BREW /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(Status(brew), 405) << brew;
  std::string del = HttpRaw("DELETE /unsubscribe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(del.find("Allow: GET, HEAD, POST\r\n"), std::string::npos) << del;
  // Not HTTP at all.
  EXPECT_EQ(Status(HttpRaw("G\x01T / HTTP/1.1\r\n\r\n")), 400);

  std::string head = HttpRaw("HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(Status(head), 200);
  EXPECT_NE(head.find("Content-Length: 3\r\n"), std::string::npos) << head;
  EXPECT_EQ(Body(head), "");
  EXPECT_EQ(Status(HttpGet("/healthz")), 200);
}

TEST_F(Admin, OversizedAndOverlongRequestsAreRefusedAndTheDaemonServesOn) {
  StartReady(1);
  std::string big_header =
      HttpRaw("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'a') +
              "\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(Status(big_header), 431) << big_header.substr(0, 200);
  EXPECT_EQ(Status(HttpRaw("GET /" + std::string(20000, 'a') +
                           " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")),
            431);

  std::string many = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 100; ++i) many += "X-H" + std::to_string(i) + ": v\r\n";
  many += "Connection: close\r\n\r\n";
  EXPECT_EQ(Status(HttpRaw(many)), 431);

  std::string body(100000, 'x');
  EXPECT_EQ(Status(Post("/unsubscribe?token=x", body)), 413);
  // A chunked body has no length up front: the limit applies while it is read.
  std::string chunked =
      "POST /unsubscribe?token=x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
      "Connection: close\r\n\r\n";
  for (int i = 0; i < 20; ++i) chunked += "1000\r\n" + std::string(4096, 'y') + "\r\n";
  chunked += "0\r\n\r\n";
  EXPECT_EQ(Status(HttpRaw(chunked)), 413);

  EXPECT_EQ(Status(HttpGet("/healthz")), 200);
  EXPECT_EQ(Status(HttpGet("/readyz")), 200);
}

TEST_F(Admin, FlowCountsAddUpAndSurviveARestart) {
  StartReady(1);  // real time: only the welcome series' first mail is due
  const int kCustomers = 3;
  for (int i = 0; i < kCustomers; ++i) {
    Publish({"type", "signup", "customer_id", "w/" + std::to_string(i), "profile",
             Profile("w" + std::to_string(i) + "@example.com")});
  }
  Publish({"type", "signup", "customer_id", "no-consent", "profile",
           R"({"email":"nc@example.com","email_opt_in":false})"});
  ASSERT_TRUE(WaitFor([&] { return Mails().size() >= static_cast<size_t>(kCustomers); }));

  auto check = [&] {
    Json flows = GetJson("/v1/flows");
    const Json* welcome = FindFlow(flows, "welcome");
    ASSERT_NE(welcome, nullptr) << flows.dump();
    EXPECT_EQ((*welcome)["entered"], kCustomers + 1);
    EXPECT_EQ((*welcome)["sent"], kCustomers);
    const Json* thanks = FindStep(*welcome, "thanks");
    ASSERT_NE(thanks, nullptr);
    EXPECT_EQ((*thanks)["kind"], "send");
    EXPECT_EQ((*thanks)["entered"], kCustomers + 1);
    EXPECT_EQ((*thanks)["sent"], kCustomers);
    EXPECT_EQ((*thanks)["suppressed"]["no_opt_in"], 1) << thanks->dump();
    const Json* tips = FindStep(*welcome, "tips");
    ASSERT_NE(tips, nullptr);
    EXPECT_EQ((*tips)["sent"], 0);
    const Json* winback = FindFlow(flows, "winback");
    ASSERT_NE(winback, nullptr);
    EXPECT_EQ((*winback)["entered"], 0);
  };
  ASSERT_TRUE(WaitFor([&] {
    Json f = GetJson("/v1/flows");
    const Json* w = FindFlow(f, "welcome");
    return w && (*w)["entered"] == kCustomers + 1;
  }));
  check();

  std::string metrics = HttpGet("/metrics");
  EXPECT_NE(metrics.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
  EXPECT_NE(metrics.find("journeyd_build_info{version=\""), std::string::npos);
  EXPECT_NE(metrics.find("journeyd_events_total{type=\"signup\",outcome=\"processed\"} 4\n"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("journeyd_mails_total{flow=\"welcome\",outcome=\"queued\"} 3\n"),
            std::string::npos);
  EXPECT_NE(metrics.find("journeyd_partitions_owned 1\n"), std::string::npos);
  EXPECT_NE(metrics.find("journeyd_commit_seconds_count "), std::string::npos);
  EXPECT_NE(metrics.find("journeyd_stream_lag{partition=\"0\",stream=\"events\"} 0\n"),
            std::string::npos);
  EXPECT_NE(metrics.find("# TYPE journeyd_smtp_seconds histogram\n"), std::string::npos);

  // The counts live in Redis: a restarted daemon reports the same.
  EXPECT_EQ(Stop(SIGTERM), 0);
  Start();
  ASSERT_TRUE(WaitFor([&] { return Status(HttpGet("/readyz")) == 200; }));
  check();
}

TEST_F(Admin, CustomerStateByUrlEncodedId) {
  StartReady(1);
  Publish({"type", "signup", "customer_id", "a b/ü", "profile", Profile("ab@example.com")});
  const std::string path = "/v1/customers/a%20b%2F%C3%BC";
  ASSERT_TRUE(WaitFor([&] { return Status(HttpGet(path)) == 200; })) << HttpGet(path);
  Json c = GetJson(path);
  EXPECT_EQ(c["profile"]["email"], "ab@example.com") << c.dump();
  EXPECT_EQ(c["unsubscribed"], false);
  EXPECT_EQ(Status(HttpGet("/v1/customers/nobody")), 404);
  EXPECT_EQ(Status(HttpGet("/v1/customers/bad%zz")), 400);
  EXPECT_EQ(Status(HttpGet("/v1/customers/%0A")), 400);
}

TEST_F(Admin, OneClickUnsubscribeFromARealMail) {
  StartReady(3600);  // an hour per second: the welcome series' second mail is 72 s away
  Publish({"type", "signup", "customer_id", "c42", "profile", Profile("anna@example.com")});
  ASSERT_TRUE(WaitFor([&] { return Mails().size() == 1; }));
  std::string mail = Read(Mails()[0]);
  EXPECT_EQ(Header(mail, "List-Unsubscribe-Post"), "List-Unsubscribe=One-Click");
  const std::string token = TokenOf(Header(mail, "List-Unsubscribe"));
  ASSERT_FALSE(token.empty()) << mail;
  // The link is signed when the mail goes out: the outbox entry does not carry it.
  Reply queued = Cmd({"XRANGE", "journeyd:{0}:outbox", "-", "+"});
  ASSERT_EQ(queued.elements.size(), 1u);
  EXPECT_EQ(Fields(queued.elements[0])["job"].find("unsubscribe"), std::string::npos)
      << Fields(queued.elements[0])["job"];

  // Forged, altered and malformed tokens change nothing.
  std::string altered_mac = token;
  altered_mac.back() = altered_mac.back() == '0' ? '1' : '0';
  std::string other_customer = token;
  other_customer.replace(0, other_customer.find('.'), "YzQz");  // base64url("c43")
  for (const std::string& bad :
       {altered_mac, other_customer, std::string("abc"), std::string(""), token + "x",
        std::string("YzQy.d2VsY29tZQ.00000000000000000000000000000000")}) {
    std::string r = Post("/unsubscribe?token=" + bad, "List-Unsubscribe=One-Click");
    EXPECT_EQ(Status(r), 403) << bad << "\n" << r;
    EXPECT_EQ(Status(HttpGet("/unsubscribe?token=" + bad)), 403) << bad;
  }
  EXPECT_EQ(Status(Post("/unsubscribe", "List-Unsubscribe=One-Click")), 403);
  EXPECT_EQ(EventsOfType("unsubscribe"), 0);

  // A person clicking the link: unsubscribed at once, with a page that says so.
  std::string page = HttpGet("/unsubscribe?token=" + token);
  EXPECT_EQ(Status(page), 200);
  EXPECT_NE(page.find("Content-Type: text/html"), std::string::npos);
  EXPECT_NE(page.find("You are unsubscribed"), std::string::npos) << page;
  EXPECT_EQ(EventsOfType("unsubscribe"), 1);

  // The mail client's one-click POST records it the same way (applying it twice is harmless).
  std::string done = Post("/unsubscribe?token=" + token, "List-Unsubscribe=One-Click");
  EXPECT_EQ(Status(done), 200) << done;
  EXPECT_NE(done.find("You are unsubscribed"), std::string::npos);
  EXPECT_EQ(EventsOfType("unsubscribe"), 2);
  ASSERT_TRUE(WaitFor([&] { return GetJson("/v1/customers/c42")["unsubscribed"] == true; }));

  // The welcome series halted; the next marketing mail (a cart reminder an hour later) is
  // suppressed.
  Publish({"type", "cart_updated", "customer_id", "c42", "data", R"({"total":80})"});
  ASSERT_TRUE(WaitFor([&] {
    Json f = GetJson("/v1/flows");
    const Json* cart = FindFlow(f, "abandoned_cart");
    return cart && (*cart)["suppressed"].value("unsubscribed", 0) == 1;
  })) << GetJson("/v1/flows").dump();
  Json flows = GetJson("/v1/flows");
  EXPECT_EQ((*FindFlow(flows, "welcome"))["exited"].value("exit_on:unsubscribe", 0), 1)
      << flows.dump();
  EXPECT_EQ(Mails().size(), 1u);
}

}  // namespace
}  // namespace journeyd
