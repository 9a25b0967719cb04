// The customer state's codec: a compact binary form (a version byte, then varint-prefixed
// fields; the layout is described in state_codec.cpp). Decoding never trusts the input:
// truncated or corrupt bytes and unknown newer versions are errors, not crashes.
#pragma once

#include <string>
#include <string_view>

namespace journeyd::engine {

struct CustomerState;

std::string EncodeState(const CustomerState& state);
// The same into `*out`, reusing what it has allocated (a worker encodes its batch's states
// one after the other into one buffer).
void EncodeState(const CustomerState& state, std::string* out);
bool DecodeState(std::string_view bytes, CustomerState* state, std::string* error);

}  // namespace journeyd::engine
