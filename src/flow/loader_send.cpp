// The flow compiler's send steps: the template's name, the step's vars, and whether the
// template (in every locale) uses only what the step gives it.
#include "loader_internal.h"

#include <fmt/format.h>
#include <algorithm>

namespace journeyd::flow::loader_internal {
namespace {

// Template variables every send has without the step setting them.
constexpr std::string_view kBuiltinVars[] = {"unsubscribe_url", "flow_id", "step_id"};

bool IsBuiltinVar(std::string_view v) {
  return std::find(std::begin(kBuiltinVars), std::end(kBuiltinVars), v) != std::end(kBuiltinVars);
}

}  // namespace

void FlowCompiler::CompileSend(int32_t idx, const YAML::Node& n, const YAML::Node& body) {
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
  if (vars) values = StepVarsOf(vars, var_at);
  std::sort(values.begin(), values.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  (*steps_)[idx].vars = std::move(values);
  CheckTemplateUse(idx, name_node, var_at);
}

// The values of a send step's 'vars:', in the order given; where each was given goes into
// `var_at`.
std::vector<std::pair<std::string, Literal>> FlowCompiler::StepVarsOf(
    const YAML::Node& vars, std::map<std::string, SourceLocation>& var_at) {
  std::vector<std::pair<std::string, Literal>> values;
  if (!vars.IsMap()) {
    diags_.Error(At(vars), "'vars:' must be a mapping such as { percent: 10, code: SAVE10 }");
    return values;
  }
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
    if (IsBuiltinVar(key)) {
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
  return values;
}

// Every variable the template (in every locale) uses must be something this step can
// give it.
void FlowCompiler::CheckTemplateUse(int32_t idx, const YAML::Node& name_node,
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
  for (const auto& entry : it->second) {
    // Not a structured binding: clang 14 (the fuzz build) cannot capture one in a lambda.
    const Template& tmpl = entry.second;
    auto check = [&](const TextTemplate& part) {
      for (const Placeholder& p : part.placeholders()) {
        std::string problem = PlaceholderProblem(p, tmpl, var_at, used_vars);
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
      diags_.Warning(at,
                     fmt::format("variable '{}' is not used by template '{}'", v, s.template_name));
    }
  }
}

// What is wrong with placeholder `p` of `tmpl` in this step, or "". A variable it uses goes
// into `used_vars`.
std::string FlowCompiler::PlaceholderProblem(const Placeholder& p, const Template& tmpl,
                                             const std::map<std::string, SourceLocation>& var_at,
                                             std::set<std::string>& used_vars) const {
  switch (p.path.root) {
    case Root::kVar: {
      const std::string& v = p.path.segments.empty() ? p.path.text : p.path.segments[0];
      used_vars.insert(v);
      if (!IsBuiltinVar(v) && !var_at.count(v) && !p.default_value) {
        return fmt::format(
            "template '{}' uses {{{{{}}}}}, which this step does not "
            "set (add vars: {{ {}: ... }} or a default)",
            TemplateLabel(tmpl), v, v);
      }
      return "";
    }
    case Root::kEvent:
      return fmt::format(
          "template '{}' uses {{{{{}}}}}: templates see trigger.*, "
          "the event that started the run, not event.*",
          TemplateLabel(tmpl), p.path.text);
    case Root::kTrigger:
      if (date_triggered_) {
        return fmt::format(
            "template '{}' uses {{{{{}}}}}, but this flow is started "
            "by a date, so there is no trigger event",
            TemplateLabel(tmpl), p.path.text);
      }
      if (std::string msg = CheckPath(p.path); !msg.empty()) {
        return fmt::format("template '{}': {}", TemplateLabel(tmpl), msg);
      }
      return "";
    case Root::kCustomer:
    case Root::kNow:
      break;
  }
  return "";
}

std::string FlowCompiler::TemplateLabel(const Template& t) {
  return t.locale.empty() ? t.name : fmt::format("{}/{}", t.locale, t.name);
}

}  // namespace journeyd::flow::loader_internal
