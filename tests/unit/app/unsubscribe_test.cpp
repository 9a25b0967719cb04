#include "journeyd/app/unsubscribe.h"

#include <gtest/gtest.h>

namespace journeyd::app {
namespace {

TEST(UnsubscribeTokens, RoundTripWithAwkwardIds) {
  UnsubscribeTokens t("secret");
  for (std::string id : {"c42", "a.b.c", "100%", "Zoë/ü", "a b+c&d=e"}) {
    std::string token = t.Sign(id, "welcome");
    EXPECT_EQ(token.find_first_not_of(
                  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."),
              std::string::npos)
        << token;
    auto who = t.Verify(token);
    ASSERT_TRUE(who) << id;
    EXPECT_EQ(who->customer_id, id);
    EXPECT_EQ(who->flow_id, "welcome");
  }
  EXPECT_EQ(t.Url("https://shop.example/j", "c42", "welcome"),
            "https://shop.example/j/unsubscribe?token=" + t.Sign("c42", "welcome"));
}

TEST(UnsubscribeTokens, RefusesForgedAlteredAndMalformed) {
  UnsubscribeTokens t("secret");
  std::string good = t.Sign("c42", "welcome");
  EXPECT_FALSE(UnsubscribeTokens("other").Verify(good));
  std::string mac_changed = good;
  mac_changed.back() = mac_changed.back() == 'a' ? 'b' : 'a';
  EXPECT_FALSE(t.Verify(mac_changed));
  // Another customer's id with this customer's MAC.
  std::string swapped = t.Sign("c43", "welcome");
  swapped = swapped.substr(0, swapped.rfind('.')) + good.substr(good.rfind('.'));
  EXPECT_FALSE(t.Verify(swapped));
  for (std::string bad : {std::string(""), std::string("."), std::string(".."), good + "0",
                          good.substr(1), std::string(600, 'a')}) {
    EXPECT_FALSE(t.Verify(bad)) << bad;
  }
  // Correctly signed, but not an id the daemon accepts.
  EXPECT_FALSE(t.Verify(t.Sign("", "welcome")));
  EXPECT_FALSE(t.Verify(t.Sign("c42", "Not A Flow")));
  EXPECT_FALSE(t.Verify(t.Sign("c\n42", "welcome")));
}

TEST(Base64Url, StrictDecoding) {
  EXPECT_EQ(Base64UrlEncode("c42"), "YzQy");
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");
  EXPECT_EQ(Base64UrlDecode("-_8"), "\xfb\xff");
  EXPECT_EQ(Base64UrlDecode("YzQy"), "c42");
  EXPECT_EQ(Base64UrlDecode("YzQ="), std::nullopt);  // no padding
  EXPECT_EQ(Base64UrlDecode("YzQ+"), std::nullopt);  // not the url alphabet
  EXPECT_EQ(Base64UrlDecode("Y"), std::nullopt);
  EXPECT_EQ(Base64UrlDecode("YR"), std::nullopt);  // non-zero trailing bits: not canonical
}

}  // namespace
}  // namespace journeyd::app
