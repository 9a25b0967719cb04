// The customer state codec (engine/state_codec.h) decoding arbitrary bytes, as it does what
// Redis holds. Invariant: when decoding succeeds, the state encodes to bytes that decode
// again to the same state (the same encoding and the same JSON view).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "journeyd/engine/state.h"
#include "journeyd/engine/state_codec.h"

using namespace journeyd;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  engine::CustomerState x;
  std::string error;
  if (!engine::DecodeState(bytes, &x, &error)) {
    if (error.empty()) std::abort();  // a refusal says why
    return 0;
  }
  const std::string encoded = engine::EncodeState(x);
  engine::CustomerState y;
  if (!engine::DecodeState(encoded, &y, &error)) {
    std::fprintf(stderr, "the encoding of a decoded state does not decode: %s\n", error.c_str());
    std::abort();
  }
  if (engine::EncodeState(y) != encoded) {
    std::fprintf(stderr, "decode(encode(x)) encodes differently\n");
    std::abort();
  }
  if (engine::StateToJson(x).dump() != engine::StateToJson(y).dump()) {
    std::fprintf(stderr, "decode(encode(x)) differs from x:\n%s\n%s\n",
                 engine::StateToJson(x).dump().c_str(), engine::StateToJson(y).dump().c_str());
    std::abort();
  }
  // The buffer-reusing encoder writes the same bytes over an earlier state's.
  std::string reused = "left over from another state";
  engine::EncodeState(y, &reused);
  if (reused != encoded) std::abort();
  return 0;
}
