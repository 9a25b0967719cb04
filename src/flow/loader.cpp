// The flow compiler's entry points. YAML (with marks) → checked Flow; every problem is
// collected with its file:line:column, so a marketer sees all of them at once. The pieces
// are listed in loader_internal.h.
#include "journeyd/flow/loader.h"

#include <fmt/format.h>

#include "loader_internal.h"

namespace journeyd::flow {

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

std::optional<Flow> CompileFlow(const SourceFile& file, const TemplateSet* templates,
                                const std::string& templates_dir, Diagnostics& diags) {
  if (!file.error.empty()) {
    diags.Error({file.path, 0, 0}, file.error);
    return std::nullopt;
  }
  loader_internal::FlowCompiler c(file.path, file.text, templates, templates_dir, diags);
  try {
    return c.Compile();
  } catch (const YAML::Exception& e) {
    // Every node access is checked; this is a last line of defence, never a crash.
    diags.Error({file.path, e.mark.line + 1, e.mark.column + 1},
                fmt::format("cannot read this flow: {}", e.msg));
    return std::nullopt;
  }
}

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
