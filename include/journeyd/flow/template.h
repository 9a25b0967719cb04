// Mail templates: `{{customer.first_name | default: "there"}}`, `{{trigger.data.total}}`,
// `{{percent}}` (a step variable), `{{unsubscribe_url}}`.
//
// A template file is YAML with `subject`, `text` and optional `html`:
//   subject: "{{customer.first_name | default: \"Hi\"}}, your cart is waiting"
//   text: |
//     ...
//   html: |
//     <p>...</p>
//
// Placeholders: `{{ name }}` where name is a path (customer.x, trigger.x) or a bare
// variable name; optional filters after `|`:
//   default: "text"   value to use when the variable is missing or empty
//   upper, lower      change case (ASCII)
//   date              a time or date as YYYY-MM-DD
//   money             a number with two decimals (19.9 → 19.90)
// `{{{ name }}}` inserts without HTML escaping (for trusted step variables only).
// In html, values are HTML-escaped. `{{` is written literally as `{{ "{{" }}`.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "journeyd/common/diagnostics.h"
#include "journeyd/flow/expr.h"

namespace journeyd::flow {

enum class Filter : uint8_t { kDefault, kUpper, kLower, kDate, kMoney };

struct Placeholder {
  Path path;
  std::optional<std::string> default_value;
  std::vector<Filter> filters;  // in order; kDefault not listed here (see default_value)
  bool raw = false;             // {{{ }}}: no HTML escaping
  size_t offset = 0;            // byte offset of "{{" in the source text
};

struct TemplateError {
  size_t offset = 0;
  std::string message;
};

// One piece of text with placeholders, parsed once.
class TextTemplate {
 public:
  // Never throws or crashes on hostile input: unbalanced braces, unknown filters, invalid
  // UTF-8 and bad paths are errors with a byte offset.
  static std::optional<TextTemplate> Parse(std::string_view source, TemplateError* error);

  // Appends the rendered text. With `html_escape`, values (not literal text) are escaped
  // for HTML (& < > " '). Missing values render as their default, else as "".
  void Render(const Scope& scope, bool html_escape, std::string& out) const;
  std::string Render(const Scope& scope, bool html_escape) const {
    std::string s;
    Render(scope, html_escape, s);
    return s;
  }

  const std::vector<Placeholder>& placeholders() const { return placeholders_; }
  const std::string& source() const { return source_; }

 private:
  struct Piece {
    std::string literal;   // text before the placeholder (or trailing text)
    int placeholder = -1;  // index into placeholders_, or -1
  };
  std::vector<Piece> pieces_;
  std::vector<Placeholder> placeholders_;
  std::string source_;
};

struct Template {
  std::string name;    // "winback_discount"
  std::string locale;  // "" for the default, "nl" for flows/templates/nl/
  std::string file;    // path it was loaded from
  TextTemplate subject;
  TextTemplate text;
  std::optional<TextTemplate> html;
  // Where each part's text starts in the file, for error positions.
  SourceLocation subject_at, text_at, html_at;
};

}  // namespace journeyd::flow
