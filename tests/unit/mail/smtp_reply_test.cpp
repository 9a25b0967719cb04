// SMTP reply parsing and EHLO extensions: multi-line replies, malformed lines, bounds.
#include <gtest/gtest.h>

#include "journeyd/mail/smtp.h"

namespace journeyd::mail {
namespace {

using State = SmtpReplyParser::State;

TEST(SmtpReply, MultiLineReplyEndsAtTheLineWithASpace) {
  SmtpReplyParser p;
  EXPECT_EQ(p.Feed("250-mail.example greets you"), State::kMore);
  EXPECT_EQ(p.Feed("250-PIPELINING"), State::kMore);
  EXPECT_EQ(p.Feed("250-SIZE 10240000"), State::kMore);
  EXPECT_EQ(p.Feed("250-AUTH LOGIN PLAIN"), State::kMore);
  EXPECT_EQ(p.Feed("250 STARTTLS"), State::kDone);
  EXPECT_EQ(p.reply().code, 250);
  ASSERT_EQ(p.reply().lines.size(), 5u);
  auto e = SmtpExtensions::From(p.reply());
  EXPECT_TRUE(e.pipelining);
  EXPECT_TRUE(e.starttls);
  EXPECT_TRUE(e.auth_plain);
  EXPECT_TRUE(e.auth_login);
  EXPECT_EQ(e.size, 10240000u);
}

TEST(SmtpReply, BareCodeAndOldStyleAuth) {
  SmtpReplyParser p;
  EXPECT_EQ(p.Feed("250-x"), State::kMore);
  EXPECT_EQ(p.Feed("250 AUTH=LOGIN"), State::kDone);
  auto e = SmtpExtensions::From(p.reply());
  EXPECT_TRUE(e.auth_login);
  EXPECT_FALSE(e.auth_plain);
  EXPECT_FALSE(e.pipelining);
  p.Reset();
  EXPECT_EQ(p.Feed("354"), State::kDone);
  EXPECT_EQ(p.reply().code, 354);
  EXPECT_EQ(p.reply().Text(), "354");
}

// Found by tests/fuzz (smtp_reply): an EHLO line of just "AUTH" made the extension reader
// take substr(5) of a 4-byte string, which throws out of the session.
TEST(SmtpReply, AnAuthLineWithoutMechanismsOffersNone) {
  for (std::string_view line : {"250 AUTH", "250 auth", "250 AUTH=", "250 AUTH "}) {
    SmtpReplyParser p;
    EXPECT_EQ(p.Feed("250-mail.example"), State::kMore);
    EXPECT_EQ(p.Feed(line), State::kDone) << line;
    SmtpExtensions e;
    EXPECT_NO_THROW(e = SmtpExtensions::From(p.reply())) << line;
    EXPECT_FALSE(e.auth_plain) << line;
    EXPECT_FALSE(e.auth_login) << line;
  }
}

TEST(SmtpReply, MalformedLinesAreProtocolErrors) {
  for (std::string_view bad : {"", "25", "abc hello", "2x0 ok", "250+ok", "099 low", "600 high"}) {
    SmtpReplyParser p;
    EXPECT_EQ(p.Feed(bad), State::kError) << bad;
    EXPECT_FALSE(p.error().empty());
  }
  SmtpReplyParser p;
  EXPECT_EQ(p.Feed("250-first"), State::kMore);
  EXPECT_EQ(p.Feed("550 second"), State::kError);
  EXPECT_NE(p.error().find("changed"), std::string::npos);
}

TEST(SmtpReply, TooManyLinesIsAnErrorAndControlCharactersAreMasked) {
  SmtpReplyParser p;
  State s = State::kMore;
  int n = 0;
  while (s == State::kMore && n < 1000) {
    s = p.Feed("250-line");
    ++n;
  }
  EXPECT_EQ(s, State::kError);
  EXPECT_LE(n, 101);
  SmtpReplyParser q;
  ASSERT_EQ(q.Feed(std::string("550 bad\x1b[31m\x07text")), State::kDone);
  EXPECT_EQ(q.reply().Text(), "550 bad?[31m?text");
}

TEST(SmtpReply, TextJoinsLines) {
  SmtpReplyParser p;
  p.Feed("451-4.3.0 one");
  p.Feed("451 4.3.0 two");
  EXPECT_EQ(p.reply().Text(), "451 4.3.0 one / 4.3.0 two");
}

}  // namespace
}  // namespace journeyd::mail
