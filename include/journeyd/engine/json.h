// A JSON text (RFC 8259) into nlohmann::json, for the event fields `data` and `profile`.
//
// Accepts and rejects exactly what nlohmann::json::parse does (strict UTF-8, no comments,
// no trailing commas, no numbers that overflow a double), builds the same values (integers
// as signed or unsigned 64-bit when they fit, else doubles; the last of duplicate keys wins),
// and does it in one pass over the bytes without nlohmann's lexer, which keeps a copy of
// every token for its error messages: events are parsed by the hundred thousand a second.
#pragma once

#include <nlohmann/json.hpp>

#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "journeyd/flow/flow.h"
#include "journeyd/flow/value.h"

namespace journeyd::engine {

// Parses all of `text` (surrounding whitespace allowed) into `*out`; false when it is not
// one valid JSON value or is nested more than `max_depth` arrays and objects deep.
bool ParseJson(std::string_view text, nlohmann::json* out, int max_depth = 512);

// Name/value pairs of a JSON object whose values are all scalars, sorted by name, one per name.
using FlatObject = std::vector<std::pair<std::string, flow::Literal>>;

// Parses `text` as ParseJson does when it is an object whose values are all scalars (null,
// true/false, numbers, strings), straight into `*out`: sorted by name, the last of duplicate
// names kept, numbers as doubles. False (and `*out` empty) for anything else, valid or not:
// the caller then parses it with ParseJson, which decides, and says, what it is.
bool ParseFlatObject(std::string_view text, FlatObject* out);

// Appends `s` as a JSON string: quoted, with `"`, `\` and control characters escaped.
void AppendJsonString(std::string& out, std::string_view s);

// A JSON value as expressions and templates see it: scalars as themselves, an array as a list
// of its scalars (held in `lists`), objects as null. Strings view into `j`.
flow::Value JsonToValue(const nlohmann::json& j, std::deque<std::vector<flow::Value>>& lists);

}  // namespace journeyd::engine
