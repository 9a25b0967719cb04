// See fence.h.
#include "journeyd/store/fence.h"

#include <fmt/format.h>

namespace journeyd::store {

std::vector<RespCommand> FenceWatch(const Fence& f) {
  std::vector<RespCommand> c;
  c.push_back(RespCommand::Of({"WATCH", f.lease_key, f.wheel_moved_key}));
  c.push_back(RespCommand::Of({"GET", f.lease_key}));
  c.push_back(RespCommand::Of({"GET", f.wheel_moved_key}));
  return c;
}

std::string FenceCheck(const Fence& f, std::span<const Result> replies) {
  if (replies.size() < 3) return "fence: missing replies";
  for (const Result& r : replies.first(3)) {
    if (!r.ok()) return "fence: " + r.what();
  }
  if (replies[1].reply.is_nil() || replies[1].reply.str != f.token) {
    return "STALE this instance no longer owns the partition";
  }
  const Reply& moved = replies[2].reply;
  const std::string value = fmt::format("{}", f.wheel_moved);
  if ((moved.is_nil() ? std::string("0") : moved.str) != value) {
    return "WHEEL the timing wheel moved without this instance";
  }
  return "";
}

std::vector<RespCommand> InTransaction(std::vector<RespCommand> body) {
  std::vector<RespCommand> c;
  c.reserve(body.size() + 2);
  c.push_back(RespCommand::Of({"MULTI"}));
  for (auto& b : body) c.push_back(std::move(b));
  c.push_back(RespCommand::Of({"EXEC"}));
  return c;
}

std::string TransactionError(std::span<const Result> replies, const Reply** exec) {
  if (replies.empty()) return "transaction: no replies";
  for (const Result& r : replies.first(replies.size() - 1)) {
    if (!r.error.empty()) return r.error;
    if (r.reply.is_error()) return r.reply.str;  // refused while queuing: EXEC discards all
  }
  const Result& e = replies.back();
  if (!e.error.empty()) return e.error;
  if (e.reply.is_error()) return e.reply.str;
  if (e.reply.is_nil()) return "STALE the lease or the timing wheel changed during the commit";
  for (const Reply& x : e.reply.elements) {
    if (x.is_error()) return x.str;
  }
  *exec = &e.reply;
  return "";
}

}  // namespace journeyd::store
