// Problems found in input files, reported as `file:line:column: error: message`.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace journeyd {

struct SourceLocation {
  std::string file;
  int line = 0;    // 1-based; 0 when unknown
  int column = 0;  // 1-based; 0 when unknown
};

enum class Severity { kError, kWarning };

struct Diagnostic {
  SourceLocation where;
  Severity severity = Severity::kError;
  std::string message;

  // "flows/welcome.yaml:12:5: error: unknown step kind 'wiat' — did you mean 'wait'?"
  std::string ToString() const;
};

class Diagnostics {
 public:
  void Error(SourceLocation where, std::string message);
  void Warning(SourceLocation where, std::string message);
  void Append(const Diagnostics& other);

  bool HasErrors() const { return errors_ > 0; }
  int error_count() const { return errors_; }
  const std::vector<Diagnostic>& all() const { return items_; }
  // Orders by file, line and column so output reads top to bottom.
  void Sort();

 private:
  std::vector<Diagnostic> items_;
  int errors_ = 0;
};

// " — did you mean 'wait'?" when one candidate is close to `word`, else "".
std::string DidYouMean(std::string_view word, std::span<const std::string_view> candidates);

// Edit distance, for suggestions.
int EditDistance(std::string_view a, std::string_view b);

}  // namespace journeyd
