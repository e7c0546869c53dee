"""GitHub Actions' filter patterns for branches, tags and paths, compiled once to regexes.

`*` matches within one path segment, `**` across `/`, `?` makes the previous character
optional, `+` repeats it, `[...]` is a character class, a leading `!` (in a list)
excludes what the patterns before it matched, and `\\` makes the character after it
literal (`releases/\\*\\*`, `\\!important`), as GitHub's filter pattern cheat sheet has it.
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
    # For each part, the regex `?` and `+` would act on: None after a wildcard, or after
    # a `?` or `+` (which act on one character each).
    atoms: list[str | None] = []
    index = 0
    while index < len(body):
        char = body[index]
        atom = None
        if body.startswith("**/", index) and (index == 0 or body[index - 1] == "/"):
            # "**/x" also matches "x" itself, at the top (GitHub's filter cheat sheet).
            part, index = "(?:.*/)?", index + 2
        elif body.startswith("**", index):
            part, index = ".*", index + 1
        elif char == "*":
            part = "[^/]*"
        elif char in "?+":
            if not atoms or atoms[-1] is None:
                raise BadGlob(f"'{char}' at position {index + 1} has no character to act on")
            parts[-1], atoms[-1] = f"(?:{atoms[-1]}){char}", None
            index += 1
            continue
        elif char == "\\":
            if index + 1 == len(body):
                raise BadGlob(f"'\\' at position {index + 1} has no character to make literal")
            index += 1
            part = atom = re.escape(body[index])
        elif char == "[":
            end = body.find("]", index + 2)
            if end == -1:
                raise BadGlob(f"'[' at position {index + 1} is never closed")
            part = atom = _character_class(body[index + 1 : end])
            index = end
        else:
            part = atom = re.escape(char)
        parts.append(part)
        atoms.append(atom)
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


def never_matches(globs: tuple[Glob, ...]) -> bool:
    """Whether a list holds only `!` patterns: each only takes back what a pattern before
    it matched, and none comes before, so the list matches nothing."""
    return bool(globs) and all(glob.negated for glob in globs)
