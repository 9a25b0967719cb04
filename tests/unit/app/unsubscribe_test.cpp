#include "journeyd/app/unsubscribe.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

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

// The MAC is HMAC-SHA256 (truncated to 128 bits) whatever the key's length: the same as
// OpenSSL's one-shot HMAC() computes, and RFC 4231's test case 2.
TEST(UnsubscribeTokens, TheMacIsHmacSha256) {
  auto reference = [](const std::string& key, const std::string& data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
    std::string hex;
    for (unsigned int i = 0; i < 16; ++i) {
      hex += "0123456789abcdef"[out[i] >> 4];
      hex += "0123456789abcdef"[out[i] & 15];
    }
    return hex;
  };
  for (size_t key_len : {0, 4, 63, 64, 65, 131}) {
    std::string key;
    for (size_t i = 0; i < key_len; ++i) key += static_cast<char>(0xaa ^ (i * 7));
    UnsubscribeTokens t(key);
    for (const std::string& id :
         {std::string("c42"), std::string("Zoë/ü"), std::string(128, 'x')}) {
      std::string token = t.Sign(id, "welcome");
      const size_t dot = token.rfind('.');
      EXPECT_EQ(token.substr(dot + 1), reference(key, token.substr(0, dot))) << key_len;
      EXPECT_TRUE(t.Verify(token));
    }
  }
  // RFC 4231, test case 2: HMAC-SHA256("Jefe", "what do ya want for nothing?").
  EXPECT_EQ(reference("Jefe", "what do ya want for nothing?"), "5bdcc146bf60754e6a042426089575c7");
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
