#include "journeyd/store/customers.h"

namespace journeyd::store {

Op<std::optional<std::string>> CustomerState(const Keys& keys, std::string_view id) {
  return {{"GET", keys.customer(id)}, [](const Reply& r) -> std::optional<std::string> {
            if (r.type != Reply::Type::kString) return std::nullopt;
            return r.str;
          }};
}

}  // namespace journeyd::store
