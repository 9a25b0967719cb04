// The flow compiler's view of a flow file as a whole, and of its header: id, name, category,
// reentry, the trigger, exit_on and the goal. The steps are loader_steps.cpp's.
#include "loader_internal.h"

#include <fmt/format.h>
#include <algorithm>
#include <functional>

namespace journeyd::flow::loader_internal {
namespace {

constexpr std::string_view kKnownEventTypes[] = {
    "signup",        "profile_updated", "cart_updated", "cart_cleared", "purchase",
    "points_earned", "points_redeemed", "unsubscribe",  "subscribe"};

bool IsEventType(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-')) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::optional<Flow> FlowCompiler::Compile() {
  if (!CheckUtf8(file_, text_, diags_)) return std::nullopt;
  YAML::Node root;
  try {
    root = YAML::Load(text_);
  } catch (const YAML::Exception& e) {
    diags_.Error(At(e.mark), fmt::format("invalid YAML: {}", e.msg));
    return std::nullopt;
  }
  if (!root.IsMap()) {
    diags_.Error(root.IsDefined() && !root.IsNull() ? At(root) : SourceLocation{file_, 1, 1},
                 "a flow file is a mapping with flow:, trigger: and steps:");
    return std::nullopt;
  }
  int errors_before = diags_.error_count();
  Flow flow;
  flow.file = file_;
  flow.version = std::hash<std::string>{}(text_);
  CheckKeys(
      root,
      {"flow", "name", "description", "category", "trigger", "reentry", "exit_on", "goal", "steps"},
      "flow");
  CompileHeader(root, flow);
  if (auto n = Get(root, "trigger"); n) {
    CompileTrigger(n, flow);
  } else {
    diags_.Error({file_, 1, 1},
                 "missing 'trigger:' (an event such as 'event: signup', or a "
                 "date such as 'date: customer.birthday')");
  }
  date_triggered_ = flow.trigger.kind == Trigger::Kind::kDate;
  if (auto n = Get(root, "exit_on"); n) CompileExitOn(n, flow);
  if (auto n = Get(root, "goal"); n) CompileGoal(n, flow);
  if (auto n = Get(root, "steps"); n) {
    if (!n.IsSequence() || n.size() == 0) {
      diags_.Error(At(n), "'steps:' must be a non-empty list of steps");
    } else {
      steps_ = &flow.steps;
      CompileSequence(n, "start", kEnd, 0);
      for (size_t i = 0; i < flow.steps.size(); ++i) {
        flow.step_index.emplace(flow.steps[i].id, static_cast<int32_t>(i));
      }
    }
  } else {
    diags_.Error({file_, 1, 1}, "missing 'steps:' (the list of what the flow does)");
  }
  if (diags_.error_count() > errors_before) return std::nullopt;
  return flow;
}

void FlowCompiler::CheckEventType(const YAML::Node& n, const std::string& type) {
  if (!IsEventType(type)) {
    diags_.Error(At(n), fmt::format("event type '{}' must be 1-64 characters of a-z, 0-9, _ . -",
                                    Quote(type)));
    return;
  }
  if (std::find(std::begin(kKnownEventTypes), std::end(kKnownEventTypes), type) ==
      std::end(kKnownEventTypes)) {
    std::string hint = DidYouMean(type, kKnownEventTypes);
    if (!hint.empty()) {
      diags_.Warning(
          At(n), fmt::format("event type '{}' is not one the shop sends by default{}", type, hint));
    }
  }
}

void FlowCompiler::CompileHeader(const YAML::Node& root, Flow& flow) {
  CompileId(root, flow);
  flow.name = flow.id;
  if (auto n = Get(root, "name"); n) Scalar(n, "'name:'", &flow.name);
  if (auto n = Get(root, "description"); n) {
    std::string ignored;
    Scalar(n, "'description:'", &ignored);
  }
  if (auto n = Get(root, "category"); n) CompileCategory(n, flow);
  if (auto n = Get(root, "reentry"); n) CompileReentry(n, flow);
}

// The flow's id: the file name's stem, which 'flow:' must repeat.
void FlowCompiler::CompileId(const YAML::Node& root, Flow& flow) {
  std::string stem = FileStem(file_);
  if (auto n = Get(root, "flow"); n) {
    std::string id;
    if (Scalar(n, "'flow:'", &id)) {
      if (!IsIdentifier(id)) {
        diags_.Error(
            At(n), fmt::format("flow id '{}' must be lowercase letters, digits and _", Quote(id)));
      } else if (id != stem) {
        diags_.Error(At(n), fmt::format("flow id '{}' must match the file name '{}'", id, stem));
      }
      flow.id = id;
    }
  } else {
    diags_.Error({file_, 1, 1}, fmt::format("missing 'flow:' (the flow's id, here '{}')", stem));
    flow.id = stem;
  }
}

void FlowCompiler::CompileCategory(const YAML::Node& n, Flow& flow) {
  std::string c;
  if (!Scalar(n, "'category:'", &c)) return;
  if (c == "marketing") {
    flow.category = Category::kMarketing;
  } else if (c == "transactional") {
    flow.category = Category::kTransactional;
  } else {
    constexpr std::string_view kCats[] = {"marketing", "transactional"};
    diags_.Error(At(n), fmt::format("category '{}' must be marketing or transactional{}", Quote(c),
                                    DidYouMean(c, kCats)));
  }
}

void FlowCompiler::CompileReentry(const YAML::Node& n, Flow& flow) {
  std::string r;
  if (!Scalar(n, "'reentry:'", &r)) return;
  if (r == "never") {
    flow.reentry = Reentry::kNever;
  } else if (r == "always") {
    flow.reentry = Reentry::kAlways;
  } else if (r == "restart") {
    flow.reentry = Reentry::kRestart;
  } else if (r.rfind("after ", 0) == 0) {
    std::string err;
    auto d = ParseDuration(r.substr(6), &err);
    if (!d) {
      diags_.Error(At(n), err);
    } else if (d->count() <= 0) {
      diags_.Error(At(n), "'reentry: after' needs a positive duration such as 365d");
    } else {
      flow.reentry = Reentry::kAfter;
      flow.reentry_after = *d;
    }
  } else {
    constexpr std::string_view kModes[] = {"never", "always", "restart"};
    diags_.Error(At(n), fmt::format("reentry '{}' must be never, always, restart or "
                                    "'after <duration>' (e.g. after 365d){}",
                                    Quote(r), DidYouMean(r, kModes)));
  }
}

void FlowCompiler::CompileTrigger(const YAML::Node& n, Flow& flow) {
  Trigger& t = flow.trigger;
  t.where = At(n);
  if (n.IsScalar()) {
    // Short form: `trigger: signup`.
    t.kind = Trigger::Kind::kEvent;
    t.event = n.Scalar();
    CheckEventType(n, t.event);
    return;
  }
  if (!n.IsMap()) {
    diags_.Error(At(n), "'trigger:' must be a mapping with 'event:' or 'date:'");
    return;
  }
  auto ev = Get(n, "event");
  auto date = Get(n, "date");
  if (ev && date) {
    diags_.Error(At(n), "a trigger has either 'event:' or 'date:', not both");
    return;
  }
  if (ev) return CompileEventTrigger(n, ev, t);
  if (date) return CompileDateTrigger(n, date, t);
  CheckKeys(n, {"event", "date", "when", "every", "offset", "at"}, "trigger");
  diags_.Error(At(n),
               "a trigger needs 'event:' (e.g. event: signup) or 'date:' (e.g. date: "
               "customer.birthday)");
}

void FlowCompiler::CompileEventTrigger(const YAML::Node& n, const YAML::Node& ev, Trigger& t) {
  CheckKeys(n, {"event", "when"}, "trigger");
  t.kind = Trigger::Kind::kEvent;
  if (Scalar(ev, "'event:'", &t.event)) CheckEventType(ev, t.event);
  CompileTriggerWhen(n, true, t);
}

void FlowCompiler::CompileDateTrigger(const YAML::Node& n, const YAML::Node& date, Trigger& t) {
  CheckKeys(n, {"date", "every", "offset", "at", "when"}, "trigger");
  t.kind = Trigger::Kind::kDate;
  std::string d;
  if (Scalar(date, "'date:'", &d)) {
    if (d.rfind("customer.", 0) != 0 || !IsIdentifier(d.substr(9))) {
      diags_.Error(At(date), fmt::format("'date:' must name a customer attribute such as "
                                         "customer.birthday, not '{}'",
                                         Quote(d)));
    } else {
      t.date_attribute = d.substr(9);
    }
  }
  if (auto e = Get(n, "every"); e) {
    std::string every;
    if (Scalar(e, "'every:'", &every)) {
      if (every == "year") {
        t.yearly = true;
      } else {
        diags_.Error(At(e), fmt::format("'every: {}' is not supported: use 'every: year' for "
                                        "a yearly date, or leave it out for a single date",
                                        Quote(every)));
      }
    }
  }
  if (auto o = Get(n, "offset"); o) {
    if (auto d2 = DurationOf(o, "'offset:'", &t.offset_text)) t.offset = *d2;
  }
  if (auto a = Get(n, "at"); a) {
    if (auto minutes = AtMinutesOf(a, "09:00")) t.at_minutes = *minutes;
  }
  CompileTriggerWhen(n, false, t);
}

// The trigger's 'when:'; a trigger's own event is not yet a run's trigger.
void FlowCompiler::CompileTriggerWhen(const YAML::Node& n, bool allow_event, Trigger& t) {
  if (auto w = Get(n, "when"); w) {
    if (auto e = ConditionOf(w, {.allow_event = allow_event, .allow_trigger = false}, "'when:'")) {
      t.when = std::move(*e);
    }
  }
}

std::optional<EventMatch> FlowCompiler::CompileEventMatch(const YAML::Node& n,
                                                          std::string_view what) {
  EventMatch m;
  m.where = At(n);
  if (n.IsScalar()) {
    m.event = n.Scalar();
    CheckEventType(n, m.event);
    return m;
  }
  if (!n.IsMap()) {
    diags_.Error(At(n),
                 fmt::format("each {} entry is an event type or a mapping with 'event:'", what));
    return std::nullopt;
  }
  CheckKeys(n, {"event", "when"}, what);
  auto ev = Get(n, "event");
  if (!ev) {
    diags_.Error(At(n), fmt::format("{} entry needs 'event:'", what));
    return std::nullopt;
  }
  if (!Scalar(ev, "'event:'", &m.event)) return std::nullopt;
  CheckEventType(ev, m.event);
  if (auto w = Get(n, "when"); w) {
    auto e = ConditionOf(w, {.allow_event = true, .allow_trigger = !date_triggered_}, "'when:'");
    if (!e) return std::nullopt;
    m.when = std::move(*e);
  }
  return m;
}

void FlowCompiler::CompileExitOn(const YAML::Node& n, Flow& flow) {
  if (n.IsScalar()) {
    if (auto m = CompileEventMatch(n, "exit_on")) flow.exit_on.push_back(std::move(*m));
    return;
  }
  if (!n.IsSequence()) {
    diags_.Error(At(n), "'exit_on:' must be a list of events, e.g. [ { event: purchase } ]");
    return;
  }
  for (const auto& item : n) {
    if (auto m = CompileEventMatch(item, "exit_on")) flow.exit_on.push_back(std::move(*m));
  }
}

void FlowCompiler::CompileGoal(const YAML::Node& n, Flow& flow) {
  if (!n.IsMap()) {
    diags_.Error(At(n), "'goal:' must be a mapping with 'event:' and 'within:'");
    return;
  }
  CheckKeys(n, {"event", "when", "within"}, "goal");
  Goal g;
  g.where = At(n);
  auto ev = Get(n, "event");
  if (!ev) {
    diags_.Error(At(n), "'goal:' needs 'event:' (the event that counts as a conversion)");
    return;
  }
  if (!Scalar(ev, "'event:'", &g.event)) return;
  CheckEventType(ev, g.event);
  if (auto w = Get(n, "when"); w) {
    auto e = ConditionOf(w, {.allow_event = true, .allow_trigger = !date_triggered_}, "'when:'");
    if (e) g.when = std::move(*e);
  }
  auto within = Get(n, "within");
  if (!within) {
    diags_.Error(At(n),
                 "'goal:' needs 'within:' (how long after a mail a conversion counts, "
                 "e.g. 30d)");
    return;
  }
  auto d = DurationOf(within, "'within:'");
  if (!d) return;
  if (d->count() <= 0) {
    diags_.Error(At(within), "'within:' must be a positive duration");
    return;
  }
  g.within = *d;
  flow.goal = std::move(g);
}

}  // namespace journeyd::flow::loader_internal
