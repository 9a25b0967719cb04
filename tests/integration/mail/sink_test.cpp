// The mail sinks (mail/sink.h): the file sink's .eml files (written, overwritten, a directory
// it cannot write to), and the SMTP sink delivering through the pool to a real SMTP server
// (aiosmtpd) with the relay's verdict.
#include "journeyd/mail/sink.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "../smtp_peer.h"

namespace journeyd::mail {
namespace {

namespace asio = boost::asio;
using testing::SmtpPeer;

BuiltMessage Message(const std::string& to, const std::string& body) {
  BuiltMessage m;
  m.envelope_from = "news@shop.example";
  m.envelope_to = to;
  m.message_id = "<0a1b@shop.example>";
  m.data = "From: Shop <news@shop.example>\r\nTo: " + to +
           "\r\nSubject: Hello\r\nMessage-ID: <0a1b@shop.example>\r\n\r\n" + body + "\r\n";
  return m;
}

SendOutcome SendThrough(asio::io_context& io, Sink& sink, const BuiltMessage& m,
                        const std::string& job_id) {
  std::optional<SendOutcome> out;
  io.restart();
  asio::co_spawn(io, sink.Send(m, job_id, {}), [&](std::exception_ptr e, SendOutcome o) {
    if (!e) out = std::move(o);
  });
  // Not io.run(): the pool's idle sessions keep it busy.
  while (!out && io.run_one() > 0) {
  }
  EXPECT_TRUE(out.has_value());
  return out.value_or(SendOutcome{});
}

std::string Read(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> Names(const std::filesystem::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

class FileSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("journeyd-sink-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  asio::io_context io_;
  std::filesystem::path dir_;
};

TEST_F(FileSinkTest, WritesTheMailAsItIsNamedAfterTheJob) {
  FileSink sink(dir_.string());
  BuiltMessage m = Message("anna@example.com", "Hello Anna.");
  SendOutcome o = SendThrough(io_, sink, m, "0a1b2c");
  EXPECT_TRUE(o.result.sent());
  EXPECT_EQ(o.local_error, "");
  EXPECT_EQ(Names(dir_), std::vector<std::string>{"0a1b2c.eml"});
  EXPECT_EQ(Read(dir_ / "0a1b2c.eml"), m.data);
}

TEST_F(FileSinkTest, TheSameJobAgainOverwritesItsFile) {
  FileSink sink(dir_.string());
  SendThrough(io_, sink, Message("anna@example.com", "A much longer first version of it."),
              "0a1b2c");
  BuiltMessage again = Message("anna@example.com", "Short.");
  SendOutcome o = SendThrough(io_, sink, again, "0a1b2c");
  EXPECT_TRUE(o.result.sent());
  SendThrough(io_, sink, Message("bob@example.com", "Hi Bob."), "0d0e");
  EXPECT_EQ(Names(dir_), (std::vector<std::string>{"0a1b2c.eml", "0d0e.eml"}));
  EXPECT_EQ(Read(dir_ / "0a1b2c.eml"), again.data);
}

TEST_F(FileSinkTest, AFolderRemovedMeanwhileIsMadeAgain) {
  FileSink sink((dir_ / "gone").string());
  SendOutcome o = SendThrough(io_, sink, Message("anna@example.com", "Hello."), "0a1b2c");
  EXPECT_TRUE(o.result.sent()) << o.local_error;
  EXPECT_EQ(Names(dir_ / "gone"), std::vector<std::string>{"0a1b2c.eml"});
}

// A mail folder that cannot be written is the sink's state, named with its path: no verdict
// on the mail, the next try after a second, twice as long after each try, until a write works.
TEST_F(FileSinkTest, AFolderItCannotWriteIsItsStateNamingThePathUntilAWriteWorks) {
  const auto folder = dir_ / "mail";
  std::ofstream(folder) << "a file where the folder should be";
  FileSink sink(folder.string(), std::chrono::seconds(30));
  const auto before = std::chrono::steady_clock::now();
  SendOutcome o = SendThrough(io_, sink, Message("anna@example.com", "Hello."), "0a1b2c");
  const std::string why =
      "cannot create a file in the mail folder " + folder.string() + " (smtp.dir): Not a directory";
  EXPECT_FALSE(o.result.sent());
  EXPECT_FALSE(o.withheld);
  EXPECT_EQ(o.local_error, why);
  EXPECT_FALSE(sink.health().up);
  EXPECT_EQ(sink.health().error, why);
  EXPECT_GE(sink.health().since, before);
  const auto down_since = sink.health().since;
  const auto first_try = sink.next_attempt();
  EXPECT_GE(first_try, before + std::chrono::seconds(1));
  EXPECT_LE(first_try, std::chrono::steady_clock::now() + std::chrono::seconds(1));
  // Another mail failing within the same try does not make the wait longer.
  SendThrough(io_, sink, Message("bob@example.com", "Hello."), "0d0e");
  EXPECT_EQ(sink.next_attempt(), first_try);
  std::this_thread::sleep_until(first_try + std::chrono::milliseconds(10));
  SendThrough(io_, sink, Message("anna@example.com", "Hello."), "0a1b2c");
  EXPECT_GE(sink.next_attempt(), first_try + std::chrono::seconds(2));
  EXPECT_EQ(sink.health().since, down_since);  // down since the first failure, not the last
  std::filesystem::remove(folder);
  std::filesystem::create_directories(folder);
  SendOutcome ok = SendThrough(io_, sink, Message("anna@example.com", "Hello."), "0a1b2c");
  EXPECT_TRUE(ok.result.sent()) << ok.local_error;
  EXPECT_TRUE(sink.health().up);
  EXPECT_EQ(sink.health().error, "");
  EXPECT_LE(sink.next_attempt(), std::chrono::steady_clock::now());
  EXPECT_EQ(Names(folder), std::vector<std::string>{"0a1b2c.eml"});
}

TEST(SmtpSink, DeliversThroughThePoolWithTheRelaysVerdict) {
  SmtpPeer peer({"--reject", "nobody@example.com"});
  asio::io_context io;
  SmtpOptions options;
  options.port = peer.port();
  options.tls = SmtpTls::kNone;
  auto pool = std::make_shared<SmtpPool>(io.get_executor(), options);
  SmtpSink sink(pool);
  BuiltMessage m = Message("anna@example.com", "Hello Anna.");
  SendOutcome sent = SendThrough(io, sink, m, "0a1b");
  EXPECT_TRUE(sent.result.sent()) << sent.result.ToString();
  EXPECT_EQ(sent.result.code, 250);
  EXPECT_EQ(sent.local_error, "");
  SendOutcome rejected =
      SendThrough(io, sink, Message("nobody@example.com", "Hello nobody."), "0c0d");
  EXPECT_EQ(rejected.result.status, SmtpResult::Status::kPermanent);
  EXPECT_TRUE(rejected.result.recipient_rejected);
  EXPECT_EQ(rejected.local_error, "");
  auto got = peer.Messages();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_NE(got[0].find("Hello Anna."), std::string::npos) << got[0];
  EXPECT_EQ(peer.Count("RCPT anna@example.com 250"), 1);
  sink.CloseIdle();
  io.restart();
  asio::co_spawn(io, pool->Shutdown(), [](std::exception_ptr) {});
  io.run();
}

}  // namespace
}  // namespace journeyd::mail
