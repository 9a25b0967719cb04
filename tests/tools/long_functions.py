#!/usr/bin/env python3
"""Lists functions in C++ sources longer than a limit (default 80 lines).

A function may be longer when the comment block right above it says why, with a line
containing "Long:" (for example "// Long: one table of every config key, read in order.").
Exit status 1 when any function is over the limit without such a reason.

The scan is lexical: comments, strings and character literals are blanked, then every
brace block whose opening line looks like a function head (a parameter list's closing
parenthesis before the brace, not a control statement, lambda or initializer) is measured
from its head to its closing brace.
"""
import re
import sys

CONTROL = re.compile(r"\b(if|for|while|switch|catch|do|else)\b\s*(\(|$)")
NOT_FUNCTION = re.compile(r"\b(class|struct|union|enum|namespace)\b|=\s*$|\]\s*(\(.*\))?\s*"
                          r"(mutable\s*)?(->\s*[\w:<>, ]+)?\s*$")


def blank(text):
    """Blanks comments and literals, keeping newlines so line numbers stay."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith('R"', i) and (i == 0 or not text[i - 1].isalnum()):
            m = re.match(r'R"([^(\s]*)\(', text[i:])
            end = ")" + m.group(1) + '"' if m else '"'
            j = text.find(end, i + 2)
            j = n if j < 0 else j + len(end)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "'" and i > 0 and text[i - 1].isalnum() and (
                i + 1 < n and text[i + 1].isalnum()):
            out.append(c)  # a digit separator: 1'000'000
            i += 1
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(c + " " * (j - i - 2) + c if j - i >= 2 else text[i:j])
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def functions(path):
    raw = open(path, encoding="utf-8").read()
    code = blank(raw)
    raw_lines = raw.split("\n")
    stack = []  # (line of the head, is a function)
    head_start = 0  # offset after the last ; { or }
    line = 1
    for i, c in enumerate(code):
        if c == "\n":
            line += 1
        elif c == "{":
            head = code[head_start:i]
            head_flat = " ".join(head.split())
            is_fn = (not any(f for _, f in stack) and ")" in head_flat
                     and not CONTROL.search(head_flat) and not NOT_FUNCTION.search(head_flat))
            lead = len(head) - len(head.lstrip())
            head_line = line - head.count("\n") + head[:lead].count("\n")
            stack.append((head_line, is_fn))
            head_start = i + 1
        elif c == "}":
            if stack:
                start, is_fn = stack.pop()
                if is_fn:
                    yield start, line, raw_lines
            head_start = i + 1
        elif c == ";":
            head_start = i + 1


def reason_above(raw_lines, head_line):
    k = head_line - 2
    while k >= 0 and raw_lines[k].strip().startswith(("//", "template", "[[")):
        if "Long:" in raw_lines[k]:
            return True
        k -= 1
    return False


def main(argv):
    limit = 80
    paths = []
    for a in argv:
        if a.startswith("--limit="):
            limit = int(a.split("=", 1)[1])
        else:
            paths.append(a)
    bad = 0
    for p in paths:
        for start, end, raw_lines in functions(p):
            length = end - start + 1
            if length > limit and not reason_above(raw_lines, start):
                print(f"{p}:{start}: function of {length} lines (over {limit}, no 'Long:' reason)")
                bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
