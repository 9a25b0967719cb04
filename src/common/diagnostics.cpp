#include "journeyd/common/diagnostics.h"

#include <fmt/format.h>
#include <algorithm>

namespace journeyd {

std::string Diagnostic::ToString() const {
  const char* kind = severity == Severity::kError ? "error" : "warning";
  if (where.line > 0) {
    return fmt::format("{}:{}:{}: {}: {}", where.file, where.line, std::max(where.column, 1), kind,
                       message);
  }
  return fmt::format("{}: {}: {}", where.file, kind, message);
}

void Diagnostics::Error(SourceLocation where, std::string message) {
  items_.push_back({std::move(where), Severity::kError, std::move(message)});
  ++errors_;
}

void Diagnostics::Warning(SourceLocation where, std::string message) {
  items_.push_back({std::move(where), Severity::kWarning, std::move(message)});
}

void Diagnostics::Append(const Diagnostics& other) {
  items_.insert(items_.end(), other.items_.begin(), other.items_.end());
  errors_ += other.errors_;
}

void Diagnostics::Sort() {
  std::stable_sort(items_.begin(), items_.end(), [](const Diagnostic& a, const Diagnostic& b) {
    if (a.where.file != b.where.file) return a.where.file < b.where.file;
    if (a.where.line != b.where.line) return a.where.line < b.where.line;
    return a.where.column < b.where.column;
  });
}

int EditDistance(std::string_view a, std::string_view b) {
  // Optimal string alignment distance: a swap of two neighbours ("wiat" → "wait") is one edit.
  if (a.size() > 64 || b.size() > 64) return 1 << 20;
  const size_t w = b.size() + 1;
  std::vector<int> d((a.size() + 1) * w);
  auto at = [&](size_t i, size_t j) -> int& { return d[i * w + j]; };
  for (size_t i = 0; i <= a.size(); ++i) at(i, 0) = static_cast<int>(i);
  for (size_t j = 0; j <= b.size(); ++j) at(0, j) = static_cast<int>(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      int cost = a[i - 1] == b[j - 1] ? 0 : 1;
      at(i, j) = std::min({at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        at(i, j) = std::min(at(i, j), at(i - 2, j - 2) + 1);
      }
    }
  }
  return at(a.size(), b.size());
}

std::string DidYouMean(std::string_view word, std::span<const std::string_view> candidates) {
  std::string_view best;
  int best_distance = 1 << 30;
  for (std::string_view c : candidates) {
    int d = EditDistance(word, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  int limit = word.size() <= 4 ? 2 : 3;
  if (best.empty() || best_distance > limit || best_distance >= static_cast<int>(word.size())) {
    return "";
  }
  return fmt::format(" — did you mean '{}'?", best);
}

}  // namespace journeyd
