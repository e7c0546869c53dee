"""GitHub Actions' filter patterns for branches and tags, compiled once to regexes.

`*` matches within one path segment, `**` across `/`, `?` makes the previous character
optional, `+` repeats it, `[...]` is a character class, and a leading `!` (in a list)
excludes what the patterns before it matched.
"""

import re
from dataclasses import dataclass


class BadGlob(ValueError):
    pass


@dataclass(frozen=True)
class Glob:
    pattern: str
    regex: re.Pattern[str]
    negated: bool = False

    def matches(self, name: str) -> bool:
        return self.regex.fullmatch(name) is not None


def compile_glob(pattern: str, allow_negation: bool = True) -> Glob:
    if not pattern:
        raise BadGlob("empty pattern")
    negated = allow_negation and pattern.startswith("!")
    body = pattern[1:] if negated else pattern
    if not body:
        raise BadGlob("'!' must be followed by a pattern")
    return Glob(pattern, re.compile(_translate(body)), negated)


def _translate(body: str) -> str:
    parts: list[str] = []
    index = 0
    while index < len(body):
        char = body[index]
        if body.startswith("**/", index) and (index == 0 or body[index - 1] == "/"):
            # "**/x" also matches "x" itself, at the top (GitHub's filter cheat sheet).
            parts.append("(?:.*/)?")
            index += 3
            continue
        if body.startswith("**", index):
            parts.append(".*")
            index += 2
            continue
        if char == "*":
            parts.append("[^/]*")
        elif char in "?+":
            if not parts or parts[-1] in ("", ".*", "[^/]*") or parts[-1][-1:] in "?+":
                raise BadGlob(f"'{char}' at position {index + 1} has no character to act on")
            parts[-1] = f"(?:{parts[-1]}){char}"
        elif char == "[":
            end = body.find("]", index + 2)
            if end == -1:
                raise BadGlob(f"'[' at position {index + 1} is never closed")
            parts.append(_character_class(body[index + 1 : end]))
            index = end
        else:
            parts.append(re.escape(char))
        index += 1
    return "".join(parts)


def _character_class(inside: str) -> str:
    negate = inside.startswith("!")
    members = inside[1:] if negate else inside
    escaped = members.replace("\\", "\\\\").replace("]", "\\]").replace("^", "\\^")
    return f"[{'^' if negate else ''}{escaped}]"


def matches_any(globs: tuple[Glob, ...], name: str) -> bool:
    """GitHub's rule for a list: the last pattern that matches decides, `!` meaning no."""
    decision = False
    for glob in globs:
        if glob.matches(name):
            decision = not glob.negated
    return decision
