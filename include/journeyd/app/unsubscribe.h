// Signed unsubscribe tokens: the one place that makes them (for the List-Unsubscribe links
// of marketing mail) and checks them (for the admin endpoint).
//
//   token = base64url(customer_id) "." base64url(flow_id) "." 32 hex of
//           HMAC-SHA256(secret, base64url(customer_id) "." base64url(flow_id))
//
// base64url (no padding) rather than percent-encoding: the token travels in a query string
// through mail clients and proxies that may re-encode or normalise percent escapes, and a
// customer id may itself contain the '.' separator.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace journeyd::app {

class UnsubscribeTokens {
 public:
  explicit UnsubscribeTokens(std::string secret);

  std::string Sign(std::string_view customer_id, std::string_view flow_id) const;
  // `base` is admin.public_url: "<base>/unsubscribe?token=<token>".
  std::string Url(std::string_view base, std::string_view customer_id,
                  std::string_view flow_id) const;

  struct Subject {
    std::string customer_id;
    std::string flow_id;
  };
  // The customer and flow of a token signed with this secret; nullopt when it is malformed,
  // altered or signed with another key (the comparison takes constant time).
  std::optional<Subject> Verify(std::string_view token) const;

 private:
  // HMAC-SHA256 with the key's inner and outer blocks hashed once (RFC 2104): every marketing
  // mail signs a link, and OpenSSL's one-shot HMAC() sets up its digest anew each call.
  struct Mac;
  std::shared_ptr<const Mac> mac_;
  // 128 bits of the MAC of `data`, as 32 lowercase hex digits.
  static constexpr size_t kMacHexSize = 32;
  void MacHex(std::string_view data, char (&hex)[kMacHexSize]) const;
  void AppendToken(std::string& out, std::string_view customer_id, std::string_view flow_id) const;
  static size_t TokenSize(std::string_view customer_id, std::string_view flow_id);
};

std::string Base64UrlEncode(std::string_view bytes);
// Strict: only the base64url alphabet, no padding, canonical trailing bits.
std::optional<std::string> Base64UrlDecode(std::string_view text);

}  // namespace journeyd::app
