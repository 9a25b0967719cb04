#include "journeyd/store/publish.h"

namespace journeyd::store {

Op<std::string> PublishEvent(const Keys& keys, std::span<const EventField> fields) {
  Op<std::string> op{{"XADD", keys.events(), "*"}, [](const Reply& r) { return r.str; }};
  op.args.reserve(3 + 2 * fields.size());
  for (const auto& [name, value] : fields) {
    op.args.push_back(name);
    op.args.push_back(value);
  }
  return op;
}

}  // namespace journeyd::store
