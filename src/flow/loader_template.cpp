// The flow compiler's template files: subject:, text: and html:, each parsed as a
// TextTemplate, with positions inside block scalars.
#include "loader_internal.h"

#include <fmt/format.h>
#include <algorithm>
#include <sstream>

namespace journeyd::flow {
namespace {

using loader_internal::CheckUtf8;
using loader_internal::Get;
using loader_internal::IsIdentifier;
using loader_internal::LineColumnOf;
using loader_internal::NodeAt;

// Compiles one template file. Holds the file and its lines for positions.
class TemplateCompiler {
 public:
  TemplateCompiler(const SourceFile& file, Diagnostics& diags) : file_(file), diags_(diags) {}

  std::optional<Template> Compile(const std::string& name, const std::string& locale);

 private:
  SourceLocation At(const YAML::Node& n) const { return NodeAt(file_.path, n); }
  SourceLocation Locate(const YAML::Node& n, size_t offset) const;
  void CheckKeys();
  std::optional<TextTemplate> Part(const char* key, bool required);
  void CheckSubject(const TextTemplate& subject);

  const SourceFile& file_;
  Diagnostics& diags_;
  std::vector<std::string> lines_;
  YAML::Node root_;
};

std::optional<Template> TemplateCompiler::Compile(const std::string& name,
                                                  const std::string& locale) {
  const std::string& path = file_.path;
  if (!file_.error.empty()) {
    diags_.Error({path, 0, 0}, file_.error);
    return std::nullopt;
  }
  const std::string& text = file_.text;
  if (!CheckUtf8(path, text, diags_)) return std::nullopt;
  {
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) lines_.push_back(line);
  }
  try {
    root_ = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    diags_.Error({path, e.mark.line + 1, e.mark.column + 1},
                 fmt::format("invalid YAML: {}", e.msg));
    return std::nullopt;
  }
  if (!root_.IsMap()) {
    diags_.Error({path, 1, 1},
                 "a template file is a mapping with subject:, text: and optional "
                 "html:");
    return std::nullopt;
  }
  int errors_before = diags_.error_count();
  CheckKeys();
  Template t;
  t.name = name;
  t.locale = locale;
  t.file = path;
  auto subject = Part("subject", true);
  auto body = Part("text", true);
  auto html = Part("html", false);
  if (subject) {
    CheckSubject(*subject);
    t.subject_at = At(Get(root_, "subject"));
  }
  if (body) t.text_at = At(Get(root_, "text"));
  if (html) t.html_at = At(Get(root_, "html"));
  if (diags_.error_count() > errors_before || !subject || !body) return std::nullopt;
  t.subject = std::move(*subject);
  t.text = std::move(*body);
  if (html) t.html = std::move(*html);
  return t;
}

// Position of a byte offset inside a part: single-line scalars start at their mark; block
// scalars (| or >) start on the next line at the block's indentation.
SourceLocation TemplateCompiler::Locate(const YAML::Node& n, size_t offset) const {
  const std::string& path = file_.path;
  SourceLocation loc = At(n);
  const std::string& s = n.Scalar();
  size_t mark_line = static_cast<size_t>(loc.line - 1);
  bool block =
      mark_line < lines_.size() && loc.column - 1 < static_cast<int>(lines_[mark_line].size()) &&
      (lines_[mark_line][loc.column - 1] == '|' || lines_[mark_line][loc.column - 1] == '>');
  auto [l, c] = LineColumnOf(s, offset);
  if (block) {
    size_t content_line = mark_line + l;  // l is 1-based: first content line is mark+1
    int indent = 0;
    if (content_line < lines_.size()) {
      while (indent < static_cast<int>(lines_[content_line].size()) &&
             lines_[content_line][indent] == ' ') {
        ++indent;
      }
    }
    return {path, static_cast<int>(content_line) + 1, indent + c};
  }
  bool quoted = n.Tag() == "!";
  if (l == 1) return {path, loc.line, loc.column + c - 1 + (quoted ? 1 : 0)};
  return {path, loc.line + l - 1, c};
}

// Every key must be subject, text or html, and once.
void TemplateCompiler::CheckKeys() {
  std::set<std::string> seen;
  for (auto it = root_.begin(); it != root_.end(); ++it) {
    std::string key = it->first.IsScalar() ? it->first.Scalar() : "";
    constexpr std::string_view kKeys[] = {"subject", "text", "html"};
    if (!seen.insert(key).second) {
      diags_.Error(At(it->first), fmt::format("duplicate key '{}' in the template", Quote(key)));
    } else if (std::find(std::begin(kKeys), std::end(kKeys), key) == std::end(kKeys)) {
      diags_.Error(At(it->first), fmt::format("unknown key '{}' in the template{}", Quote(key),
                                              DidYouMean(key, kKeys)));
    }
  }
}

// The part under `key`, parsed; nullopt when it is missing or does not parse (reported).
std::optional<TextTemplate> TemplateCompiler::Part(const char* key, bool required) {
  YAML::Node n = Get(root_, key);
  if (!n) {
    if (required) {
      diags_.Error({file_.path, 1, 1}, fmt::format("missing '{}:' in the template", key));
    }
    return std::nullopt;
  }
  if (!n.IsScalar()) {
    diags_.Error(At(n), fmt::format("'{}:' must be text", key));
    return std::nullopt;
  }
  TemplateError terr;
  auto tt = TextTemplate::Parse(n.Scalar(), &terr);
  if (!tt) {
    diags_.Error(Locate(n, terr.offset), terr.message);
    return std::nullopt;
  }
  return tt;
}

// A subject is one line of text, at most 200 bytes.
void TemplateCompiler::CheckSubject(const TextTemplate& subject) {
  const std::string& s = subject.source();
  if (s.find_first_of("\r\n") != std::string::npos && s.find_first_of("\r\n") + 1 < s.size()) {
    diags_.Error(At(Get(root_, "subject")), "the subject must be one line");
  } else if (s.empty()) {
    diags_.Error(At(Get(root_, "subject")), "the subject is empty");
  } else if (s.size() > 200) {
    diags_.Error(At(Get(root_, "subject")), "the subject is longer than 200 characters");
  }
}

}  // namespace

void CompileTemplates(const std::vector<TemplateSource>& sources, const std::string& templates_dir,
                      TemplateSet& set, Diagnostics& diags) {
  for (const auto& [locale, file] : sources) {
    std::string name = FileStem(file.path);
    if (!IsIdentifier(name)) {
      // At 1:1: every error of a flows directory has a line and column to jump to.
      diags.Error({file.path, 1, 1},
                  fmt::format("template file name '{}' must be lowercase letters, digits and _",
                              Quote(name)));
      continue;
    }
    if (auto t = CompileTemplate(file, name, locale, diags)) set.Add(std::move(*t));
  }
  for (const auto& [name, by_locale] : set.all()) {
    if (!by_locale.count("")) {
      const Template& any = by_locale.begin()->second;
      diags.Error({any.file, 1, 1}, fmt::format("template '{}' has a {} version but none in {}",
                                                name, any.locale, templates_dir));
    }
  }
}

std::optional<Template> CompileTemplate(const SourceFile& file, const std::string& name,
                                        const std::string& locale, Diagnostics& diags) {
  try {
    return TemplateCompiler(file, diags).Compile(name, locale);
  } catch (const YAML::Exception& e) {
    diags.Error({file.path, e.mark.line + 1, e.mark.column + 1},
                fmt::format("cannot read this template: {}", e.msg));
    return std::nullopt;
  }
}

}  // namespace journeyd::flow
