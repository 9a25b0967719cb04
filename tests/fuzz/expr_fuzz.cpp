// The expression language (flow/expr.h): parse and type-check arbitrary text, then evaluate
// what parses against a scope whose values the input also picks.
//
// Input: one byte of options (bit 0: event.* allowed, bit 1: trigger.*), one byte giving the
// length of the value choices that follow it, then the expression text.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fuzz_scope.h"
#include "journeyd/flow/expr.h"

using namespace journeyd;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  flow::ExprOptions options;
  options.allow_event = (in[0] & 1) != 0;
  options.allow_trigger = (in[0] & 2) != 0;
  const size_t n = std::min<size_t>(static_cast<uint8_t>(in[1]) % 16, in.size() - 2);
  const std::string_view choice = in.substr(2, n);
  const std::string_view text = in.substr(2 + n);

  flow::ExprError error;
  std::optional<flow::Expr> e = flow::Expr::Parse(text, options, &error);
  if (!e) {
    // Errors point into the text (or just past its end) and say something.
    if (error.offset > text.size() || error.message.empty()) std::abort();
    return 0;
  }
  if (e->text() != text) std::abort();
  e->ForEachPath([&](const flow::Path& p) {
    if (p.root == flow::Root::kEvent && !options.allow_event) std::abort();
    if (p.root == flow::Root::kTrigger && !options.allow_trigger) std::abort();
    (void)flow::KnownType(p);
  });
  (void)flow::TypeName(e->type());

  fuzz::FuzzScope scope(choice);
  const flow::Value v = e->Eval(scope);
  (void)e->Test(scope);
  (void)v.ToText();
  // Evaluation is pure: a copy of the expression gives the same value again.
  flow::Expr copy = *e;
  if (copy.Eval(scope).ToText() != v.ToText()) std::abort();
  return 0;
}
