// A send job's outbox fields (store/outbox.h): six fields, and the `job` field read back.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "journeyd/store/outbox.h"

namespace journeyd::store {
namespace {

engine::SendJob AJob() {
  engine::SendJob j;
  j.job_id = "0123456789abcdef0123456789abcdef";
  j.customer_id = "c42";
  j.flow = "winback";
  j.step = "mail1";
  j.run = 3;
  j.marketing = true;
  j.template_name = "winback_1";
  j.locale = "de";
  j.to = "anna@example.com";
  j.vars = R"({"customer.first_name":"Anna"})";
  j.unsubscribe_url = "https://shop.example/u?t=a\"b\\c";
  j.at = *ParseTimestamp("2026-12-02T03:04:05.678Z");
  return j;
}

TEST(Outbox, SixFieldsTheRestInTheJobField) {
  const std::vector<std::string> f = OutboxFields(AJob());
  ASSERT_EQ(f.size(), 12u);
  std::map<std::string, std::string> by_name;
  for (size_t i = 0; i + 1 < f.size(); i += 2) by_name[f[i]] = f[i + 1];
  EXPECT_EQ(by_name["job_id"], "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(by_name["customer_id"], "c42");
  EXPECT_EQ(by_name["flow"], "winback");
  EXPECT_EQ(by_name["to"], "anna@example.com");
  EXPECT_EQ(by_name["vars"], R"({"customer.first_name":"Anna"})");
  EXPECT_EQ(by_name["job"], R"({"step":"mail1","run":3,"marketing":true,"template":"winback_1",)"
                            R"("at":"2026-12-02T03:04:05.678Z","locale":"de",)"
                            R"("unsubscribe_url":"https://shop.example/u?t=a\"b\\c"})");
}

TEST(Outbox, TheJobFieldReadsBackAsWritten) {
  const engine::SendJob j = AJob();
  engine::SendJob back;
  std::string err;
  ASSERT_TRUE(ReadOutboxJob(OutboxJob(j), &back, &err)) << err;
  EXPECT_EQ(back.step, j.step);
  EXPECT_EQ(back.run, j.run);
  EXPECT_EQ(back.marketing, j.marketing);
  EXPECT_EQ(back.template_name, j.template_name);
  EXPECT_EQ(back.locale, j.locale);
  EXPECT_EQ(back.unsubscribe_url, j.unsubscribe_url);
  EXPECT_EQ(back.at, j.at);

  // A transactional job without a locale: both left out, and read back as empty.
  engine::SendJob t = j;
  t.marketing = false;
  t.locale.clear();
  t.unsubscribe_url.clear();
  const std::string text = OutboxJob(t);
  EXPECT_EQ(text.find("locale"), std::string::npos) << text;
  EXPECT_EQ(text.find("unsubscribe_url"), std::string::npos) << text;
  back = AJob();
  ASSERT_TRUE(ReadOutboxJob(text, &back, &err)) << err;
  EXPECT_FALSE(back.marketing);
  EXPECT_EQ(back.locale, "");
  EXPECT_EQ(back.unsubscribe_url, "");
}

TEST(Outbox, ABadJobFieldSaysWhatIsWrong) {
  engine::SendJob j;
  std::string err;
  const std::string ok_rest = R"("template":"t","at":"2026-01-01T00:00:00Z")";
  const std::pair<std::string, std::string> cases[] = {
      {"not json", "not a JSON object"},
      {"[1]", "not a JSON object"},
      {R"({"run":1,"marketing":true,)" + ok_rest + "}", "no step"},
      {R"({"step":7,"run":1,"marketing":true,)" + ok_rest + "}", "step is not a string"},
      {R"({"step":"s","run":-1,"marketing":true,)" + ok_rest + "}", "run"},
      {R"({"step":"s","run":4294967296,"marketing":true,)" + ok_rest + "}", "run"},
      {R"({"step":"s","run":1,"marketing":"yes",)" + ok_rest + "}", "marketing"},
      {R"({"step":"s","run":1,"marketing":true,"template":"t","at":"soon"})", "at is not a time"},
  };
  for (const auto& [text, want] : cases) {
    err.clear();
    EXPECT_FALSE(ReadOutboxJob(text, &j, &err)) << text;
    EXPECT_NE(err.find(want), std::string::npos) << text << " → " << err;
  }
}

}  // namespace
}  // namespace journeyd::store
