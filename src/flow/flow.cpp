#include "journeyd/flow/flow.h"

namespace journeyd::flow {

Value Literal::AsValue() const {
  switch (kind) {
    case Kind::kNull:
      return Value::Null();
    case Kind::kBool:
      return Value::Bool(b);
    case Kind::kNumber:
      return Value::Number(number);
    case Kind::kString:
      return Value::String(str);
  }
  return Value::Null();
}

std::string_view StepKindName(StepKind k) {
  switch (k) {
    case StepKind::kSend:
      return "send";
    case StepKind::kWait:
      return "wait";
    case StepKind::kWaitUntil:
      return "wait_until";
    case StepKind::kWaitFor:
      return "wait_for";
    case StepKind::kIf:
      return "if";
    case StepKind::kSplit:
      return "split";
    case StepKind::kSet:
      return "set";
    case StepKind::kExit:
      return "exit";
  }
  return "?";
}

int32_t Flow::FindStep(std::string_view id) const {
  // Most flows have a handful of steps: comparing the ids (lengths first) is cheaper than
  // hashing one. step_index holds each id at its first index, so the answer is the same.
  if (steps.size() <= 16) {
    for (size_t i = 0; i < steps.size(); ++i) {
      if (steps[i].id == id) return static_cast<int32_t>(i);
    }
    return kEnd;
  }
  auto it = step_index.find(id);
  return it == step_index.end() ? kEnd : it->second;
}

const Template* TemplateSet::Find(std::string_view name, std::string_view locale) const {
  auto it = by_name_.find(name);
  if (it == by_name_.end()) return nullptr;
  const auto& variants = it->second;
  if (!locale.empty()) {
    // "nl-BE" → "nl-BE", then "nl"; locales are matched without case ("NL" is "nl").
    std::string want;
    for (char c : locale) want += (c == '_') ? '-' : static_cast<char>(std::tolower(c));
    for (const auto& [loc, t] : variants) {
      std::string have;
      for (char c : loc) have += static_cast<char>(std::tolower(c));
      if (have == want) return &t;
    }
    auto dash = want.find('-');
    if (dash != std::string::npos) {
      auto v = variants.find(want.substr(0, dash));
      if (v != variants.end()) return &v->second;
    }
  }
  auto d = variants.find("");
  return d == variants.end() ? nullptr : &d->second;
}

bool TemplateSet::Has(std::string_view name) const {
  auto it = by_name_.find(name);
  return it != by_name_.end() && it->second.count("") > 0;
}

void TemplateSet::Add(Template t) {
  auto& slot = by_name_[t.name];
  std::string locale = t.locale;
  slot.insert_or_assign(std::move(locale), std::move(t));
}

const Flow* FlowSet::Find(std::string_view id) const {
  for (const Flow& f : flows_) {
    if (f.id == id) return &f;
  }
  return nullptr;
}

const std::vector<int>& FlowSet::TriggeredBy(std::string_view event_type) const {
  static const std::vector<int> kNone;
  auto it = triggered_by_.find(event_type);
  return it == triggered_by_.end() ? kNone : it->second;
}

bool FlowSet::Mentions(std::string_view event_type) const {
  return mentioned_.count(event_type) > 0;
}

void FlowSet::AddFlow(Flow f) { flows_.push_back(std::move(f)); }

void FlowSet::BuildIndexes() {
  triggered_by_.clear();
  mentioned_.clear();
  date_triggered_.clear();
  for (size_t i = 0; i < flows_.size(); ++i) {
    const Flow& f = flows_[i];
    int idx = static_cast<int>(i);
    if (f.trigger.kind == Trigger::Kind::kEvent) {
      triggered_by_[f.trigger.event].push_back(idx);
      mentioned_[f.trigger.event] = true;
    } else {
      date_triggered_.push_back(idx);
    }
    for (const EventMatch& m : f.exit_on) mentioned_[m.event] = true;
    if (f.goal) mentioned_[f.goal->event] = true;
    for (const Step& s : f.steps) {
      if (s.kind == StepKind::kWaitFor) mentioned_[s.wait_event.event] = true;
    }
  }
}

}  // namespace journeyd::flow
