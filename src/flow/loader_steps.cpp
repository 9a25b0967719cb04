// The flow compiler's steps: lists of steps, step ids, the links from each step to the next,
// and each kind of step but send (loader_send.cpp).
#include "loader_internal.h"

#include <fmt/format.h>
#include <algorithm>
#include <cctype>
#include <charconv>

namespace journeyd::flow::loader_internal {
namespace {

constexpr int kMaxNesting = 16;
constexpr int kMaxSteps = 1000;

constexpr std::string_view kStepKinds[] = {"send", "wait",  "wait_until", "wait_for",
                                           "if",   "split", "set",        "exit"};

// Attributes journeyd maintains itself; a flow may read them but not `set` them.
constexpr std::string_view kDerivedAttributes[] = {"orders", "revenue", "first_purchase_at",
                                                   "last_purchase_at"};

bool IsStepId(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '-')) {
      return false;
    }
  }
  return true;
}

}  // namespace

// Compiles a list of steps. Returns the index of its first step, or `after` when empty.
// Steps without an id get "<anchor>+<n>": the anchor is the nearest explicit id before
// them in the same list (or the branch they are in), so adding a step elsewhere does not
// rename them.
int32_t FlowCompiler::CompileSequence(const YAML::Node& list, const std::string& anchor,
                                      int32_t after, int depth) {
  if (depth > kMaxNesting) {
    diags_.Error(At(list), fmt::format("steps are nested more than {} levels deep", kMaxNesting));
    return after;
  }
  std::vector<int32_t> indices;
  std::string current_anchor = anchor;
  int since_anchor = 0;
  bool after_exit = false;
  for (const auto& item : list) {
    if (static_cast<int>(steps_->size()) >= kMaxSteps) {
      if (!too_many_reported_) {
        diags_.Error(At(item), fmt::format("a flow has at most {} steps", kMaxSteps));
        too_many_reported_ = true;
      }
      break;
    }
    if (after_exit) {
      diags_.Error(At(item), "this step comes after 'exit' and can never run");
      after_exit = false;  // report once per list
    }
    ++since_anchor;
    int32_t idx = CompileStep(item, current_anchor, since_anchor, depth);
    if (idx == kEnd) continue;
    const Step& s = (*steps_)[idx];
    if (s.explicit_id) {
      current_anchor = s.id;
      since_anchor = 0;
    }
    if (s.kind == StepKind::kExit) after_exit = true;
    indices.push_back(idx);
  }
  // Link each step to the one after it; branch ends continue after their branch point.
  for (size_t i = 0; i < indices.size(); ++i) {
    int32_t next = i + 1 < indices.size() ? indices[i + 1] : after;
    LinkEnd(indices[i], next);
  }
  return indices.empty() ? after : indices.front();
}

// Sets `next` of a step, and lets its empty branches fall through to it.
void FlowCompiler::LinkEnd(int32_t idx, int32_t next) {
  Step& s = (*steps_)[idx];
  s.next = s.kind == StepKind::kExit ? kEnd : next;
  // Branch tails were linked to the placeholder; point them at `next`.
  for (auto& step : *steps_) {
    if (step.next == BranchEnd(idx)) step.next = next;
    if (step.then_first == BranchEnd(idx)) step.then_first = next;
    if (step.else_first == BranchEnd(idx)) step.else_first = next;
    if (step.on_event == BranchEnd(idx)) step.on_event = next;
    if (step.on_timeout == BranchEnd(idx)) step.on_timeout = next;
    for (auto& b : step.branches) {
      if (b.first == BranchEnd(idx)) b.first = next;
    }
  }
}

int32_t FlowCompiler::CompileStep(const YAML::Node& n, const std::string& anchor, int ordinal,
                                  int depth) {
  if (!n.IsMap()) {
    diags_.Error(At(n), "each step is a mapping such as '- wait: 3d' or '- send: welcome'");
    return kEnd;
  }
  auto kind = StepKindOf(n);
  if (!kind) return kEnd;
  int32_t idx = static_cast<int32_t>(steps_->size());
  steps_->emplace_back();
  {
    Step& s = (*steps_)[idx];
    s.where = At(kind->second);
    s.next = kPendingNext;
  }
  // Id first: nested auto ids hang off it.
  bool explicit_id = false;
  std::string id = StepIdOf(n, anchor, ordinal, &explicit_id);
  (*steps_)[idx].id = id;
  (*steps_)[idx].explicit_id = explicit_id;
  CompileStepBody(idx, n, kind->first, id, depth);
  return idx;
}

// The step's one kind (send, wait, ...) and the key that names it; nullopt, reported, when it
// has none or more than one.
std::optional<std::pair<std::string, YAML::Node>> FlowCompiler::StepKindOf(const YAML::Node& n) {
  std::vector<std::pair<std::string, YAML::Node>> kinds;
  for (auto it = n.begin(); it != n.end(); ++it) {
    if (!it->first.IsScalar()) continue;
    std::string key = it->first.Scalar();
    if (std::find(std::begin(kStepKinds), std::end(kStepKinds), key) != std::end(kStepKinds)) {
      kinds.emplace_back(key, it->first);
    }
  }
  if (kinds.empty()) {
    // Name the first key that is not a known companion key.
    for (auto it = n.begin(); it != n.end(); ++it) {
      std::string key = it->first.IsScalar() ? it->first.Scalar() : "";
      constexpr std::string_view kCompanions[] = {"id",       "vars",       "then", "else",
                                                  "on_event", "on_timeout", "note"};
      if (std::find(std::begin(kCompanions), std::end(kCompanions), key) != std::end(kCompanions)) {
        continue;
      }
      diags_.Error(At(it->first), fmt::format("unknown step kind '{}'{}", Quote(key),
                                              DidYouMean(key, kStepKinds)));
      return std::nullopt;
    }
    diags_.Error(At(n),
                 "this step has no kind: use one of send, wait, wait_until, wait_for, "
                 "if, split, set, exit");
    return std::nullopt;
  }
  if (kinds.size() > 1) {
    diags_.Error(At(kinds[1].second),
                 fmt::format("a step does one thing: found both '{}' and '{}' (make them two "
                             "steps)",
                             kinds[0].first, kinds[1].first));
    return std::nullopt;
  }
  return std::move(kinds[0]);
}

// The step's 'id:', unique in the flow; without a valid one, "<anchor>+<ordinal>".
std::string FlowCompiler::StepIdOf(const YAML::Node& n, const std::string& anchor, int ordinal,
                                   bool* explicit_id) {
  std::string id;
  if (auto idn = Get(n, "id"); idn) {
    if (Scalar(idn, "'id:'", &id)) {
      if (!IsStepId(id)) {
        diags_.Error(At(idn),
                     fmt::format("step id '{}' must be 1-64 letters, digits, _ or -", Quote(id)));
      } else {
        *explicit_id = true;
        auto [it, fresh] = ids_.emplace(id, At(idn));
        if (!fresh) {
          diags_.Error(At(idn), fmt::format("duplicate step id '{}' (first used at line {})", id,
                                            it->second.line));
        }
      }
    }
  }
  if (!*explicit_id) id = fmt::format("{}+{}", anchor, ordinal);
  return id;
}

// What the step of kind `kind` does, from its keys.
void FlowCompiler::CompileStepBody(int32_t idx, const YAML::Node& n, const std::string& kind,
                                   const std::string& id, int depth) {
  YAML::Node body = Get(n, kind);
  if (kind == "send") {
    CheckKeys(n, {"send", "id", "vars", "note"}, "send step");
    CompileSend(idx, n, body);
  } else if (kind == "wait") {
    CheckKeys(n, {"wait", "id", "note"}, "wait step");
    CompileWait(idx, body);
  } else if (kind == "wait_until") {
    CheckKeys(n, {"wait_until", "id", "note"}, "wait_until step");
    (*steps_)[idx].kind = StepKind::kWaitUntil;
    CompileWaitUntil(idx, body);
  } else if (kind == "wait_for") {
    CheckKeys(n, {"wait_for", "id", "on_event", "on_timeout", "note"}, "wait_for step");
    (*steps_)[idx].kind = StepKind::kWaitFor;
    CompileWaitFor(idx, n, body, id, depth);
  } else if (kind == "if") {
    CheckKeys(n, {"if", "id", "then", "else", "note"}, "if step");
    (*steps_)[idx].kind = StepKind::kIf;
    CompileIf(idx, n, body, id, depth);
  } else if (kind == "split") {
    CheckKeys(n, {"split", "id", "note"}, "split step");
    (*steps_)[idx].kind = StepKind::kSplit;
    CompileSplit(idx, body, id, depth);
  } else if (kind == "set") {
    CheckKeys(n, {"set", "id", "note"}, "set step");
    (*steps_)[idx].kind = StepKind::kSet;
    CompileSet(idx, body);
  } else if (kind == "exit") {
    CheckKeys(n, {"exit", "id", "note"}, "exit step");
    (*steps_)[idx].kind = StepKind::kExit;
    CompileExit(idx, body);
  }
}

void FlowCompiler::CompileWait(int32_t idx, const YAML::Node& body) {
  (*steps_)[idx].kind = StepKind::kWait;
  std::string text;
  if (auto d = DurationOf(body, "'wait:'", &text)) {
    if (d->count() <= 0) {
      diags_.Error(At(body), "'wait:' needs a positive duration such as 3d");
    } else {
      (*steps_)[idx].wait = *d;
      (*steps_)[idx].wait_text = std::move(text);
    }
  }
}

void FlowCompiler::CompileWaitUntil(int32_t idx, const YAML::Node& body) {
  if (!body.IsMap()) {
    diags_.Error(At(body), "'wait_until:' must be a mapping with date:, at: and/or days:");
    return;
  }
  CheckKeys(body, {"date", "at", "days"}, "wait_until");
  bool any = false;
  if (auto d = Get(body, "date"); d) {
    any = true;
    CompileUntilDate(idx, d);
  }
  if (auto a = Get(body, "at"); a) {
    any = true;
    if (auto minutes = AtMinutesOf(a, "10:00")) (*steps_)[idx].at_minutes = *minutes;
  }
  if (auto days = Get(body, "days"); days) {
    any = true;
    CompileDays(idx, days);
  }
  if (!any) {
    diags_.Error(At(body), "'wait_until:' needs date:, at: or days:");
  }
}

void FlowCompiler::CompileUntilDate(int32_t idx, const YAML::Node& d) {
  auto e = ExprOf(d, {.allow_event = false, .allow_trigger = !date_triggered_}, "'date:'");
  if (!e) return;
  StaticType t = e->type();
  if (t != StaticType::kAny && t != StaticType::kTime && t != StaticType::kString) {
    diags_.Error(At(d), fmt::format("'date:' must be a date, but '{}' is a {}", Quote(e->text()),
                                    TypeName(t)));
  } else {
    (*steps_)[idx].until_date = std::move(*e);
  }
}

// wait_until's 'days:', one day or a list of them.
void FlowCompiler::CompileDays(int32_t idx, const YAML::Node& days) {
  uint8_t mask = 0;
  if (days.IsSequence()) {
    for (const auto& dn : days) mask |= DayMaskOf(dn);
  } else {
    mask |= DayMaskOf(days);
  }
  if (mask == 0 && !days.IsSequence()) {
    // error already reported
  } else if (mask == 0) {
    diags_.Error(At(days), "'days:' must name at least one day");
  } else {
    (*steps_)[idx].weekdays = mask;
  }
}

// The weekday bits (Monday the lowest) of one entry of 'days:'; 0, reported, when it is none.
uint8_t FlowCompiler::DayMaskOf(const YAML::Node& dn) {
  constexpr std::string_view kDays[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
  std::string d;
  if (!Scalar(dn, "a day", &d)) return 0;
  std::string lower;
  for (char c : d) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "weekdays") return 0x1f;
  if (lower == "weekend") return 0x60;
  for (int i = 0; i < 7; ++i) {
    if (lower == kDays[i] || (lower.size() > 3 && lower.substr(0, 3) == kDays[i] &&
                              std::string_view("monday tuesday wednesday thursday friday "
                                               "saturday sunday")
                                      .find(lower) != std::string_view::npos)) {
      return static_cast<uint8_t>(1u << i);
    }
  }
  diags_.Error(At(dn), fmt::format("'{}' is not a day: use mon, tue, wed, thu, fri, sat, "
                                   "sun, weekdays or weekend{}",
                                   Quote(d), DidYouMean(lower, kDays)));
  return 0;
}

void FlowCompiler::CompileBranch(int32_t idx, const YAML::Node& n, std::string_view key,
                                 const std::string& anchor, int depth, int32_t Step::*slot) {
  YAML::Node list = Get(n, std::string(key));
  (*steps_)[idx].*slot = BranchEnd(idx);
  if (!list || list.IsNull()) return;
  if (!list.IsSequence()) {
    diags_.Error(At(list), fmt::format("'{}:' must be a list of steps (or [] for none)", key));
    return;
  }
  int32_t first =
      CompileSequence(list, fmt::format("{}.{}", anchor, key), BranchEnd(idx), depth + 1);
  (*steps_)[idx].*slot = first;
}

void FlowCompiler::CompileWaitFor(int32_t idx, const YAML::Node& n, const YAML::Node& body,
                                  const std::string& id, int depth) {
  if (!body.IsMap()) {
    diags_.Error(At(body), "'wait_for:' must be a mapping with event: and timeout:");
  } else {
    CheckKeys(body, {"event", "when", "timeout"}, "wait_for");
    if (auto ev = Get(body, "event"); ev) {
      std::string type;
      if (Scalar(ev, "'event:'", &type)) {
        CheckEventType(ev, type);
        (*steps_)[idx].wait_event.event = type;
        (*steps_)[idx].wait_event.where = At(ev);
      }
    } else {
      diags_.Error(At(body), "'wait_for:' needs 'event:' (the event to wait for)");
    }
    if (auto w = Get(body, "when"); w) {
      auto e = ConditionOf(w, {.allow_event = true, .allow_trigger = !date_triggered_}, "'when:'");
      if (e) (*steps_)[idx].wait_event.when = std::move(*e);
    }
    if (auto t = Get(body, "timeout"); t) {
      std::string text;
      if (auto d = DurationOf(t, "'timeout:'", &text)) {
        if (d->count() <= 0) {
          diags_.Error(At(t), "'timeout:' must be a positive duration such as 5d");
        } else {
          (*steps_)[idx].timeout = *d;
          (*steps_)[idx].timeout_text = std::move(text);
        }
      }
    } else {
      diags_.Error(At(body), "'wait_for:' needs 'timeout:' (how long to wait, e.g. 5d)");
    }
  }
  CompileBranch(idx, n, "on_event", id, depth, &Step::on_event);
  CompileBranch(idx, n, "on_timeout", id, depth, &Step::on_timeout);
}

void FlowCompiler::CompileIf(int32_t idx, const YAML::Node& n, const YAML::Node& body,
                             const std::string& id, int depth) {
  auto e = ConditionOf(body, {.allow_event = false, .allow_trigger = !date_triggered_}, "'if:'");
  if (e) (*steps_)[idx].condition = std::move(*e);
  if (!Get(n, "then")) {
    diags_.Error((*steps_)[idx].where, "'if:' needs 'then:' (the steps when it is true)");
  }
  CompileBranch(idx, n, "then", id, depth, &Step::then_first);
  CompileBranch(idx, n, "else", id, depth, &Step::else_first);
}

void FlowCompiler::CompileSplit(int32_t idx, const YAML::Node& body, const std::string& id,
                                int depth) {
  if (!body.IsSequence() || body.size() < 2) {
    diags_.Error(At(body),
                 "'split:' must be a list of at least two branches, each with "
                 "weight: and steps: (or holdout: true)");
    return;
  }
  int total = 0;
  int n_branch = 0;
  std::set<std::string> labels;
  for (const auto& b : body) {
    ++n_branch;
    if (!b.IsMap()) {
      diags_.Error(At(b), "each split branch is a mapping with weight: and steps:");
      continue;
    }
    total += CompileSplitBranch(idx, b, n_branch, id, depth, labels);
  }
  if (total <= 0 && n_branch > 0) {
    diags_.Error(At(body), "the split's weights must add up to more than 0");
  }
}

// Adds branch number `n_branch` to the split step `idx`; returns its weight (0 when it has
// none that is valid). `labels`: the names of the branches before it.
int FlowCompiler::CompileSplitBranch(int32_t idx, const YAML::Node& b, int n_branch,
                                     const std::string& id, int depth,
                                     std::set<std::string>& labels) {
  CheckKeys(b, {"weight", "steps", "holdout", "name"}, "split branch");
  SplitBranch br = SplitBranchOf(b, n_branch);
  if (!labels.insert(br.label).second) {
    diags_.Error(At(b), fmt::format("two split branches are named '{}'", br.label));
  }
  if (auto w = Get(b, "weight"); !w) {
    diags_.Error(At(b), "a split branch needs 'weight:' (a whole number such as 50)");
  } else {
    br.weight = WeightOf(w);
  }
  auto steps = Get(b, "steps");
  size_t bi = (*steps_)[idx].branches.size();
  (*steps_)[idx].branches.push_back(br);
  (*steps_)[idx].branches[bi].first = BranchEnd(idx);
  if (br.holdout) {
    if (steps && steps.IsSequence() && steps.size() > 0) {
      diags_.Error(At(steps), "a holdout branch receives nothing: remove its steps");
    }
  } else if (!steps) {
    diags_.Error(At(b), "a split branch needs 'steps:' (or 'holdout: true')");
  } else if (!steps.IsSequence()) {
    diags_.Error(At(steps), "'steps:' must be a list of steps");
  } else {
    int32_t first =
        CompileSequence(steps, fmt::format("{}.{}", id, br.label), BranchEnd(idx), depth + 1);
    (*steps_)[idx].branches[bi].first = first;
  }
  return br.weight;
}

// A split branch's label ('name:', else "holdout" or "branch<n>") and whether it is a holdout.
SplitBranch FlowCompiler::SplitBranchOf(const YAML::Node& b, int n_branch) {
  SplitBranch br;
  br.label = fmt::format("branch{}", n_branch);
  if (auto nm = Get(b, "name"); nm) {
    std::string label;
    if (Scalar(nm, "'name:'", &label)) {
      if (!IsIdentifier(label)) {
        diags_.Error(At(nm), fmt::format("branch name '{}' must be lowercase letters, digits "
                                         "and _",
                                         Quote(label)));
      } else {
        br.label = label;
      }
    }
  }
  if (auto h = Get(b, "holdout"); h) {
    std::string v;
    if (Scalar(h, "'holdout:'", &v)) {
      if (v != "true" && v != "false") {
        diags_.Error(At(h), "'holdout:' is true or false");
      }
      br.holdout = v == "true";
    }
    if (br.holdout && !Get(b, "name")) br.label = "holdout";
  }
  return br;
}

// A branch's 'weight:', a whole number above 0; 0, reported, when it is not one.
int FlowCompiler::WeightOf(const YAML::Node& w) {
  std::string ws;
  int weight = 0;
  if (Scalar(w, "'weight:'", &ws)) {
    auto [p, ec] = std::from_chars(ws.data(), ws.data() + ws.size(), weight);
    if (ec != std::errc() || p != ws.data() + ws.size() || weight <= 0 || weight > 1000000) {
      diags_.Error(At(w), fmt::format("weight '{}' must be a whole number above 0", Quote(ws)));
      weight = 0;
    }
  }
  return weight;
}

void FlowCompiler::CompileSet(int32_t idx, const YAML::Node& body) {
  if (!body.IsMap() || body.size() == 0) {
    diags_.Error(At(body), "'set:' must be a mapping such as { customer.vip: true }");
    return;
  }
  CheckDuplicateKeys(body, "set");
  for (auto it = body.begin(); it != body.end(); ++it) {
    if (!it->first.IsScalar()) continue;
    std::string key = it->first.Scalar();
    if (key.rfind("customer.", 0) != 0 || !IsIdentifier(key.substr(9))) {
      diags_.Error(At(it->first), fmt::format("'set:' changes customer attributes: write "
                                              "customer.<name>, not '{}'",
                                              Quote(key)));
      continue;
    }
    std::string attr = key.substr(9);
    if (std::find(std::begin(kDerivedAttributes), std::end(kDerivedAttributes), attr) !=
        std::end(kDerivedAttributes)) {
      diags_.Error(At(it->first), fmt::format("customer.{} is kept by journeyd from purchase "
                                              "events and cannot be set",
                                              attr));
      continue;
    }
    auto lit = LiteralOf(it->second, fmt::format("the value of {}", key));
    if (!lit) continue;
    (*steps_)[idx].assignments.emplace_back(attr, std::move(*lit));
  }
}

void FlowCompiler::CompileExit(int32_t idx, const YAML::Node& body) {
  std::string reason = "exit";
  if (body.IsScalar() && !body.Scalar().empty()) {
    reason = body.Scalar();
    if (!IsIdentifier(reason)) {
      diags_.Error(At(body), fmt::format("exit reason '{}' must be lowercase letters, digits "
                                         "and _ (e.g. not_interested)",
                                         Quote(reason)));
    }
  } else if (!body.IsNull() && !body.IsScalar()) {
    diags_.Error(At(body), "'exit:' takes a reason such as not_interested");
  }
  (*steps_)[idx].exit_reason = reason;
}

}  // namespace journeyd::flow::loader_internal
