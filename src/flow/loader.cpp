// The flow compiler. YAML (with marks) → checked Flow; every problem is collected with its
// file:line:column, so a marketer sees all of them at once.
#include "journeyd/flow/loader.h"

#include "journeyd/common/utf8.h"

#include <yaml-cpp/yaml.h>

#include <fmt/format.h>
#include <algorithm>
#include <charconv>
#include <cmath>
#include <functional>
#include <regex>
#include <set>
#include <sstream>

namespace journeyd::flow {
namespace {

constexpr int kMaxNesting = 16;
constexpr int kMaxSteps = 1000;

constexpr std::string_view kKnownEventTypes[] = {
    "signup",        "profile_updated", "cart_updated", "cart_cleared", "purchase",
    "points_earned", "points_redeemed", "unsubscribe",  "subscribe"};

constexpr std::string_view kStepKinds[] = {"send", "wait",  "wait_until", "wait_for",
                                           "if",   "split", "set",        "exit"};

// Attributes journeyd maintains itself; a flow may read them but not `set` them.
constexpr std::string_view kDerivedAttributes[] = {"orders", "revenue", "first_purchase_at",
                                                   "last_purchase_at"};

// Template variables every send has without the step setting them.
constexpr std::string_view kBuiltinVars[] = {"unsubscribe_url", "flow_id", "step_id"};

// A mapping's value, or an undefined node when `n` is not a mapping (yaml-cpp throws there).
// Always a valid node, so that reset() and Mark() on it are safe.
YAML::Node Get(const YAML::Node& n, const std::string& key) {
  if (n.IsMap()) {
    const YAML::Node& map = n;
    YAML::Node v = map[key];
    if (v.IsDefined()) return v;
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

// Line/column (1-based) of a byte offset in a text.
std::pair<int, int> LineColumnOf(std::string_view text, size_t offset) {
  int line = 1, col = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return {line, col};
}

bool IsIdentifier(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

bool IsEventType(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-')) {
      return false;
    }
  }
  return true;
}

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

std::optional<int> ParseTimeOfDay(std::string_view s) {
  // "09:00", "9:00"
  size_t colon = s.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon > 2 || s.size() != colon + 3) {
    return std::nullopt;
  }
  int h = 0, m = 0;
  auto r1 = std::from_chars(s.data(), s.data() + colon, h);
  auto r2 = std::from_chars(s.data() + colon + 1, s.data() + s.size(), m);
  if (r1.ec != std::errc() || r1.ptr != s.data() + colon || r2.ec != std::errc() ||
      r2.ptr != s.data() + s.size() || h < 0 || h > 23 || m < 0 || m > 59) {
    return std::nullopt;
  }
  return h * 60 + m;
}

// Compiles one flow file. Holds the file's path and text for positions.
class FlowCompiler {
 public:
  FlowCompiler(std::string file, std::string text, const TemplateSet* templates,
               std::string templates_dir, Diagnostics& diags)
      : file_(std::move(file)),
        text_(std::move(text)),
        templates_(templates),
        templates_dir_(std::move(templates_dir)),
        diags_(diags) {}

  std::optional<Flow> Compile() {
    size_t bad = 0;
    if (!ValidUtf8(text_, &bad)) {
      auto [l, c] = LineColumnOf(text_, bad);
      diags_.Error({file_, l, c}, "the file is not valid UTF-8");
      return std::nullopt;
    }
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
    CheckKeys(root,
              {"flow", "name", "description", "category", "trigger", "reentry", "exit_on", "goal",
               "steps"},
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

 private:
  SourceLocation At(const YAML::Mark& m) const {
    if (m.is_null()) return {file_, 1, 1};
    return {file_, m.line + 1, m.column + 1};
  }
  SourceLocation At(const YAML::Node& n) const {
    if (!n.IsDefined()) return {file_, 1, 1};
    return At(n.Mark());
  }

  // Position of byte `offset` inside the scalar `n`, for expression errors.
  SourceLocation AtOffset(const YAML::Node& n, size_t offset) const {
    SourceLocation loc = At(n);
    bool quoted = n.Tag() == "!";
    loc.column += static_cast<int>(offset) + (quoted ? 1 : 0);
    return loc;
  }

  // Every key of `map` must be in `allowed`; also catches duplicate keys.
  void CheckKeys(const YAML::Node& map, std::initializer_list<std::string_view> allowed,
                 std::string_view what) {
    std::set<std::string> seen;
    for (auto it = map.begin(); it != map.end(); ++it) {
      if (!it->first.IsScalar()) {
        diags_.Error(At(it->first), fmt::format("a key of the {} must be a plain word", what));
        continue;
      }
      std::string key = it->first.Scalar();
      if (!seen.insert(key).second) {
        diags_.Error(At(it->first), fmt::format("duplicate key '{}' in the {}", Quote(key), what));
        continue;
      }
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        std::vector<std::string_view> cands(allowed.begin(), allowed.end());
        diags_.Error(At(it->first), fmt::format("unknown key '{}' in the {}{}", Quote(key), what,
                                                DidYouMean(key, cands)));
      }
    }
  }

  bool Scalar(const YAML::Node& n, std::string_view what, std::string* out) {
    if (!n.IsScalar()) {
      diags_.Error(At(n), fmt::format("{} must be a single value, not a {}", what,
                                      n.IsSequence() ? "list"
                                      : n.IsMap()    ? "mapping"
                                                     : "blank"));
      return false;
    }
    *out = n.Scalar();
    return true;
  }

  std::optional<Duration> DurationOf(const YAML::Node& n, std::string_view what) {
    std::string s;
    if (!Scalar(n, what, &s)) return std::nullopt;
    std::string err;
    auto d = ParseDuration(s, &err);
    if (!d) diags_.Error(At(n), err);
    return d;
  }

  std::optional<Expr> ExprOf(const YAML::Node& n, const ExprOptions& opts, std::string_view what) {
    std::string s;
    if (!n.IsScalar()) {
      diags_.Error(At(n),
                   fmt::format("{} must be an expression such as customer.orders == 1", what));
      return std::nullopt;
    }
    s = n.Scalar();
    ExprError err;
    auto e = Expr::Parse(s, opts, &err);
    if (!e) {
      diags_.Error(AtOffset(n, err.offset), err.message);
      return std::nullopt;
    }
    return e;
  }

  std::optional<Expr> ConditionOf(const YAML::Node& n, const ExprOptions& opts,
                                  std::string_view what) {
    auto e = ExprOf(n, opts, what);
    if (e) {
      StaticType t = e->type();
      if (t != StaticType::kAny && t != StaticType::kBool) {
        diags_.Error(At(n), fmt::format("{} must be true or false, but '{}' is a {}", what,
                                        Quote(e->text()), TypeName(t)));
        return std::nullopt;
      }
    }
    return e;
  }

  void CheckEventType(const YAML::Node& n, const std::string& type) {
    if (!IsEventType(type)) {
      diags_.Error(At(n), fmt::format("event type '{}' must be 1-64 characters of a-z, 0-9, _ . -",
                                      Quote(type)));
      return;
    }
    if (std::find(std::begin(kKnownEventTypes), std::end(kKnownEventTypes), type) ==
        std::end(kKnownEventTypes)) {
      std::string hint = DidYouMean(type, kKnownEventTypes);
      if (!hint.empty()) {
        diags_.Warning(At(n), fmt::format("event type '{}' is not one the shop sends by default{}",
                                          type, hint));
      }
    }
  }

  void CompileHeader(const YAML::Node& root, Flow& flow) {
    std::string stem = FileStem(file_);
    if (auto n = Get(root, "flow"); n) {
      std::string id;
      if (Scalar(n, "'flow:'", &id)) {
        if (!IsIdentifier(id)) {
          diags_.Error(At(n), fmt::format("flow id '{}' must be lowercase letters, digits and _",
                                          Quote(id)));
        } else if (id != stem) {
          diags_.Error(At(n), fmt::format("flow id '{}' must match the file name '{}'", id, stem));
        }
        flow.id = id;
      }
    } else {
      diags_.Error({file_, 1, 1}, fmt::format("missing 'flow:' (the flow's id, here '{}')", stem));
      flow.id = stem;
    }
    flow.name = flow.id;
    if (auto n = Get(root, "name"); n) Scalar(n, "'name:'", &flow.name);
    if (auto n = Get(root, "description"); n) {
      std::string ignored;
      Scalar(n, "'description:'", &ignored);
    }
    if (auto n = Get(root, "category"); n) {
      std::string c;
      if (Scalar(n, "'category:'", &c)) {
        if (c == "marketing") {
          flow.category = Category::kMarketing;
        } else if (c == "transactional") {
          flow.category = Category::kTransactional;
        } else {
          constexpr std::string_view kCats[] = {"marketing", "transactional"};
          diags_.Error(At(n), fmt::format("category '{}' must be marketing or transactional{}",
                                          Quote(c), DidYouMean(c, kCats)));
        }
      }
    }
    if (auto n = Get(root, "reentry"); n) {
      std::string r;
      if (Scalar(n, "'reentry:'", &r)) {
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
    }
  }

  void CompileTrigger(const YAML::Node& n, Flow& flow) {
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
    if (ev) {
      CheckKeys(n, {"event", "when"}, "trigger");
      t.kind = Trigger::Kind::kEvent;
      if (Scalar(ev, "'event:'", &t.event)) CheckEventType(ev, t.event);
      if (auto w = Get(n, "when"); w) {
        if (auto e = ConditionOf(w, {.allow_event = true, .allow_trigger = false}, "'when:'")) {
          t.when = std::move(*e);
        }
      }
      return;
    }
    if (date) {
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
        if (auto d2 = DurationOf(o, "'offset:'")) t.offset = *d2;
      }
      if (auto a = Get(n, "at"); a) {
        std::string at;
        if (Scalar(a, "'at:'", &at)) {
          auto m = ParseTimeOfDay(at);
          if (!m) {
            diags_.Error(At(a), fmt::format("'at: {}' must be a time of day as HH:MM, e.g. "
                                            "\"09:00\"",
                                            Quote(at)));
          } else {
            t.at_minutes = *m;
          }
        }
      }
      if (auto w = Get(n, "when"); w) {
        if (auto e = ConditionOf(w, {.allow_event = false, .allow_trigger = false}, "'when:'")) {
          t.when = std::move(*e);
        }
      }
      return;
    }
    CheckKeys(n, {"event", "date", "when", "every", "offset", "at"}, "trigger");
    diags_.Error(At(n),
                 "a trigger needs 'event:' (e.g. event: signup) or 'date:' (e.g. date: "
                 "customer.birthday)");
  }

  std::optional<EventMatch> CompileEventMatch(const YAML::Node& n, std::string_view what) {
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

  void CompileExitOn(const YAML::Node& n, Flow& flow) {
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

  void CompileGoal(const YAML::Node& n, Flow& flow) {
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

  // Compiles a list of steps. Returns the index of its first step, or `after` when empty.
  // Steps without an id get "<anchor>+<n>": the anchor is the nearest explicit id before
  // them in the same list (or the branch they are in), so adding a step elsewhere does not
  // rename them.
  int32_t CompileSequence(const YAML::Node& list, const std::string& anchor, int32_t after,
                          int depth) {
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
  void LinkEnd(int32_t idx, int32_t next) {
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

  // Until a branching step knows what follows it, its branches end at a placeholder
  // unique to that step.
  static constexpr int32_t kPendingNext = -2;
  static int32_t BranchEnd(int32_t idx) { return -1000 - idx; }

  int32_t CompileStep(const YAML::Node& n, const std::string& anchor, int ordinal, int depth) {
    if (!n.IsMap()) {
      diags_.Error(At(n), "each step is a mapping such as '- wait: 3d' or '- send: welcome'");
      return kEnd;
    }
    // Which kind is it?
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
        if (std::find(std::begin(kCompanions), std::end(kCompanions), key) !=
            std::end(kCompanions)) {
          continue;
        }
        diags_.Error(At(it->first), fmt::format("unknown step kind '{}'{}", Quote(key),
                                                DidYouMean(key, kStepKinds)));
        return kEnd;
      }
      diags_.Error(At(n),
                   "this step has no kind: use one of send, wait, wait_until, wait_for, "
                   "if, split, set, exit");
      return kEnd;
    }
    if (kinds.size() > 1) {
      diags_.Error(At(kinds[1].second),
                   fmt::format("a step does one thing: found both '{}' and '{}' (make them two "
                               "steps)",
                               kinds[0].first, kinds[1].first));
      return kEnd;
    }
    const std::string& kind = kinds[0].first;
    int32_t idx = static_cast<int32_t>(steps_->size());
    steps_->emplace_back();
    {
      Step& s = (*steps_)[idx];
      s.where = At(kinds[0].second);
      s.next = kPendingNext;
    }
    // Id first: nested auto ids hang off it.
    std::string id;
    bool explicit_id = false;
    if (auto idn = Get(n, "id"); idn) {
      if (Scalar(idn, "'id:'", &id)) {
        if (!IsStepId(id)) {
          diags_.Error(At(idn),
                       fmt::format("step id '{}' must be 1-64 letters, digits, _ or -", Quote(id)));
        } else {
          explicit_id = true;
          auto [it, fresh] = ids_.emplace(id, At(idn));
          if (!fresh) {
            diags_.Error(At(idn), fmt::format("duplicate step id '{}' (first used at line {})", id,
                                              it->second.line));
          }
        }
      }
    }
    if (!explicit_id) id = fmt::format("{}+{}", anchor, ordinal);
    (*steps_)[idx].id = id;
    (*steps_)[idx].explicit_id = explicit_id;
    YAML::Node body = Get(n, kind);

    if (kind == "send") {
      CheckKeys(n, {"send", "id", "vars", "note"}, "send step");
      CompileSend(idx, n, body);
    } else if (kind == "wait") {
      CheckKeys(n, {"wait", "id", "note"}, "wait step");
      if (auto d = DurationOf(body, "'wait:'")) {
        if (d->count() <= 0) {
          diags_.Error(At(body), "'wait:' needs a positive duration such as 3d");
        } else {
          (*steps_)[idx].kind = StepKind::kWait;
          (*steps_)[idx].wait = *d;
        }
      }
      (*steps_)[idx].kind = StepKind::kWait;
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
    return idx;
  }

  std::optional<Literal> LiteralOf(const YAML::Node& n, std::string_view what) {
    if (!n.IsScalar() && !n.IsNull()) {
      diags_.Error(At(n),
                   fmt::format("{} must be a single value (text, number, true/false)", what));
      return std::nullopt;
    }
    Literal l;
    if (n.IsNull()) return l;
    const std::string& s = n.Scalar();
    if (n.Tag() == "!") {  // quoted: always text
      l.kind = Literal::Kind::kString;
      l.str = s;
      return l;
    }
    if (s == "true" || s == "false") {
      l.kind = Literal::Kind::kBool;
      l.b = s == "true";
      return l;
    }
    double d = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
    if (ec == std::errc() && p == s.data() + s.size() && std::isfinite(d)) {
      l.kind = Literal::Kind::kNumber;
      l.number = d;
      return l;
    }
    l.kind = Literal::Kind::kString;
    l.str = s;
    return l;
  }

  void CompileSend(int32_t idx, const YAML::Node& n, const YAML::Node& body) {
    Step& s0 = (*steps_)[idx];
    s0.kind = StepKind::kSend;
    YAML::Node vars = Get(n, "vars");
    YAML::Node name_node = body;
    if (body.IsMap()) {
      // Long form: send: { template: name, vars: {...} }
      CheckKeys(body, {"template", "vars"}, "send step");
      name_node.reset(Get(body, "template"));
      if (!name_node) {
        diags_.Error(At(body), "'send:' needs 'template:' (a file in flows/templates/)");
        return;
      }
      if (Get(body, "vars")) {
        if (vars) diags_.Error(At(Get(body, "vars")), "'vars:' is given twice");
        vars.reset(Get(body, "vars"));
      }
    }
    std::string name;
    if (!Scalar(name_node, "'send:'", &name)) return;
    if (!IsIdentifier(name)) {
      diags_.Error(At(name_node), fmt::format("template name '{}' must be lowercase letters, "
                                              "digits and _",
                                              Quote(name)));
      return;
    }
    (*steps_)[idx].template_name = name;
    std::vector<std::pair<std::string, Literal>> values;
    std::map<std::string, SourceLocation> var_at;
    if (vars) {
      if (!vars.IsMap()) {
        diags_.Error(At(vars), "'vars:' must be a mapping such as { percent: 10, code: SAVE10 }");
      } else {
        CheckDuplicateKeys(vars, "vars");
        for (auto it = vars.begin(); it != vars.end(); ++it) {
          if (!it->first.IsScalar()) continue;
          std::string key = it->first.Scalar();
          if (!IsIdentifier(key)) {
            diags_.Error(At(it->first), fmt::format("variable name '{}' must be lowercase letters, "
                                                    "digits and _",
                                                    Quote(key)));
            continue;
          }
          if (std::find(std::begin(kBuiltinVars), std::end(kBuiltinVars), key) !=
              std::end(kBuiltinVars)) {
            diags_.Error(At(it->first), fmt::format("'{}' is set by journeyd and cannot be a step "
                                                    "variable",
                                                    key));
            continue;
          }
          auto lit = LiteralOf(it->second, fmt::format("variable '{}'", key));
          if (!lit) continue;
          var_at[key] = At(it->first);
          values.emplace_back(key, std::move(*lit));
        }
      }
    }
    std::sort(values.begin(), values.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    (*steps_)[idx].vars = std::move(values);
    CheckTemplateUse(idx, name_node, var_at);
  }

  void CheckDuplicateKeys(const YAML::Node& map, std::string_view what) {
    std::set<std::string> seen;
    for (auto it = map.begin(); it != map.end(); ++it) {
      if (it->first.IsScalar() && !seen.insert(it->first.Scalar()).second) {
        diags_.Error(At(it->first),
                     fmt::format("duplicate key '{}' in {}", Quote(it->first.Scalar()), what));
      }
    }
  }

  // Every variable the template (in every locale) uses must be something this step can
  // give it.
  void CheckTemplateUse(int32_t idx, const YAML::Node& name_node,
                        const std::map<std::string, SourceLocation>& var_at) {
    const Step& s = (*steps_)[idx];
    if (!templates_) return;
    auto it = templates_->all().find(s.template_name);
    if (it == templates_->all().end() || it->second.count("") == 0) {
      diags_.Error(At(name_node),
                   fmt::format("template '{}' not found in {}", s.template_name, templates_dir_));
      return;
    }
    std::set<std::string> used_vars;
    std::set<std::string> reported;
    for (const auto& [locale, tmpl] : it->second) {
      auto check = [&](const TextTemplate& part) {
        for (const Placeholder& p : part.placeholders()) {
          std::string problem;
          switch (p.path.root) {
            case Root::kVar: {
              const std::string& v = p.path.segments.empty() ? p.path.text : p.path.segments[0];
              used_vars.insert(v);
              bool builtin = std::find(std::begin(kBuiltinVars), std::end(kBuiltinVars), v) !=
                             std::end(kBuiltinVars);
              if (!builtin && !var_at.count(v) && !p.default_value) {
                problem = fmt::format(
                    "template '{}' uses {{{{{}}}}}, which this step does not "
                    "set (add vars: {{ {}: ... }} or a default)",
                    TemplateLabel(tmpl), v, v);
              }
              break;
            }
            case Root::kEvent:
              problem = fmt::format(
                  "template '{}' uses {{{{{}}}}}: templates see trigger.*, "
                  "the event that started the run, not event.*",
                  TemplateLabel(tmpl), p.path.text);
              break;
            case Root::kTrigger:
              if (date_triggered_) {
                problem = fmt::format(
                    "template '{}' uses {{{{{}}}}}, but this flow is started "
                    "by a date, so there is no trigger event",
                    TemplateLabel(tmpl), p.path.text);
              } else if (std::string msg = CheckPath(p.path); !msg.empty()) {
                problem = fmt::format("template '{}': {}", TemplateLabel(tmpl), msg);
              }
              break;
            case Root::kCustomer:
            case Root::kNow:
              break;
          }
          if (!problem.empty() && reported.insert(problem).second) {
            diags_.Error(At(name_node), problem);
          }
        }
      };
      check(tmpl.subject);
      check(tmpl.text);
      if (tmpl.html) check(*tmpl.html);
    }
    for (const auto& [v, at] : var_at) {
      if (!used_vars.count(v)) {
        diags_.Warning(
            at, fmt::format("variable '{}' is not used by template '{}'", v, s.template_name));
      }
    }
  }

  static std::string TemplateLabel(const Template& t) {
    return t.locale.empty() ? t.name : fmt::format("{}/{}", t.locale, t.name);
  }

  void CompileWaitUntil(int32_t idx, const YAML::Node& body) {
    if (!body.IsMap()) {
      diags_.Error(At(body), "'wait_until:' must be a mapping with date:, at: and/or days:");
      return;
    }
    CheckKeys(body, {"date", "at", "days"}, "wait_until");
    bool any = false;
    if (auto d = Get(body, "date"); d) {
      any = true;
      auto e = ExprOf(d, {.allow_event = false, .allow_trigger = !date_triggered_}, "'date:'");
      if (e) {
        StaticType t = e->type();
        if (t != StaticType::kAny && t != StaticType::kTime && t != StaticType::kString) {
          diags_.Error(At(d), fmt::format("'date:' must be a date, but '{}' is a {}",
                                          Quote(e->text()), TypeName(t)));
        } else {
          (*steps_)[idx].until_date = std::move(*e);
        }
      }
    }
    if (auto a = Get(body, "at"); a) {
      any = true;
      std::string at;
      if (Scalar(a, "'at:'", &at)) {
        auto m = ParseTimeOfDay(at);
        if (!m) {
          diags_.Error(At(a), fmt::format("'at: {}' must be a time of day as HH:MM, e.g. \"10:00\"",
                                          Quote(at)));
        } else {
          (*steps_)[idx].at_minutes = *m;
        }
      }
    }
    if (auto days = Get(body, "days"); days) {
      any = true;
      uint8_t mask = 0;
      constexpr std::string_view kDays[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
      auto add = [&](const YAML::Node& dn) {
        std::string d;
        if (!Scalar(dn, "a day", &d)) return;
        std::string lower;
        for (char c : d) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (lower == "weekdays") {
          mask |= 0x1f;
          return;
        }
        if (lower == "weekend") {
          mask |= 0x60;
          return;
        }
        for (int i = 0; i < 7; ++i) {
          if (lower == kDays[i] || (lower.size() > 3 && lower.substr(0, 3) == kDays[i] &&
                                    std::string_view("monday tuesday wednesday thursday friday "
                                                     "saturday sunday")
                                            .find(lower) != std::string_view::npos)) {
            mask |= static_cast<uint8_t>(1u << i);
            return;
          }
        }
        diags_.Error(At(dn), fmt::format("'{}' is not a day: use mon, tue, wed, thu, fri, sat, "
                                         "sun, weekdays or weekend{}",
                                         Quote(d), DidYouMean(lower, kDays)));
      };
      if (days.IsSequence()) {
        for (const auto& dn : days) add(dn);
      } else {
        add(days);
      }
      if (mask == 0 && !days.IsSequence()) {
        // error already reported
      } else if (mask == 0) {
        diags_.Error(At(days), "'days:' must name at least one day");
      } else {
        (*steps_)[idx].weekdays = mask;
      }
    }
    if (!any) {
      diags_.Error(At(body), "'wait_until:' needs date:, at: or days:");
    }
  }

  void CompileBranch(int32_t idx, const YAML::Node& n, std::string_view key,
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

  void CompileWaitFor(int32_t idx, const YAML::Node& n, const YAML::Node& body,
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
        auto e =
            ConditionOf(w, {.allow_event = true, .allow_trigger = !date_triggered_}, "'when:'");
        if (e) (*steps_)[idx].wait_event.when = std::move(*e);
      }
      if (auto t = Get(body, "timeout"); t) {
        if (auto d = DurationOf(t, "'timeout:'")) {
          if (d->count() <= 0) {
            diags_.Error(At(t), "'timeout:' must be a positive duration such as 5d");
          } else {
            (*steps_)[idx].timeout = *d;
          }
        }
      } else {
        diags_.Error(At(body), "'wait_for:' needs 'timeout:' (how long to wait, e.g. 5d)");
      }
    }
    CompileBranch(idx, n, "on_event", id, depth, &Step::on_event);
    CompileBranch(idx, n, "on_timeout", id, depth, &Step::on_timeout);
  }

  void CompileIf(int32_t idx, const YAML::Node& n, const YAML::Node& body, const std::string& id,
                 int depth) {
    auto e = ConditionOf(body, {.allow_event = false, .allow_trigger = !date_triggered_}, "'if:'");
    if (e) (*steps_)[idx].condition = std::move(*e);
    if (!Get(n, "then")) {
      diags_.Error((*steps_)[idx].where, "'if:' needs 'then:' (the steps when it is true)");
    }
    CompileBranch(idx, n, "then", id, depth, &Step::then_first);
    CompileBranch(idx, n, "else", id, depth, &Step::else_first);
  }

  void CompileSplit(int32_t idx, const YAML::Node& body, const std::string& id, int depth) {
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
      CheckKeys(b, {"weight", "steps", "holdout", "name"}, "split branch");
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
      if (!labels.insert(br.label).second) {
        diags_.Error(At(b), fmt::format("two split branches are named '{}'", br.label));
      }
      auto w = Get(b, "weight");
      if (!w) {
        diags_.Error(At(b), "a split branch needs 'weight:' (a whole number such as 50)");
      } else {
        std::string ws;
        int weight = 0;
        if (Scalar(w, "'weight:'", &ws)) {
          auto [p, ec] = std::from_chars(ws.data(), ws.data() + ws.size(), weight);
          if (ec != std::errc() || p != ws.data() + ws.size() || weight <= 0 || weight > 1000000) {
            diags_.Error(At(w),
                         fmt::format("weight '{}' must be a whole number above 0", Quote(ws)));
            weight = 0;
          }
        }
        br.weight = weight;
        total += weight;
      }
      auto steps = Get(b, "steps");
      size_t bi = (*steps_)[idx].branches.size();
      (*steps_)[idx].branches.push_back(br);
      (*steps_)[idx].branches[bi].first = BranchEnd(idx);
      if (br.holdout) {
        if (steps && steps.IsSequence() && steps.size() > 0) {
          diags_.Error(At(steps), "a holdout branch receives nothing: remove its steps");
        }
        continue;
      }
      if (!steps) {
        diags_.Error(At(b), "a split branch needs 'steps:' (or 'holdout: true')");
        continue;
      }
      if (!steps.IsSequence()) {
        diags_.Error(At(steps), "'steps:' must be a list of steps");
        continue;
      }
      int32_t first =
          CompileSequence(steps, fmt::format("{}.{}", id, br.label), BranchEnd(idx), depth + 1);
      (*steps_)[idx].branches[bi].first = first;
    }
    if (total <= 0 && n_branch > 0) {
      diags_.Error(At(body), "the split's weights must add up to more than 0");
    }
  }

  void CompileSet(int32_t idx, const YAML::Node& body) {
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

  std::string file_;
  std::string text_;
  const TemplateSet* templates_;
  std::string templates_dir_;
  Diagnostics& diags_;
  std::vector<Step>* steps_ = nullptr;
  std::map<std::string, SourceLocation> ids_;
  bool date_triggered_ = false;
  bool too_many_reported_ = false;
};

std::optional<Template> CompileTemplateUnchecked(const SourceFile& file, const std::string& name,
                                                 const std::string& locale, Diagnostics& diags);

}  // namespace

std::string Quote(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 60)) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      out += fmt::format("\\x{:02x}", u);
    } else {
      out += c;
    }
  }
  if (s.size() > 60) out += "...";
  return out;
}

std::string FileStem(std::string_view path) {
  const size_t slash = path.rfind('/');
  std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  const size_t dot = name.rfind('.');
  if (dot != std::string_view::npos && dot != 0 && name != "..") name = name.substr(0, dot);
  return std::string(name);
}

void CompileTemplates(const std::vector<TemplateSource>& sources, const std::string& templates_dir,
                      TemplateSet& set, Diagnostics& diags) {
  for (const auto& [locale, file] : sources) {
    std::string name = FileStem(file.path);
    if (!IsIdentifier(name)) {
      diags.Error({file.path, 0, 0},
                  fmt::format("template file name '{}' must be lowercase letters, digits and _",
                              Quote(name)));
      continue;
    }
    if (auto t = CompileTemplate(file, name, locale, diags)) set.Add(std::move(*t));
  }
  for (const auto& [name, by_locale] : set.all()) {
    if (!by_locale.count("")) {
      const Template& any = by_locale.begin()->second;
      diags.Error({any.file, 0, 0}, fmt::format("template '{}' has a {} version but none in {}",
                                                name, any.locale, templates_dir));
    }
  }
}

std::optional<Flow> CompileFlow(const SourceFile& file, const TemplateSet* templates,
                                const std::string& templates_dir, Diagnostics& diags) {
  if (!file.error.empty()) {
    diags.Error({file.path, 0, 0}, file.error);
    return std::nullopt;
  }
  FlowCompiler c(file.path, file.text, templates, templates_dir, diags);
  try {
    return c.Compile();
  } catch (const YAML::Exception& e) {
    // Every node access is checked; this is a last line of defence, never a crash.
    diags.Error({file.path, e.mark.line + 1, e.mark.column + 1},
                fmt::format("cannot read this flow: {}", e.msg));
    return std::nullopt;
  }
}

std::optional<Template> CompileTemplate(const SourceFile& file, const std::string& name,
                                        const std::string& locale, Diagnostics& diags) {
  try {
    return CompileTemplateUnchecked(file, name, locale, diags);
  } catch (const YAML::Exception& e) {
    diags.Error({file.path, e.mark.line + 1, e.mark.column + 1},
                fmt::format("cannot read this template: {}", e.msg));
    return std::nullopt;
  }
}

namespace {

std::optional<Template> CompileTemplateUnchecked(const SourceFile& file, const std::string& name,
                                                 const std::string& locale, Diagnostics& diags) {
  const std::string& path = file.path;
  if (!file.error.empty()) {
    diags.Error({path, 0, 0}, file.error);
    return std::nullopt;
  }
  const std::string& text = file.text;
  size_t bad = 0;
  if (!ValidUtf8(text, &bad)) {
    auto [l, c] = LineColumnOf(text, bad);
    diags.Error({path, l, c}, "the file is not valid UTF-8");
    return std::nullopt;
  }
  std::vector<std::string> lines;
  {
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) lines.push_back(line);
  }
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    diags.Error({path, e.mark.line + 1, e.mark.column + 1}, fmt::format("invalid YAML: {}", e.msg));
    return std::nullopt;
  }
  auto at = [&](const YAML::Node& n) -> SourceLocation {
    if (!n.IsDefined()) return {path, 1, 1};
    auto m = n.Mark();
    if (m.is_null()) return {path, 1, 1};
    return {path, m.line + 1, m.column + 1};
  };
  if (!root.IsMap()) {
    diags.Error({path, 1, 1},
                "a template file is a mapping with subject:, text: and optional "
                "html:");
    return std::nullopt;
  }
  int errors_before = diags.error_count();
  std::set<std::string> seen;
  for (auto it = root.begin(); it != root.end(); ++it) {
    std::string key = it->first.IsScalar() ? it->first.Scalar() : "";
    constexpr std::string_view kKeys[] = {"subject", "text", "html"};
    if (!seen.insert(key).second) {
      diags.Error(at(it->first), fmt::format("duplicate key '{}' in the template", Quote(key)));
    } else if (std::find(std::begin(kKeys), std::end(kKeys), key) == std::end(kKeys)) {
      diags.Error(at(it->first), fmt::format("unknown key '{}' in the template{}", Quote(key),
                                             DidYouMean(key, kKeys)));
    }
  }
  Template t;
  t.name = name;
  t.locale = locale;
  t.file = path;
  // Position of a byte offset inside a part: single-line scalars start at their mark; block
  // scalars (| or >) start on the next line at the block's indentation.
  auto locate = [&](const YAML::Node& n, size_t offset) -> SourceLocation {
    SourceLocation loc = at(n);
    const std::string& s = n.Scalar();
    size_t mark_line = static_cast<size_t>(loc.line - 1);
    bool block =
        mark_line < lines.size() && loc.column - 1 < static_cast<int>(lines[mark_line].size()) &&
        (lines[mark_line][loc.column - 1] == '|' || lines[mark_line][loc.column - 1] == '>');
    auto [l, c] = LineColumnOf(s, offset);
    if (block) {
      size_t content_line = mark_line + l;  // l is 1-based: first content line is mark+1
      int indent = 0;
      if (content_line < lines.size()) {
        while (indent < static_cast<int>(lines[content_line].size()) &&
               lines[content_line][indent] == ' ') {
          ++indent;
        }
      }
      return {path, static_cast<int>(content_line) + 1, indent + c};
    }
    bool quoted = n.Tag() == "!";
    if (l == 1) return {path, loc.line, loc.column + c - 1 + (quoted ? 1 : 0)};
    return {path, loc.line + l - 1, c};
  };
  auto part = [&](const char* key, bool required) -> std::optional<TextTemplate> {
    YAML::Node n = Get(root, key);
    if (!n) {
      if (required) diags.Error({path, 1, 1}, fmt::format("missing '{}:' in the template", key));
      return std::nullopt;
    }
    if (!n.IsScalar()) {
      diags.Error(at(n), fmt::format("'{}:' must be text", key));
      return std::nullopt;
    }
    TemplateError terr;
    auto tt = TextTemplate::Parse(n.Scalar(), &terr);
    if (!tt) {
      diags.Error(locate(n, terr.offset), terr.message);
      return std::nullopt;
    }
    return tt;
  };
  auto subject = part("subject", true);
  auto body = part("text", true);
  auto html = part("html", false);
  if (subject) {
    const std::string& s = subject->source();
    if (s.find_first_of("\r\n") != std::string::npos && s.find_first_of("\r\n") + 1 < s.size()) {
      diags.Error(at(Get(root, "subject")), "the subject must be one line");
    } else if (s.empty()) {
      diags.Error(at(Get(root, "subject")), "the subject is empty");
    } else if (s.size() > 200) {
      diags.Error(at(Get(root, "subject")), "the subject is longer than 200 characters");
    }
    t.subject_at = at(Get(root, "subject"));
  }
  if (body) t.text_at = at(Get(root, "text"));
  if (html) t.html_at = at(Get(root, "html"));
  if (diags.error_count() > errors_before || !subject || !body) return std::nullopt;
  t.subject = std::move(*subject);
  t.text = std::move(*body);
  if (html) t.html = std::move(*html);
  return t;
}

}  // namespace

LoadResult CompileFlowSet(const FlowSources& sources, Diagnostics diagnostics) {
  LoadResult result;
  result.diagnostics = std::move(diagnostics);
  TemplateSet templates;
  CompileTemplates(sources.templates, sources.templates_dir, templates, result.diagnostics);
  auto set = std::make_shared<FlowSet>();
  std::map<std::string, std::string> ids;
  for (const SourceFile& file : sources.flows) {
    std::string stem = FileStem(file.path);
    if (auto [it, fresh] = ids.emplace(stem, file.path); !fresh) {
      result.diagnostics.Error(
          {file.path, 0, 0},
          fmt::format("flow '{}' is defined twice (also in {})", stem, it->second));
      continue;
    }
    if (auto f = CompileFlow(file, &templates, sources.templates_dir, result.diagnostics)) {
      set->AddFlow(std::move(*f));
    }
  }
  result.diagnostics.Sort();
  if (result.diagnostics.HasErrors()) return result;
  set->SetTemplates(std::move(templates));
  set->BuildIndexes();
  result.flows = std::move(set);
  return result;
}

}  // namespace journeyd::flow
