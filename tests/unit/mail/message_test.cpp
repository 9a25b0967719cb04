#include "journeyd/mail/message.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <random>

namespace journeyd::mail {
namespace {

engine::SendJob Job() {
  engine::SendJob j;
  j.job_id = "0123456789abcdef0123456789abcdef";
  j.customer_id = "c1";
  j.flow = "winback";
  j.step = "mail2";
  j.marketing = true;
  j.to = "anna@example.com";
  j.subject = "10% off for you, Anna";
  j.text = "Hi Anna,\nuse COMEBACK10.\n.\nBye";
  j.unsubscribe_url = "https://shop.example/unsubscribe?token=abc";
  return j;
}

TimePoint Date() { return *ParseTimestamp("2026-11-25T06:46:01Z"); }

// Headers up to the first empty line, as one string.
std::string Headers(const std::string& data) { return data.substr(0, data.find("\r\n\r\n") + 2); }

TEST(Message, CarriesEveryRequiredHeader) {
  std::string err;
  auto m = BuildMessage(Job(), {.from = "Shop <news@shop.example>", .unsubscribe_mailto = ""},
                        Date(), &err);
  ASSERT_TRUE(m) << err;
  std::string h = Headers(m->data);
  EXPECT_NE(h.find("From: \"Shop\" <news@shop.example>\r\n"), std::string::npos) << h;
  EXPECT_NE(h.find("To: anna@example.com\r\n"), std::string::npos);
  EXPECT_NE(h.find("Subject: 10% off for you, Anna\r\n"), std::string::npos);
  EXPECT_NE(h.find("Date: Wed, 25 Nov 2026 06:46:01 +0000\r\n"), std::string::npos) << h;
  EXPECT_NE(h.find("Message-ID: <0123456789abcdef0123456789abcdef@shop.example>\r\n"),
            std::string::npos);
  EXPECT_NE(h.find("MIME-Version: 1.0\r\n"), std::string::npos);
  EXPECT_NE(h.find("X-Journeyd-Flow: winback\r\n"), std::string::npos);
  EXPECT_NE(h.find("X-Journeyd-Step: mail2\r\n"), std::string::npos);
  EXPECT_NE(h.find("List-Unsubscribe: <https://shop.example/unsubscribe?token=abc>\r\n"),
            std::string::npos);
  EXPECT_NE(h.find("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"), std::string::npos);
  EXPECT_EQ(m->envelope_from, "news@shop.example");
  EXPECT_EQ(m->envelope_to, "anna@example.com");
}

TEST(Message, TransactionalMailHasNoUnsubscribeHeaders) {
  auto job = Job();
  job.marketing = false;
  std::string err;
  auto m = BuildMessage(job, {.from = "news@shop.example", .unsubscribe_mailto = ""}, Date(), &err);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->data.find("List-Unsubscribe"), std::string::npos);
}

TEST(Message, MailtoIsAddedWhenConfigured) {
  std::string err;
  auto m = BuildMessage(
      Job(), {.from = "news@shop.example", .unsubscribe_mailto = "u@shop.example"}, Date(), &err);
  ASSERT_TRUE(m);
  EXPECT_NE(m->data.find("List-Unsubscribe: <https://shop.example/unsubscribe?token=abc>, "
                         "<mailto:u@shop.example?subject=unsubscribe>\r\n"),
            std::string::npos);
}

TEST(Message, NoValueCanInjectAHeader) {
  auto job = Job();
  job.subject = "Hi\r\nBcc: victim@evil.example";
  job.flow = "winback\nX-Evil: 1";
  std::string err;
  auto m = BuildMessage(job, {.from = "news@shop.example", .unsubscribe_mailto = ""}, Date(), &err);
  ASSERT_TRUE(m);
  std::string h = Headers(m->data);
  EXPECT_EQ(h.find("\r\nBcc:"), std::string::npos) << h;
  EXPECT_EQ(h.find("\nX-Evil"), std::string::npos) << h;
  // Every header line is "Name: value" or a folded continuation starting with a space.
  size_t pos = 0;
  while (pos < h.size()) {
    size_t end = h.find("\r\n", pos);
    std::string line = h.substr(pos, end - pos);
    EXPECT_TRUE(line.empty() || line[0] == ' ' || line.find(": ") != std::string::npos) << line;
    EXPECT_EQ(line.find('\n'), std::string::npos);
    EXPECT_EQ(line.find('\r'), std::string::npos);
    pos = end + 2;
  }
}

TEST(Message, RecipientWithLineBreakIsRefused) {
  auto job = Job();
  job.to = "anna@example.com\r\nBcc: x@evil.example";
  std::string err;
  EXPECT_FALSE(
      BuildMessage(job, {.from = "news@shop.example", .unsubscribe_mailto = ""}, Date(), &err));
  EXPECT_NE(err.find("not a valid e-mail address"), std::string::npos);
}

TEST(Message, NonAsciiSubjectIsRfc2047Encoded) {
  auto job = Job();
  job.subject = "Fijne verjaardag, Zoë! 🎂";
  std::string err;
  auto m = BuildMessage(job, {.from = "Wijnhuis Zoë <news@shop.example>", .unsubscribe_mailto = ""},
                        Date(), &err);
  ASSERT_TRUE(m);
  std::string h = Headers(m->data);
  EXPECT_NE(h.find("Subject: =?UTF-8?B?"), std::string::npos) << h;
  EXPECT_NE(h.find("From: =?UTF-8?B?"), std::string::npos) << h;
  for (unsigned char c : h) EXPECT_LT(c, 0x80) << h;
}

TEST(Message, LongSubjectsFoldIntoShortEncodedWords) {
  std::string s = EncodeHeaderText(std::string(200, 'x') + "é", 7);
  size_t pos = 0;
  while (pos < s.size()) {
    size_t end = s.find("\r\n", pos);
    if (end == std::string::npos) end = s.size();
    EXPECT_LE(end - pos, 77u);
    pos = end + 2;
  }
}

TEST(Message, HtmlMakesMultipartAlternative) {
  auto job = Job();
  job.html = "<p>Hi Anna</p>";
  std::string err;
  auto m = BuildMessage(job, {.from = "news@shop.example", .unsubscribe_mailto = ""}, Date(), &err);
  ASSERT_TRUE(m);
  EXPECT_NE(m->data.find("Content-Type: multipart/alternative; boundary="), std::string::npos);
  EXPECT_NE(m->data.find("Content-Type: text/plain; charset=UTF-8"), std::string::npos);
  EXPECT_NE(m->data.find("Content-Type: text/html; charset=UTF-8"), std::string::npos);
}

TEST(QuotedPrintable, EncodesAndWraps) {
  EXPECT_EQ(QuotedPrintable("a=b"), "a=3Db");
  EXPECT_EQ(QuotedPrintable("Zoë"), "Zo=C3=AB");
  EXPECT_EQ(QuotedPrintable("x \ny"), "x=20\r\ny");
  EXPECT_EQ(QuotedPrintable(".\n"), "=2E\r\n");
  std::string long_line = QuotedPrintable(std::string(200, 'a'));
  for (size_t pos = 0, end; pos < long_line.size(); pos = end + 2) {
    end = long_line.find("\r\n", pos);
    if (end == std::string::npos) end = long_line.size();
    EXPECT_LE(end - pos, 76u);
  }
}

TEST(DotStuff, DoublesLeadingDots) {
  EXPECT_EQ(DotStuff(".a\r\nb\r\n..c\r\n"), "..a\r\nb\r\n...c\r\n");
}

TEST(Address, Validation) {
  EXPECT_TRUE(ValidAddress("a@b.example"));
  EXPECT_FALSE(ValidAddress("a@@b.example"));
  EXPECT_FALSE(ValidAddress("a b@b.example"));
  EXPECT_FALSE(ValidAddress("a@b.example\r\n"));
  EXPECT_FALSE(ValidAddress("<a@b.example>"));
  EXPECT_FALSE(ValidAddress(""));
}

// The encoders as they were first written, one character at a time: the faster ones must give
// the same bytes for any input.
std::string ReferenceQuotedPrintable(std::string_view body) {
  std::string out;
  size_t line = 0;
  auto put = [&](std::string_view piece) {
    if (line + piece.size() > 75) {
      out += "=\r\n";
      line = 0;
    }
    out += piece;
    line += piece.size();
  };
  auto trailing = [&] {
    if (!out.empty() && (out.back() == ' ' || out.back() == '\t')) {
      char last = out.back();
      out.pop_back();
      out += fmt::format("={:02X}", static_cast<unsigned char>(last));
    }
  };
  for (size_t i = 0; i < body.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(body[i]);
    if (c == '\r' && i + 1 < body.size() && body[i + 1] == '\n') continue;
    if (c == '\n') {
      trailing();
      out += "\r\n";
      line = 0;
      continue;
    }
    bool literal =
        (c >= 33 && c <= 126 && c != '=' && !(c == '.' && line == 0)) || c == ' ' || c == '\t';
    if (literal) {
      char ch = static_cast<char>(c);
      put(std::string_view(&ch, 1));
    } else {
      put(fmt::format("={:02X}", c));
    }
  }
  trailing();
  return out;
}

std::string ReferenceDotStuff(std::string_view data) {
  std::string out;
  bool line_start = true;
  for (char c : data) {
    if (line_start && c == '.') out += '.';
    out += c;
    line_start = c == '\n';
  }
  return out;
}

TEST(QuotedPrintable, SameBytesAsTheCharacterByCharacterEncoder) {
  std::mt19937 rng(11);
  const std::string alphabet = std::string("ab .=\t\r\n\x7f\x01", 11) + "\xc3\xab\xff~!";
  for (int i = 0; i < 5000; ++i) {
    std::string text;
    const size_t n = rng() % 400;
    for (size_t k = 0; k < n; ++k) {
      text += rng() % 3 == 0 ? alphabet[rng() % alphabet.size()] : 'x';
    }
    ASSERT_EQ(QuotedPrintable(text), ReferenceQuotedPrintable(text)) << text;
    ASSERT_EQ(DotStuff(text), ReferenceDotStuff(text)) << text;
  }
}

}  // namespace
}  // namespace journeyd::mail
