// The flows directory on disk: which files are flows and templates, and their text. What
// they mean is the flow compiler's business (flow/loader.h).
#include "journeyd/host/flow_files.h"

#include <fmt/format.h>
#include <glob.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "journeyd/host/flow_tests.h"

namespace journeyd::host {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxFileBytes = 1 << 20;

bool IsYamlFile(const fs::path& p) {
  auto ext = p.extension().string();
  return ext == ".yaml" || ext == ".yml";
}

bool IsLocaleName(std::string_view s) {
  // "nl", "de", "pt-BR", "nl_BE"
  if (s.size() != 2 && s.size() != 5) return false;
  if (!std::islower(static_cast<unsigned char>(s[0])) ||
      !std::islower(static_cast<unsigned char>(s[1]))) {
    return false;
  }
  if (s.size() == 5) {
    return (s[2] == '-' || s[2] == '_') && std::isalpha(static_cast<unsigned char>(s[3])) &&
           std::isalpha(static_cast<unsigned char>(s[4]));
  }
  return true;
}

std::vector<fs::path> SortedEntries(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

// The template files under `dir` (templates/*.yaml and templates/<locale>/*.yaml), read;
// a folder that is not named like a locale is reported and passed over.
std::vector<flow::TemplateSource> ReadTemplatesDir(const fs::path& dir, Diagnostics& diags) {
  std::vector<flow::TemplateSource> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& p : SortedEntries(dir)) {
    if (fs::is_directory(p, ec)) {
      std::string locale = p.filename().string();
      if (!IsLocaleName(locale)) {
        diags.Error({p.string(), 0, 0},
                    fmt::format("'{}' is not a locale folder: use a language code such as nl or "
                                "pt-BR",
                                flow::Quote(locale)));
        continue;
      }
      for (const auto& q : SortedEntries(p)) {
        if (fs::is_regular_file(q, ec) && IsYamlFile(q)) {
          out.push_back({locale, ReadSourceFile(q.string())});
        }
      }
    } else if (fs::is_regular_file(p, ec) && IsYamlFile(p)) {
      out.push_back({"", ReadSourceFile(p.string())});
    }
  }
  return out;
}

void LoadTemplatesDir(const fs::path& dir, flow::TemplateSet& set, Diagnostics& diags) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return;
  flow::CompileTemplates(ReadTemplatesDir(dir, diags), dir.string(), set, diags);
}

// flows/tests/ and the files in it are flow tests (journeyctl test), not flows.
bool IsFlowTestPath(const fs::path& p) {
  std::error_code ec;
  fs::path clean = p.lexically_normal();
  if (clean.filename().empty()) clean = clean.parent_path();  // "flows/tests/"
  if (fs::is_directory(clean, ec)) return clean.filename() == "tests";
  return clean.parent_path().filename() == "tests" && IsYamlFile(clean);
}

void ValidateFlowTests(const fs::path& p, Diagnostics& diags) {
  std::error_code ec;
  std::vector<fs::path> files;
  if (fs::is_directory(p, ec)) {
    for (const auto& f : SortedEntries(p)) {
      if (fs::is_regular_file(f, ec) && IsYamlFile(f)) files.push_back(f);
    }
  } else {
    files.push_back(p);
  }
  for (const auto& f : files) ParseFlowTestFile(ReadSourceFile(f.string()), diags);
}

}  // namespace

std::vector<std::string> ExpandPaths(const std::vector<std::string>& patterns) {
  std::vector<std::string> out;
  for (const std::string& p : patterns) {
    if (p.find_first_of("*?[") == std::string::npos) {
      out.push_back(p);
      continue;
    }
    glob_t g{};
    if (::glob(p.c_str(), 0, nullptr, &g) == 0) {
      for (size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);  // sorted
    } else {
      out.push_back(p);
    }
    ::globfree(&g);
  }
  return out;
}

std::vector<std::string> FlowFilesOf(const std::vector<std::string>& paths) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const std::string& p : ExpandPaths(paths)) {
    if (!fs::is_directory(p, ec)) {
      out.push_back(p);
      continue;
    }
    for (const auto& e : SortedEntries(p)) {
      if (fs::is_regular_file(e, ec) && IsYamlFile(e)) out.push_back(e.string());
    }
  }
  return out;
}

flow::SourceFile ReadSourceFile(const std::string& path) {
  flow::SourceFile file{path, "", ""};
  std::error_code ec;
  auto size = fs::file_size(path, ec);
  if (ec) {
    file.error = fmt::format("cannot read file: {}", ec.message());
    return file;
  }
  if (size > kMaxFileBytes) {
    file.error = fmt::format("file is {} bytes; the limit is {} bytes", size, kMaxFileBytes);
    return file;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    file.error = "cannot open file";
    return file;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  file.text = ss.str();
  return file;
}

flow::LoadResult LoadFlowDirectory(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    flow::LoadResult result;
    result.diagnostics.Error({dir, 0, 0}, "flows directory not found");
    return result;
  }
  Diagnostics reading;
  flow::FlowSources sources;
  const fs::path tdir = fs::path(dir) / "templates";
  sources.templates_dir = tdir.string();
  sources.templates = ReadTemplatesDir(tdir, reading);
  for (const auto& p : SortedEntries(dir)) {
    if (fs::is_regular_file(p, ec) && IsYamlFile(p)) {
      sources.flows.push_back(ReadSourceFile(p.string()));
    }
  }
  return flow::CompileFlowSet(sources, std::move(reading));
}

Diagnostics ValidatePaths(const std::vector<std::string>& paths) {
  Diagnostics diags;
  std::error_code ec;
  for (const std::string& path : ExpandPaths(paths)) {
    fs::path p(path);
    if (IsFlowTestPath(p)) {
      ValidateFlowTests(p, diags);
      continue;
    }
    if (fs::is_directory(p, ec)) {
      if (p.filename() == "templates" ||
          (p.has_parent_path() && p.parent_path().filename() == "templates")) {
        flow::TemplateSet set;
        fs::path tdir = p.filename() == "templates" ? p : p.parent_path();
        LoadTemplatesDir(tdir, set, diags);
      } else {
        diags.Append(LoadFlowDirectory(p.string()).diagnostics);
      }
      continue;
    }
    if (!fs::exists(p, ec)) {
      diags.Error({path, 0, 0}, "no such file or directory");
      continue;
    }
    // A template file: under templates/ or templates/<locale>/.
    fs::path parent = p.parent_path();
    if (parent.filename() == "templates" || parent.parent_path().filename() == "templates") {
      std::string locale = parent.filename() == "templates" ? "" : parent.filename().string();
      flow::CompileTemplate(ReadSourceFile(p.string()), p.stem().string(), locale, diags);
      continue;
    }
    // A flow file: its templates are in templates/ beside it.
    flow::TemplateSet templates;
    Diagnostics template_diags;
    fs::path tdir = parent / "templates";
    LoadTemplatesDir(tdir, templates, template_diags);
    // Report template problems only for the templates this flow uses.
    Diagnostics flow_diags;
    flow::CompileFlow(ReadSourceFile(p.string()), &templates, tdir.string(), flow_diags);
    diags.Append(flow_diags);
    for (const auto& d : template_diags.all()) {
      if (d.severity == Severity::kError) {
        diags.Error(d.where, d.message);
      } else {
        diags.Warning(d.where, d.message);
      }
    }
  }
  diags.Sort();
  return diags;
}

std::optional<flow::Flow> LoadFlowFile(const std::string& path, Diagnostics& diags) {
  flow::TemplateSet templates;
  fs::path tdir = fs::path(path).parent_path() / "templates";
  LoadTemplatesDir(tdir, templates, diags);
  auto f = flow::CompileFlow(ReadSourceFile(path), &templates, tdir.string(), diags);
  diags.Sort();
  return f;
}

}  // namespace journeyd::host
