"""The patterns of pipelines.yaml's repository entries: shell wildcards (fnmatch) over
owner/name, compared case-insensitively as GitHub compares names.

Besides whether a pattern covers a repository, what the file's checks ask of two
patterns: is there a repository both cover, and does one cover every repository the other
does. Each is answered with an example repository, by walking both patterns at once one
character at a time over the characters a repository name may hold. A walk is bounded:
past MAX_STATES it stops and finds nothing (then no common repository is known, and no
pattern is known to cover the other), which takes patterns no one writes, such as
`*a????????????????`.
"""

from collections import deque
from collections.abc import Callable
from fnmatch import fnmatchcase
from functools import lru_cache

from runner.config.github import REPOSITORY_NAME

# What GitHub allows in owner and repository names (lower case: names compare so).
NAME_CHARACTERS = "abcdefghijklmnopqrstuvwxyz0123456789-_."
CHARACTERS = NAME_CHARACTERS + "/"
WILDCARDS = "*?["
# Where a walk gives up; a pattern people write takes a few dozen.
MAX_STATES = 2000

# A piece of a pattern: "*", or the characters one position of a name may hold there.
Piece = str | frozenset[str]
# Where a walk stands: in each pattern, the set of pieces it may be at; and how far into
# owner/name the characters so far go (see _SHAPE).
State = tuple[frozenset[int], frozenset[int], int]

# owner/name, both parts non-empty: from each stage, the stage a name character and a
# "/" lead to (None: not a repository name). The last stage is a whole name.
_SHAPE = {0: (1, None), 1: (1, 2), 2: (3, None), 3: (3, None)}
_WHOLE_NAME = 3


def covers(pattern: str, repository: str) -> bool:
    return fnmatchcase(repository.lower(), pattern.lower())


def is_exact(pattern: str) -> bool:
    """Whether the pattern is one repository's owner/name, with no wildcard."""
    return not any(char in pattern for char in WILDCARDS)


# Asked for every entry covering a delivery's repository, on every delivery: the few
# patterns of the file are worked out once.
@lru_cache(maxsize=1024)
def specificity(pattern: str) -> tuple[bool, int]:
    """Sorts the more specific pattern last: an exact owner/name before any wildcard,
    then the more characters that are not wildcards."""
    literal = sum(1 for piece in _pieces(pattern) if piece != "*" and len(piece) == 1)
    return is_exact(pattern), literal


def common_repository(first: str, second: str) -> str | None:
    """A repository both patterns cover, or None if there is none."""
    if is_exact(first) or is_exact(second):
        exact, other = (first, second) if is_exact(first) else (second, first)
        return exact if REPOSITORY_NAME.fullmatch(exact) and covers(other, exact) else None
    try:
        return _walk(first, second, lambda in_first, in_second: in_first and in_second)
    except _GaveUp:
        return None


def covers_every(outer: str, inner: str) -> bool:
    """Whether `outer` covers every repository `inner` covers."""
    if is_exact(inner):
        return not REPOSITORY_NAME.fullmatch(inner) or covers(outer, inner)
    try:
        return _walk(inner, outer, lambda in_inner, in_outer: in_inner and not in_outer) is None
    except _GaveUp:
        return False


class _GaveUp(Exception):
    """The walk went past MAX_STATES."""


def _walk(first: str, second: str, wanted: Callable[[bool, bool], bool]) -> str | None:
    """The shortest repository name whose being covered by `first` and by `second` is
    `wanted`; None if there is none. Breadth first over where the two patterns can be
    after the same characters; _GaveUp past MAX_STATES."""
    patterns = (_pieces(first), _pieces(second))
    start: State = (_closure(patterns[0], {0}), _closure(patterns[1], {0}), 0)
    came_from: dict[State, tuple[State, str] | None] = {start: None}
    todo = deque([start])
    while todo:
        state = todo.popleft()
        at_first, at_second, stage = state
        ends = (len(patterns[0]) in at_first, len(patterns[1]) in at_second)
        if stage == _WHOLE_NAME and wanted(*ends):
            return _name(came_from, state)
        for char in CHARACTERS:
            following = _step(patterns, state, char)
            if following is not None and following not in came_from:
                came_from[following] = (state, char)
                todo.append(following)
        if len(came_from) > MAX_STATES:
            raise _GaveUp
    return None


def _step(patterns: tuple[list[Piece], list[Piece]], state: State, char: str) -> State | None:
    stage = _SHAPE[state[2]][char == "/"]
    if stage is None:
        return None
    at_first, at_second = (
        _closure(pieces, _advance(pieces, positions, char))
        for pieces, positions in zip(patterns, state[:2], strict=True)
    )
    return at_first, at_second, stage


def _advance(pieces: list[Piece], positions: frozenset[int], char: str) -> set[int]:
    following = set()
    for position in positions:
        if position == len(pieces):
            continue
        piece = pieces[position]
        if piece == "*":
            following.add(position)
        elif char in piece:
            following.add(position + 1)
    return following


def _closure(pieces: list[Piece], positions: set[int]) -> frozenset[int]:
    """The positions, and those past each `*` they stand on (it may match nothing)."""
    reached = set(positions)
    todo = list(positions)
    while todo:
        position = todo.pop()
        if position < len(pieces) and pieces[position] == "*" and position + 1 not in reached:
            reached.add(position + 1)
            todo.append(position + 1)
    return frozenset(reached)


def _name(came_from: dict[State, tuple[State, str] | None], state: State) -> str:
    chars = []
    while (step := came_from[state]) is not None:
        state, char = step
        chars.append(char)
    return "".join(reversed(chars))


def _pieces(pattern: str) -> list[Piece]:
    """The pattern as fnmatch reads it, one piece a position; a `[...]` class becomes the
    characters it admits, found by asking fnmatch itself."""
    pattern = pattern.lower()
    pieces: list[Piece] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "*":
            pieces.append("*")
        elif char == "?":
            pieces.append(frozenset(CHARACTERS))
        elif char == "[" and (end := _class_end(pattern, index)) is not None:
            members = pattern[index : end + 1]
            pieces.append(frozenset(c for c in CHARACTERS if fnmatchcase(c, members)))
            index = end
        else:
            pieces.append(frozenset(char))
        index += 1
    return pieces


def _class_end(pattern: str, start: int) -> int | None:
    """Where the class opened at `start` closes, as fnmatch finds it; None: a literal `[`."""
    index = start + 1
    if pattern[index : index + 1] == "!":
        index += 1
    if pattern[index : index + 1] == "]":
        index += 1
    end = pattern.find("]", index)
    return end if end != -1 else None
