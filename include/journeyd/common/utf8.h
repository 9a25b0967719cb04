// UTF-8 validation shared by every module that reads text from outside.
#pragma once

#include <cstddef>
#include <string_view>

namespace journeyd {

// True when `s` is well-formed UTF-8 (no overlong forms, no surrogates, nothing above
// U+10FFFF). Otherwise false, with the offset of the first bad byte in `bad_offset`.
bool ValidUtf8(std::string_view s, size_t* bad_offset = nullptr);

}  // namespace journeyd
