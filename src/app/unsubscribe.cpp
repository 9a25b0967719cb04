#include "journeyd/app/unsubscribe.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>

#include "journeyd/engine/event.h"

namespace journeyd::app {

namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
// 128 bits of the MAC, as 32 lowercase hex digits.
constexpr size_t kMacHex = 32;

bool ValidFlowId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

}  // namespace

std::string Base64UrlEncode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = (static_cast<uint8_t>(bytes[i]) << 16) |
                 (static_cast<uint8_t>(bytes[i + 1]) << 8) | static_cast<uint8_t>(bytes[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  size_t rest = bytes.size() - i;
  if (rest == 1) {
    uint32_t v = static_cast<uint8_t>(bytes[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
  } else if (rest == 2) {
    uint32_t v = (static_cast<uint8_t>(bytes[i]) << 16) | (static_cast<uint8_t>(bytes[i + 1]) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
  }
  return out;
}

std::optional<std::string> Base64UrlDecode(std::string_view text) {
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    size_t v = kAlphabet.find(c);
    if (v == std::string_view::npos) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  // Leftover bits must be zero, so that each byte string has exactly one encoding.
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

struct UnsubscribeTokens::Mac {
  // SHA-256 states after the key XOR ipad and the key XOR opad blocks.
  EVP_MD_CTX* inner = nullptr;
  EVP_MD_CTX* outer = nullptr;
  ~Mac() {
    EVP_MD_CTX_free(inner);
    EVP_MD_CTX_free(outer);
  }
};

UnsubscribeTokens::UnsubscribeTokens(std::string secret) {
  constexpr size_t kBlock = 64;  // SHA-256's block size
  const EVP_MD* md = EVP_sha256();
  unsigned char key[kBlock] = {0};
  if (secret.size() > kBlock) {
    unsigned int len = 0;
    EVP_Digest(secret.data(), secret.size(), key, &len, md, nullptr);
  } else {
    std::copy(secret.begin(), secret.end(), key);
  }
  auto mac = std::make_shared<Mac>();
  mac->inner = EVP_MD_CTX_new();
  mac->outer = EVP_MD_CTX_new();
  unsigned char pad[kBlock];
  for (size_t i = 0; i < kBlock; ++i) pad[i] = key[i] ^ 0x36;
  EVP_DigestInit_ex(mac->inner, md, nullptr);
  EVP_DigestUpdate(mac->inner, pad, kBlock);
  for (size_t i = 0; i < kBlock; ++i) pad[i] = key[i] ^ 0x5c;
  EVP_DigestInit_ex(mac->outer, md, nullptr);
  EVP_DigestUpdate(mac->outer, pad, kBlock);
  OPENSSL_cleanse(key, sizeof key);
  OPENSSL_cleanse(pad, sizeof pad);
  mac_ = std::move(mac);
}

std::string UnsubscribeTokens::Hex(std::string_view data) const {
  unsigned char inner[EVP_MAX_MD_SIZE], out[EVP_MAX_MD_SIZE];
  unsigned int inner_len = 0, len = 0;
  EVP_MD_CTX* c = EVP_MD_CTX_new();
  EVP_MD_CTX_copy_ex(c, mac_->inner);
  EVP_DigestUpdate(c, data.data(), data.size());
  EVP_DigestFinal_ex(c, inner, &inner_len);
  EVP_MD_CTX_copy_ex(c, mac_->outer);
  EVP_DigestUpdate(c, inner, inner_len);
  EVP_DigestFinal_ex(c, out, &len);
  EVP_MD_CTX_free(c);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(kMacHex);
  for (unsigned int i = 0; i < len && hex.size() < kMacHex; ++i) {
    hex += kHex[out[i] >> 4];
    hex += kHex[out[i] & 15];
  }
  return hex;
}

std::string UnsubscribeTokens::Sign(std::string_view customer_id, std::string_view flow_id) const {
  std::string payload = Base64UrlEncode(customer_id) + "." + Base64UrlEncode(flow_id);
  return payload + "." + Hex(payload);
}

std::string UnsubscribeTokens::Url(std::string_view base, std::string_view customer_id,
                                   std::string_view flow_id) const {
  // The token's alphabet (base64url, '.', hex) needs no escaping in a query string.
  return std::string(base) + "/unsubscribe?token=" + Sign(customer_id, flow_id);
}

std::optional<UnsubscribeTokens::Subject> UnsubscribeTokens::Verify(std::string_view token) const {
  // Customer ids are at most 128 bytes and flow ids short: bound the work before hashing.
  if (token.size() > 512) return std::nullopt;
  size_t dot2 = token.rfind('.');
  if (dot2 == std::string_view::npos) return std::nullopt;
  std::string_view payload = token.substr(0, dot2);
  std::string_view mac = token.substr(dot2 + 1);
  size_t dot1 = payload.find('.');
  if (dot1 == std::string_view::npos || mac.size() != kMacHex) return std::nullopt;
  std::string expected = Hex(payload);
  if (CRYPTO_memcmp(expected.data(), mac.data(), kMacHex) != 0) return std::nullopt;
  auto customer = Base64UrlDecode(payload.substr(0, dot1));
  auto flow = Base64UrlDecode(payload.substr(dot1 + 1));
  if (!customer || !flow || !engine::ValidCustomerId(*customer) || !ValidFlowId(*flow)) {
    return std::nullopt;
  }
  return Subject{std::move(*customer), std::move(*flow)};
}

}  // namespace journeyd::app
