// What the pieces of the flow compiler share; not a public header (loader.h is). The pieces:
//   loader_yaml.cpp      reading YAML: positions, scalars, durations, times, expressions, literals
//   loader_flow.cpp      a flow file as a whole and its header: id, name, category, reentry,
//                        trigger, exit_on, goal
//   loader_steps.cpp     the steps: lists, ids, links between steps, each kind of step
//   loader_send.cpp      send steps: the template, the step's vars and what the template uses
//   loader_template.cpp  template files (CompileTemplates, CompileTemplate)
//   loader.cpp           CompileFlow, CompileFlowSet, Quote, FileStem
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "journeyd/flow/loader.h"

namespace journeyd::flow::loader_internal {

// A mapping's value, or an undefined node when `n` is not a mapping (yaml-cpp throws there).
// Always a valid node, so that reset() and Mark() on it are safe.
YAML::Node Get(const YAML::Node& n, const std::string& key);

// Line/column (1-based) of a byte offset in a text.
std::pair<int, int> LineColumnOf(std::string_view text, size_t offset);

// Where a mark or a node is in `file`: line 1, column 1 when YAML gives no position.
SourceLocation MarkAt(const std::string& file, const YAML::Mark& m);
SourceLocation NodeAt(const std::string& file, const YAML::Node& n);

// Reports the first invalid UTF-8 byte of a file's text; false when there is one.
bool CheckUtf8(const std::string& path, const std::string& text, Diagnostics& diags);

// Flow ids, template names, variable names, branch names: 1-64 of a-z, 0-9 and _.
bool IsIdentifier(std::string_view s);

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

  std::optional<Flow> Compile();

 private:
  // ---- reading YAML (loader_yaml.cpp) ----
  SourceLocation At(const YAML::Mark& m) const;
  SourceLocation At(const YAML::Node& n) const;
  SourceLocation AtOffset(const YAML::Node& n, size_t offset) const;
  void CheckKeys(const YAML::Node& map, std::initializer_list<std::string_view> allowed,
                 std::string_view what);
  void CheckDuplicateKeys(const YAML::Node& map, std::string_view what);
  bool Scalar(const YAML::Node& n, std::string_view what, std::string* out);
  // `text`, when given, receives the duration as written (a diagram shows it that way).
  std::optional<Duration> DurationOf(const YAML::Node& n, std::string_view what,
                                     std::string* text = nullptr);
  std::optional<int> AtMinutesOf(const YAML::Node& n, std::string_view example);
  std::optional<Expr> ExprOf(const YAML::Node& n, const ExprOptions& opts, std::string_view what);
  std::optional<Expr> ConditionOf(const YAML::Node& n, const ExprOptions& opts,
                                  std::string_view what);
  std::optional<Literal> LiteralOf(const YAML::Node& n, std::string_view what);

  // ---- the flow's header (loader_flow.cpp) ----
  void CheckEventType(const YAML::Node& n, const std::string& type);
  void CompileHeader(const YAML::Node& root, Flow& flow);
  void CompileId(const YAML::Node& root, Flow& flow);
  void CompileCategory(const YAML::Node& n, Flow& flow);
  void CompileReentry(const YAML::Node& n, Flow& flow);
  void CompileTrigger(const YAML::Node& n, Flow& flow);
  void CompileEventTrigger(const YAML::Node& n, const YAML::Node& ev, Trigger& t);
  void CompileDateTrigger(const YAML::Node& n, const YAML::Node& date, Trigger& t);
  void CompileTriggerWhen(const YAML::Node& n, bool allow_event, Trigger& t);
  std::optional<EventMatch> CompileEventMatch(const YAML::Node& n, std::string_view what);
  void CompileExitOn(const YAML::Node& n, Flow& flow);
  void CompileGoal(const YAML::Node& n, Flow& flow);

  // ---- steps (loader_steps.cpp) ----
  // Until a branching step knows what follows it, its branches end at a placeholder
  // unique to that step.
  static constexpr int32_t kPendingNext = -2;
  static int32_t BranchEnd(int32_t idx) { return -1000 - idx; }

  int32_t CompileSequence(const YAML::Node& list, const std::string& anchor, int32_t after,
                          int depth);
  void LinkEnd(int32_t idx, int32_t next);
  int32_t CompileStep(const YAML::Node& n, const std::string& anchor, int ordinal, int depth);
  std::optional<std::pair<std::string, YAML::Node>> StepKindOf(const YAML::Node& n);
  std::string StepIdOf(const YAML::Node& n, const std::string& anchor, int ordinal,
                       bool* explicit_id);
  void CompileStepBody(int32_t idx, const YAML::Node& n, const std::string& kind,
                       const std::string& id, int depth);
  void CompileWait(int32_t idx, const YAML::Node& body);
  void CompileWaitUntil(int32_t idx, const YAML::Node& body);
  void CompileUntilDate(int32_t idx, const YAML::Node& d);
  void CompileDays(int32_t idx, const YAML::Node& days);
  uint8_t DayMaskOf(const YAML::Node& dn);
  void CompileBranch(int32_t idx, const YAML::Node& n, std::string_view key,
                     const std::string& anchor, int depth, int32_t Step::*slot);
  void CompileWaitFor(int32_t idx, const YAML::Node& n, const YAML::Node& body,
                      const std::string& id, int depth);
  void CompileIf(int32_t idx, const YAML::Node& n, const YAML::Node& body, const std::string& id,
                 int depth);
  void CompileSplit(int32_t idx, const YAML::Node& body, const std::string& id, int depth);
  int CompileSplitBranch(int32_t idx, const YAML::Node& b, int n_branch, const std::string& id,
                         int depth, std::set<std::string>& labels);
  SplitBranch SplitBranchOf(const YAML::Node& b, int n_branch);
  int WeightOf(const YAML::Node& w);
  void CompileSet(int32_t idx, const YAML::Node& body);
  void CompileExit(int32_t idx, const YAML::Node& body);

  // ---- send steps (loader_send.cpp) ----
  void CompileSend(int32_t idx, const YAML::Node& n, const YAML::Node& body);
  std::vector<std::pair<std::string, Literal>> StepVarsOf(
      const YAML::Node& vars, std::map<std::string, SourceLocation>& var_at);
  void CheckTemplateUse(int32_t idx, const YAML::Node& name_node,
                        const std::map<std::string, SourceLocation>& var_at);
  std::string PlaceholderProblem(const Placeholder& p, const Template& tmpl,
                                 const std::map<std::string, SourceLocation>& var_at,
                                 std::set<std::string>& used_vars) const;
  static std::string TemplateLabel(const Template& t);

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

}  // namespace journeyd::flow::loader_internal
