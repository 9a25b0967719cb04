// A checked, immutable flow: what the compiler (loader.h) produces and the engine runs.
//
// Steps are compiled from the YAML tree into one flat program per flow. Every step has an id
// (written by the marketer, or generated from its position: "s1", "s3.then.1", ...) and the
// index of the step that follows it (`next`, or kEnd when the run is over). Branching steps
// point at the first step of each branch; a branch's last step continues after the branch
// point, as in any programming language.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "journeyd/common/diagnostics.h"
#include "journeyd/common/time.h"
#include "journeyd/flow/expr.h"
#include "journeyd/flow/template.h"

namespace journeyd::flow {

inline constexpr int32_t kEnd = -1;

enum class Category : uint8_t { kMarketing, kTransactional };
enum class Reentry : uint8_t { kNever, kAlways, kRestart, kAfter };

// A literal from YAML: step variables and `set` values.
struct Literal {
  enum class Kind : uint8_t { kNull, kBool, kNumber, kString } kind = Kind::kNull;
  bool b = false;
  double number = 0;
  std::string str;
  Value AsValue() const;  // points into this Literal
};

struct EventMatch {
  std::string event;  // event type
  Expr when;          // empty: any event of that type
  SourceLocation where;
};

struct Trigger {
  enum class Kind : uint8_t { kEvent, kDate } kind = Kind::kEvent;
  // kEvent
  std::string event;
  // kDate: the customer attribute holding the date ("birthday", "points_expire_at").
  std::string date_attribute;
  bool yearly = false;      // every: year
  Duration offset{0};       // offset: -14d
  std::string offset_text;  // the offset as the flow wrote it ("-14d"), for diagrams
  int at_minutes = 9 * 60;  // at: "09:00", local time of day in the customer's zone
  Expr when;                // both kinds: optional condition
  SourceLocation where;
};

struct Goal {
  std::string event;
  Expr when;
  Duration within{0};
  SourceLocation where;
};

enum class StepKind : uint8_t { kSend, kWait, kWaitUntil, kWaitFor, kIf, kSplit, kSet, kExit };
std::string_view StepKindName(StepKind k);

struct SplitBranch {
  int weight = 0;
  bool holdout = false;
  int32_t first = kEnd;  // first step of the branch (the step after the split when empty)
  std::string label;     // "a" / generated "branch1", used in the journey history
};

struct Step {
  StepKind kind = StepKind::kExit;
  std::string id;
  bool explicit_id = false;
  SourceLocation where;
  int32_t next = kEnd;

  // kSend
  std::string template_name;
  std::vector<std::pair<std::string, Literal>> vars;  // sorted by name
  // kWait
  Duration wait{0};
  std::string wait_text;  // as the flow wrote it ("180d", not "25w5d"), for diagrams
  // kWaitUntil
  Expr until_date;                // empty: from now
  std::optional<int> at_minutes;  // local time of day
  uint8_t weekdays = 0x7f;        // bit 0 = Monday ... bit 6 = Sunday
  // kWaitFor
  EventMatch wait_event;
  Duration timeout{0};
  std::string timeout_text;  // as written, like wait_text
  int32_t on_event = kEnd;
  int32_t on_timeout = kEnd;
  // kIf
  Expr condition;
  int32_t then_first = kEnd;
  int32_t else_first = kEnd;
  // kSplit
  std::vector<SplitBranch> branches;
  // kSet: customer attribute → value
  std::vector<std::pair<std::string, Literal>> assignments;
  // kExit
  std::string exit_reason;
};

// Hashes std::string and std::string_view alike, so that the indexes below are searched by
// a view without building a std::string key for every lookup.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
template <typename V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

struct Flow {
  std::string id;
  std::string name;
  std::string file;
  Category category = Category::kMarketing;
  Trigger trigger;
  Reentry reentry = Reentry::kNever;
  Duration reentry_after{0};
  std::vector<EventMatch> exit_on;
  std::optional<Goal> goal;
  std::vector<Step> steps;        // steps[0] is the first step; empty flows are refused
  StringMap<int32_t> step_index;  // id → index
  // A hash of the file's content, to tell versions apart in logs.
  uint64_t version = 0;

  int32_t FindStep(std::string_view id) const;  // kEnd when absent
};

// Templates by name, each with its locale variants.
class TemplateSet {
 public:
  // The variant for `locale` ("nl", or "nl-BE" falling back to "nl"), else the default.
  const Template* Find(std::string_view name, std::string_view locale) const;
  bool Has(std::string_view name) const;
  void Add(Template t);
  const std::map<std::string, std::map<std::string, Template>, std::less<>>& all() const {
    return by_name_;
  }

 private:
  // name → locale → template
  std::map<std::string, std::map<std::string, Template>, std::less<>> by_name_;
};

// Everything loaded from one flows directory. Immutable once built; shared between threads
// through shared_ptr<const FlowSet>.
class FlowSet {
 public:
  const std::vector<Flow>& flows() const { return flows_; }
  const Flow* Find(std::string_view id) const;
  const TemplateSet& templates() const { return templates_; }
  // Flows whose trigger is this event type / whose exit_on, wait_for or goal names it.
  const std::vector<int>& TriggeredBy(std::string_view event_type) const;
  bool Mentions(std::string_view event_type) const;
  const std::vector<int>& DateTriggered() const { return date_triggered_; }

  // Built by the loader.
  void AddFlow(Flow f);
  void SetTemplates(TemplateSet t) { templates_ = std::move(t); }
  void BuildIndexes();

 private:
  std::vector<Flow> flows_;
  TemplateSet templates_;
  StringMap<std::vector<int>> triggered_by_;
  StringMap<bool> mentioned_;
  std::vector<int> date_triggered_;
};

}  // namespace journeyd::flow
