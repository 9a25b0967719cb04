// The unsubscribe token check (app/unsubscribe.h): tokens arrive in the query string of a
// link anyone can edit. Invariants: Verify never accepts what Sign did not make; a token it
// accepts is the one Sign makes for the customer and flow it names; base64url decoding is
// strict, so a text that decodes is the encoding of what it decodes to.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "journeyd/app/unsubscribe.h"
#include "journeyd/engine/event.h"

using namespace journeyd;

namespace {

// A flow id as the loader allows it (a file stem of a-z, 0-9 and _).
bool ValidFlowId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const app::UnsubscribeTokens tokens("fuzzing secret of the shop");
  const std::string_view in(reinterpret_cast<const char*>(data), size);

  if (auto who = tokens.Verify(in)) {
    if (tokens.Sign(who->customer_id, who->flow_id) != in) std::abort();
  }
  if (auto bytes = app::Base64UrlDecode(in)) {
    if (app::Base64UrlEncode(*bytes) != in) std::abort();
  }
  // A customer id and a flow id (the input split at its first NUL) make a token that
  // verifies to them when both are ids the daemon can have; to nothing when not.
  const size_t nul = in.find('\0');
  const std::string_view customer = in.substr(0, nul);
  const std::string_view flow = nul == std::string_view::npos ? "" : in.substr(nul + 1);
  const std::string token = tokens.Sign(customer, flow);
  auto who = tokens.Verify(token);
  if (engine::ValidCustomerId(customer) && ValidFlowId(flow)) {
    if (!who || who->customer_id != customer || who->flow_id != flow) std::abort();
  } else if (who) {
    std::abort();
  }
  if (tokens.Url("https://shop.example", customer, flow) !=
      "https://shop.example/unsubscribe?token=" + token) {
    std::abort();
  }
  // One byte changed anywhere makes it invalid.
  if (!token.empty()) {
    std::string altered = token;
    altered[customer.size() % altered.size()] ^= 1;
    if (tokens.Verify(altered)) std::abort();
  }
  return 0;
}
