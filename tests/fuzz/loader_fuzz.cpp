// The flow compiler (flow/loader.h) over a whole flows directory in memory: flow files and
// their templates. Invariant: the result is either a flow set without errors, or no flow set
// and at least one error, each located as file:line:column in one of the files given.
//
// Input: files one after the other, each starting with a line "%%% <path>". A path under
// flows/templates/ is a template (flows/templates/<locale>/<name>.yaml for a locale's
// variant), any other path a flow file. Text before the first such line is flows/fuzz.yaml.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

#include "journeyd/flow/loader.h"

using namespace journeyd;

namespace {

constexpr std::string_view kMarker = "%%% ";
constexpr std::string_view kTemplates = "flows/templates/";

void AddFile(flow::FlowSources& sources, std::set<std::string>& stems, std::string path,
             std::string_view text) {
  if (path.rfind(kTemplates, 0) == 0) {
    std::string rest = path.substr(kTemplates.size());
    const size_t slash = rest.find('/');
    flow::TemplateSource t;
    t.locale = slash == std::string::npos ? "" : rest.substr(0, slash);
    t.file = {std::move(path), std::string(text), ""};
    sources.templates.push_back(std::move(t));
    return;
  }
  // The host module lists a directory: two flow files of one stem (welcome.yaml and
  // welcome.yml) are possible there and reported without a line, so they are left out here.
  if (!stems.insert(flow::FileStem(path)).second) return;
  sources.flows.push_back({std::move(path), std::string(text), ""});
}

flow::FlowSources Split(std::string_view in) {
  flow::FlowSources sources;
  sources.templates_dir = "flows/templates";
  std::set<std::string> stems;
  std::string path = "flows/fuzz.yaml";
  std::string text;
  bool any = false;  // text before the first marker, or a marker seen
  while (!in.empty()) {
    const size_t nl = in.find('\n');
    const std::string_view line = in.substr(0, nl == std::string_view::npos ? in.size() : nl + 1);
    in.remove_prefix(line.size());
    if (line.substr(0, kMarker.size()) != kMarker) {
      text += line;
      any = true;
      continue;
    }
    if (any) AddFile(sources, stems, path, text);
    path = std::string(line.substr(kMarker.size()));
    if (!path.empty() && path.back() == '\n') path.pop_back();
    text.clear();
    any = true;
  }
  if (any) AddFile(sources, stems, path, text);
  return sources;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const flow::FlowSources sources =
      Split(std::string_view(reinterpret_cast<const char*>(data), size));
  if (sources.flows.size() + sources.templates.size() > 16) return 0;
  std::set<std::string> paths;
  for (const auto& f : sources.flows) paths.insert(f.path);
  for (const auto& t : sources.templates) paths.insert(t.file.path);
  paths.insert(sources.templates_dir);

  const flow::LoadResult r = flow::CompileFlowSet(sources);
  if ((r.flows == nullptr) != r.diagnostics.HasErrors()) std::abort();
  for (const Diagnostic& d : r.diagnostics.all()) {
    if (d.severity != Severity::kError) continue;
    if (!paths.contains(d.where.file) || d.where.line < 1 || d.where.column < 1 ||
        d.message.empty()) {
      std::fprintf(stderr, "badly located error: %s\n", d.ToString().c_str());
      std::abort();
    }
  }
  return 0;
}
