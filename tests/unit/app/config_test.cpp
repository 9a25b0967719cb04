#include "journeyd/app/config.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>

namespace journeyd::app {
namespace {

std::optional<Config> Parse(const std::string& text, Diagnostics& d) {
  return ParseConfig(text, "journeyd.yaml", "/etc/journeyd", d);
}

TEST(Config, DefaultsWhenEmpty) {
  Diagnostics d;
  auto c = Parse("", d);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->redis.prefix, "journeyd");
  EXPECT_EQ(c->redis.partitions, 1);
  EXPECT_EQ(c->redis.worker_threads, 0);
  EXPECT_EQ(c->redis.lease_ms, 10000);
  EXPECT_EQ(c->admin.listen, "127.0.0.1:8725");
  EXPECT_EQ(c->admin.public_url, "http://127.0.0.1:8725");
  EXPECT_EQ(c->smtp.mode, "file");
  EXPECT_EQ(c->flows.dir, "/etc/journeyd/flows");
  EXPECT_DOUBLE_EQ(c->clock_scale, 1);
}

TEST(Config, NestedAndDottedKeys) {
  Diagnostics d;
  auto c = Parse(R"(
redis:
  host: 10.0.0.5
  port: 6380
  partitions: 8
  worker_threads: 3
smtp.mode: smtp
smtp:
  tls: tls
  tls_verify: false
  max_age: 2d
policy:
  quiet_hours: "21:00-08:00"
  frequency_cap: 1/24h
clock.scale: 86400
flows:
  dir: /srv/flows
)",
                 d);
  for (const auto& x : d.all()) ADD_FAILURE() << x.ToString();
  ASSERT_TRUE(c);
  EXPECT_EQ(c->redis.host, "10.0.0.5");
  EXPECT_EQ(c->redis.port, 6380);
  EXPECT_EQ(c->redis.partitions, 8);
  EXPECT_EQ(c->redis.worker_threads, 3);
  EXPECT_EQ(c->smtp.mode, "smtp");
  EXPECT_EQ(c->smtp.tls, "tls");
  EXPECT_FALSE(c->smtp.tls_verify);
  EXPECT_EQ(c->smtp.max_age, 2 * kDay);
  ASSERT_TRUE(c->policy.quiet_hours);
  EXPECT_EQ(c->policy.quiet_hours->first, 21 * 60);
  EXPECT_EQ(c->policy.quiet_hours->second, 8 * 60);
  ASSERT_TRUE(c->policy.frequency_cap);
  EXPECT_EQ(c->policy.frequency_cap->first, 1);
  EXPECT_EQ(c->policy.frequency_cap->second, 24 * kHour);
  EXPECT_DOUBLE_EQ(c->clock_scale, 86400);
  EXPECT_EQ(c->flows.dir, "/srv/flows");
}

TEST(Config, UnknownKeyNamesKeyAndLine) {
  Diagnostics d;
  EXPECT_FALSE(Parse("redis:\n  hots: x\n", d));
  ASSERT_EQ(d.all().size(), 1u);
  EXPECT_EQ(d.all()[0].ToString(),
            "journeyd.yaml:2:3: error: unknown config key 'redis.hots' — did you mean "
            "'redis.host'?");
}

TEST(Config, WrongTypesNameTheKey) {
  Diagnostics d;
  EXPECT_FALSE(Parse("redis:\n  port: many\nsmtp:\n  tls: ssl\n  tls_verify: maybe\n", d));
  ASSERT_EQ(d.all().size(), 3u);
  EXPECT_EQ(d.all()[0].ToString(),
            "journeyd.yaml:2:9: error: redis.port: expected a whole number, got 'many'");
  EXPECT_EQ(d.all()[1].ToString(),
            "journeyd.yaml:4:8: error: smtp.tls: 'ssl' is not one of starttls, tls, none");
  EXPECT_EQ(d.all()[2].ToString(),
            "journeyd.yaml:5:15: error: smtp.tls_verify: expected true or false, got 'maybe'");
}

TEST(Config, RfmThresholdsAreFourAscendingNumbersNamedWhereWrong) {
  Diagnostics d;
  auto c = Parse("rfm:\n  recency_days: [14, 60, 120, 240]\n  monetary: [50, 100, 200, 400]\n", d);
  ASSERT_TRUE(c) << (d.all().empty() ? "" : d.all()[0].ToString());
  EXPECT_EQ(c->rfm.recency_days, (std::array<double, 4>{14, 60, 120, 240}));
  EXPECT_EQ(c->rfm.monetary, (std::array<double, 4>{50, 100, 200, 400}));
  EXPECT_EQ(c->rfm.frequency, (std::array<double, 4>{2, 3, 5, 10}));  // the default
  Diagnostics bad;
  EXPECT_FALSE(
      Parse("rfm:\n  frequency: [2, 5, 3, 10]\n  monetary: 100\n"
            "  recency_days: [30, -1, 90, 180]\n",
            bad));
  ASSERT_EQ(bad.all().size(), 3u);
  EXPECT_EQ(bad.all()[0].ToString(),
            "journeyd.yaml:2:21: error: rfm.frequency: the numbers must ascend (3 is not above 5)");
  EXPECT_EQ(bad.all()[1].ToString(),
            "journeyd.yaml:3:13: error: rfm.monetary: expected a list of 4 ascending numbers, "
            "such as [2, 3, 5, 10]");
  EXPECT_EQ(bad.all()[2].ToString(),
            "journeyd.yaml:4:22: error: rfm.recency_days: expected a number of at least 0, got "
            "'-1'");
}

TEST(Config, SecretsComeFromFiles) {
  auto dir = std::filesystem::temp_directory_path() / "journeyd-config-test";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "redis.pw") << "s3cret\n";
  Diagnostics d;
  auto c = ParseConfig("redis:\n  password_file: redis.pw\n", "x.yaml", dir.string(), d);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->redis.password, "s3cret");
  Diagnostics d2;
  EXPECT_FALSE(ParseConfig("redis:\n  password_file: missing.pw\n", "x.yaml", dir.string(), d2));
  ASSERT_EQ(d2.all().size(), 1u);
  EXPECT_NE(d2.all()[0].message.find("redis.password_file: cannot read"), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(Config, BadPolicyValues) {
  Diagnostics d;
  EXPECT_FALSE(Parse("policy:\n  quiet_hours: late\n  frequency_cap: lots\n", d));
  EXPECT_EQ(d.error_count(), 2);
}

TEST(Config, ShippedExampleLoads) {
  Diagnostics d;
  auto c = LoadConfig(std::string(JOURNEYD_SOURCE_DIR) + "/config/journeyd.yaml", d);
  for (const auto& x : d.all()) ADD_FAILURE() << x.ToString();
  EXPECT_TRUE(c);
}

}  // namespace
}  // namespace journeyd::app
