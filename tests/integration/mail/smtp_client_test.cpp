// The SMTP client against a real SMTP server (aiosmtpd) over loopback: plain, STARTTLS and
// implicit TLS with certificate checks, AUTH PLAIN and LOGIN, refusals, deferrals, a server
// that dies after the final dot, connection reuse and dot-stuffing.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "../smtp_peer.h"
#include "journeyd/mail/smtp.h"

namespace journeyd::mail {
namespace {

namespace asio = boost::asio;
using testing::SmtpPeer;
using testing::TestCertificate;

const std::string kMessage =
    "From: Shop <news@shop.example>\r\nTo: anna@example.com\r\nSubject: Hello\r\n"
    "Message-ID: <abc123@shop.example>\r\n\r\nHello Anna.\r\n";

SmtpOptions Plain(int port) {
  SmtpOptions o;
  o.port = port;
  o.tls = SmtpTls::kNone;
  o.connections = 2;
  o.command_timeout = 5 * kSecond;
  o.data_timeout = 5 * kSecond;
  return o;
}

// Sends `messages` one after the other through one pool and returns the outcomes.
std::vector<SmtpResult> SendAll(const SmtpOptions& o, const std::vector<std::string>& messages,
                                SmtpPoolCounters* counters = nullptr) {
  asio::io_context io;
  SmtpPool pool(io.get_executor(), o);
  std::vector<SmtpResult> out;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        for (const auto& m : messages) {
          out.push_back(co_await pool.Send("news@shop.example", "anna@example.com", m));
        }
        co_await pool.Shutdown();
      },
      asio::detached);
  io.run();
  if (counters) *counters = pool.counters();
  return out;
}

SmtpResult SendOne(const SmtpOptions& o, const std::string& message = kMessage) {
  auto r = SendAll(o, {message});
  return r.empty() ? SmtpResult{} : r[0];
}

TEST(SmtpClient, DeliversInPlainTextAndTheServerGetsTheMessageAsIs) {
  SmtpPeer peer;
  SmtpResult r = SendOne(Plain(peer.port()));
  EXPECT_TRUE(r.sent()) << r.ToString();
  EXPECT_EQ(r.code, 250);
  auto got = peer.Messages();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_NE(got[0].find("Message-ID: <abc123@shop.example>"), std::string::npos);
  EXPECT_NE(got[0].find("Hello Anna."), std::string::npos);
}

TEST(SmtpClient, DotStuffingKeepsLinesThatStartWithADot) {
  SmtpPeer peer;
  std::string m = kMessage + ".\r\n..two\r\n.three\r\nlast line without a break";
  SmtpResult r = SendOne(Plain(peer.port()), m);
  ASSERT_TRUE(r.sent()) << r.ToString();
  auto got = peer.Messages();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_NE(got[0].find("\r\n.\r\n..two\r\n.three\r\nlast line without a break"), std::string::npos)
      << got[0];
}

TEST(SmtpClient, ReusesOneConnectionForManyMessages) {
  SmtpPeer peer;
  SmtpPoolCounters c;
  auto rs = SendAll(Plain(peer.port()), std::vector<std::string>(5, kMessage), &c);
  ASSERT_EQ(rs.size(), 5u);
  for (const auto& r : rs) EXPECT_TRUE(r.sent()) << r.ToString();
  EXPECT_EQ(c.connections_opened, 1u);
  EXPECT_EQ(peer.Messages().size(), 5u);
}

TEST(SmtpClient, StartTlsWithTheServersCertificateTrusted) {
  SmtpPeer plain_dir;  // only for a temporary directory
  TestCertificate cert(plain_dir.dir());
  ASSERT_TRUE(cert.ok);
  SmtpPeer peer({"--starttls", cert.cert, cert.key});
  SmtpOptions o = Plain(peer.port());
  o.host = "localhost";
  o.tls = SmtpTls::kStartTls;
  o.tls_ca_file = cert.cert;
  SmtpResult r = SendOne(o);
  EXPECT_TRUE(r.sent()) << r.ToString();
  EXPECT_EQ(peer.Messages().size(), 1u);
}

TEST(SmtpClient, StartTlsRefusesAnUntrustedCertificateUnlessVerificationIsOff) {
  SmtpPeer plain_dir;
  TestCertificate cert(plain_dir.dir());
  ASSERT_TRUE(cert.ok);
  SmtpPeer peer({"--starttls", cert.cert, cert.key});
  SmtpOptions o = Plain(peer.port());
  o.tls = SmtpTls::kStartTls;
  SmtpResult r = SendOne(o);
  EXPECT_FALSE(r.sent());
  EXPECT_EQ(r.status, SmtpResult::Status::kTransient);
  EXPECT_NE(r.reply.find("certificate verify failed"), std::string::npos) << r.ToString();
  EXPECT_TRUE(peer.Messages().empty());

  o.tls_verify = false;
  r = SendOne(o);
  EXPECT_TRUE(r.sent()) << r.ToString();
  EXPECT_EQ(peer.Messages().size(), 1u);
}

TEST(SmtpClient, StartTlsRequiredButNotOfferedIsAClearError) {
  SmtpPeer peer;
  SmtpOptions o = Plain(peer.port());
  o.tls = SmtpTls::kStartTls;
  SmtpResult r = SendOne(o);
  EXPECT_FALSE(r.sent());
  EXPECT_EQ(r.stage, "STARTTLS");
  EXPECT_NE(r.reply.find("does not offer STARTTLS"), std::string::npos) << r.ToString();
}

TEST(SmtpClient, ImplicitTls) {
  SmtpPeer plain_dir;
  TestCertificate cert(plain_dir.dir());
  ASSERT_TRUE(cert.ok);
  SmtpPeer peer({"--implicit-tls", cert.cert, cert.key});
  SmtpOptions o = Plain(peer.port());
  o.tls = SmtpTls::kImplicit;
  o.tls_ca_file = cert.cert;
  SmtpResult r = SendOne(o);
  EXPECT_TRUE(r.sent()) << r.ToString();
  EXPECT_EQ(peer.Messages().size(), 1u);
}

TEST(SmtpClient, AuthPlainAndLogin) {
  SmtpPeer plain_dir;
  TestCertificate cert(plain_dir.dir());
  ASSERT_TRUE(cert.ok);
  {
    SmtpPeer peer({"--starttls", cert.cert, cert.key, "--auth", "shop:s3cret"});
    SmtpOptions o = Plain(peer.port());
    o.tls = SmtpTls::kStartTls;
    o.tls_ca_file = cert.cert;
    o.username = "shop";
    o.password = "s3cret";
    SmtpResult r = SendOne(o);
    EXPECT_TRUE(r.sent()) << r.ToString();
    EXPECT_EQ(peer.Count("AUTH PLAIN shop ok"), 1) << peer.Log();
  }
  {
    SmtpPeer peer({"--starttls", cert.cert, cert.key, "--auth", "shop:s3cret", "--no-plain"});
    SmtpOptions o = Plain(peer.port());
    o.tls = SmtpTls::kStartTls;
    o.tls_ca_file = cert.cert;
    o.username = "shop";
    o.password = "s3cret";
    SmtpResult r = SendOne(o);
    EXPECT_TRUE(r.sent()) << r.ToString();
    EXPECT_EQ(peer.Count("AUTH LOGIN shop ok"), 1) << peer.Log();
  }
}

TEST(SmtpClient, AWrongPasswordIsAClearTransientErrorThatNeverShowsThePassword) {
  SmtpPeer peer({"--auth", "shop:s3cret"});
  SmtpOptions o = Plain(peer.port());
  o.username = "shop";
  o.password = "not-the-password";
  SmtpPoolCounters c;
  auto rs = SendAll(o, std::vector<std::string>(3, kMessage), &c);
  ASSERT_EQ(rs.size(), 3u);
  EXPECT_EQ(rs[0].stage, "AUTH");
  EXPECT_EQ(rs[0].code, 535);
  EXPECT_EQ(rs[0].status, SmtpResult::Status::kTransient);
  EXPECT_NE(rs[0].reply.find("login as 'shop' refused"), std::string::npos) << rs[0].ToString();
  for (const auto& r : rs) EXPECT_EQ(r.reply.find("not-the-password"), std::string::npos);
  // After a refused login the pool waits before trying again: the next messages fail at
  // once with the same reason instead of hammering the server.
  EXPECT_EQ(peer.Count("AUTH"), 1) << peer.Log();
  EXPECT_EQ(rs[2].stage, "AUTH");
  EXPECT_EQ(c.connection_failures, 1u);
  EXPECT_TRUE(peer.Messages().empty());
}

TEST(SmtpClient, ARejectedRecipientIsPermanentAndMarkedAsABounce) {
  SmtpPeer peer({"--reject", "anna@example.com"});
  SmtpResult r = SendOne(Plain(peer.port()));
  EXPECT_EQ(r.status, SmtpResult::Status::kPermanent);
  EXPECT_TRUE(r.recipient_rejected);
  EXPECT_EQ(r.code, 550);
  EXPECT_EQ(r.stage, "RCPT TO");
  EXPECT_NE(r.reply.find("User unknown"), std::string::npos);
  // The connection stays usable: the next message on it goes through the same session.
}

TEST(SmtpClient, A451IsTransientAndTheConnectionIsReusedAfterIt) {
  SmtpPeer peer({"--defer", "1"});
  SmtpPoolCounters c;
  auto rs = SendAll(Plain(peer.port()), {kMessage, kMessage}, &c);
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[0].status, SmtpResult::Status::kTransient);
  EXPECT_EQ(rs[0].code, 451);
  EXPECT_FALSE(rs[0].maybe_sent);
  EXPECT_TRUE(rs[1].sent()) << rs[1].ToString();
  EXPECT_EQ(c.connections_opened, 1u);
  EXPECT_EQ(peer.Messages().size(), 1u);
}

TEST(SmtpClient, AConnectionLostAfterTheFinalDotMayHaveDelivered) {
  SmtpPeer peer({"--die-after-data", "1"});
  SmtpResult r = SendOne(Plain(peer.port()));
  EXPECT_EQ(r.status, SmtpResult::Status::kTransient);
  EXPECT_TRUE(r.maybe_sent) << r.ToString();
  EXPECT_EQ(r.stage, "end of data");
  EXPECT_EQ(peer.Messages().size(), 1u);  // it did arrive
}

TEST(SmtpClient, NobodyListeningIsTransient) {
  SmtpOptions o = Plain(testing::FreeLoopbackPort());
  SmtpResult r = SendOne(o);
  EXPECT_EQ(r.status, SmtpResult::Status::kTransient);
  EXPECT_EQ(r.stage, "connect");
  EXPECT_NE(r.reply.find("cannot connect"), std::string::npos) << r.ToString();
}

// Many sends at once (a sender's batch) while nobody listens: more than there are sessions, so
// most wait for one. Every one of them comes back unreachable, none is left waiting.
TEST(SmtpClient, ManySendsAtOnceToARelayNobodyListensOnAllComeBackUnreachable) {
  SmtpOptions o = Plain(testing::FreeLoopbackPort());
  o.connections = 4;
  asio::io_context io;
  SmtpPool pool(io.get_executor(), o);
  const int kSends = 50;
  std::vector<SmtpResult> out;
  for (int i = 0; i < kSends; ++i) {
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          out.push_back(co_await pool.Send("news@shop.example", "anna@example.com", kMessage));
        },
        asio::detached);
  }
  io.run_for(std::chrono::seconds(10));
  ASSERT_EQ(out.size(), static_cast<size_t>(kSends));
  for (const SmtpResult& r : out) {
    EXPECT_TRUE(r.relay_unreachable) << r.ToString();
    EXPECT_EQ(r.status, SmtpResult::Status::kTransient);
  }
  EXPECT_FALSE(pool.relay_up());
  EXPECT_NE(pool.relay_error().find("cannot connect"), std::string::npos) << pool.relay_error();
  EXPECT_GT(pool.relay_down_since(), std::chrono::steady_clock::time_point{});
}

}  // namespace
}  // namespace journeyd::mail

namespace journeyd::mail {
namespace {

TEST(SmtpClient, PipelinedTransactionsIncludingARefusedRecipient) {
  SmtpPeer peer({"--pipelining", "--reject", "bounce@example.com"});
  asio::io_context io;
  SmtpOptions o = Plain(peer.port());
  o.connections = 1;
  SmtpPool pool(io.get_executor(), o);
  std::vector<SmtpResult> out;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        out.push_back(co_await pool.Send("news@shop.example", "anna@example.com", kMessage));
        out.push_back(co_await pool.Send("news@shop.example", "bounce@example.com", kMessage));
        out.push_back(co_await pool.Send("news@shop.example", "bob@example.com", kMessage));
        co_await pool.Shutdown();
      },
      asio::detached);
  io.run();
  ASSERT_EQ(out.size(), 3u);
  EXPECT_TRUE(out[0].sent()) << out[0].ToString();
  EXPECT_TRUE(out[1].recipient_rejected) << out[1].ToString();
  EXPECT_EQ(out[1].code, 550);
  // The session stayed in step after the refusal: the third message goes through on it.
  EXPECT_TRUE(out[2].sent()) << out[2].ToString();
  EXPECT_EQ(pool.counters().connections_opened, 1u);
  EXPECT_EQ(peer.Messages().size(), 2u);
}

TEST(SmtpClient, AMessageOverTheAnnouncedSizeIsRefusedBeforeSending) {
  SmtpPeer peer({"--size-limit", "1000"});
  SmtpResult r = SendOne(Plain(peer.port()), kMessage + std::string(2000, 'x') + "\r\n");
  EXPECT_EQ(r.status, SmtpResult::Status::kPermanent);
  EXPECT_EQ(r.stage, "SIZE");
  EXPECT_FALSE(r.recipient_rejected);
  EXPECT_EQ(peer.Count("RCPT"), 0);
  EXPECT_TRUE(SendOne(Plain(peer.port())).sent());
}

}  // namespace
}  // namespace journeyd::mail

namespace journeyd::mail {
namespace {

TEST(SmtpClient, A421ClosesTheConnectionAndTheNextMessageOpensANewOne) {
  // Every other session's first MAIL FROM gets 421: the first session fails, the next works.
  SmtpPeer peer({"--shutting-down", "2"});
  SmtpPoolCounters c;
  auto rs = SendAll(Plain(peer.port()), {kMessage, kMessage, kMessage}, &c);
  ASSERT_EQ(rs.size(), 3u);
  EXPECT_EQ(rs[0].code, 421);
  EXPECT_EQ(rs[0].status, SmtpResult::Status::kTransient);
  EXPECT_EQ(rs[0].stage, "MAIL FROM");
  EXPECT_TRUE(rs[1].sent()) << rs[1].ToString();
  EXPECT_TRUE(rs[2].sent()) << rs[2].ToString();
  EXPECT_EQ(c.connections_opened, 2u);  // a new one after the 421, then reused
  EXPECT_EQ(peer.Messages().size(), 2u);
}

TEST(SmtpClient, TheRateLimitSpacesMessagesOut) {
  SmtpPeer peer;
  SmtpOptions o = Plain(peer.port());
  o.rate_per_sec = 4;  // a burst of 4, then one every 250 ms
  auto start = std::chrono::steady_clock::now();
  auto rs = SendAll(o, std::vector<std::string>(8, kMessage));
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(rs.size(), 8u);
  for (const auto& r : rs) EXPECT_TRUE(r.sent()) << r.ToString();
  // A lower bound only (a slow machine takes longer, never shorter): 4 waits of 250 ms.
  EXPECT_GE(secs, 0.95);
}

}  // namespace
}  // namespace journeyd::mail
