"""Reading and composing pipelines.yaml with bounded work: its size, its nodes, its depth.

YAML lets a few bytes stand for a great deal: an alias repeats its anchor's whole node, a
merge key (`<<: [*a, *a, ...]`) copies its mappings' entries, so six levels of merges in
4.7 KB stand for billions of entries once flattened; and each level of nesting is a level
of recursion for the composer, which 10,000 `[` take past Python's recursion limit.

The composer here counts, as it goes, every node as if each alias were written out in
full, and the depth the tree would then reach, and stops at the first limit crossed with
the line it was crossed on. Whatever reads the tree afterwards (flattening merge keys
included) visits no more nodes than that count and recurses no deeper than that depth.
"""

import os
from pathlib import Path

import yaml
from yaml.events import AliasEvent, Event
from yaml.nodes import Node

# A real pipelines file is a few KB: these leave it a hundredfold room.
MAX_FILE_BYTES = 1024 * 1024
# Nodes, counting an alias as the nodes it stands for each time it is used: about what
# 1 MiB of YAML holds written out, some 60 MB composed.
MAX_NODES = 100_000
# Levels of nesting (the root is the first), aliases counted at the depth they stand for;
# far under Python's recursion limit, which the composer and merge keys recurse towards.
MAX_DEPTH = 100


class LimitExceeded(Exception):
    """A limit crossed, on `line` (0: the file as a whole)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def read_text(path: Path) -> str:
    """The file's text, refused unread past MAX_FILE_BYTES (whatever the file claims:
    /dev/zero has no size); OSError or UnicodeDecodeError if it cannot be read."""
    with path.open("rb") as file:
        data = file.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            size = os.fstat(file.fileno()).st_size
            shown = f"{size:,} bytes" if size > MAX_FILE_BYTES else "larger"
            mib = MAX_FILE_BYTES / 2**20
            raise LimitExceeded(
                0, f"is {shown}; a pipelines file may have at most {MAX_FILE_BYTES:,} ({mib:g} MiB)"
            )
    return data.decode("utf-8")


def compose(text: str) -> Node | None:
    """The YAML node tree of `text` (None if empty): yaml.MarkedYAMLError for bad YAML,
    LimitExceeded past MAX_NODES or MAX_DEPTH."""
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


class _BoundedLoader(yaml.SafeLoader):
    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._nodes = 0  # so far, each alias counted as the nodes it stands for
        self._depth = 0  # of the node being composed
        self._reach = 0  # the deepest level reached so far within the node being composed
        # For each anchored node once composed: the nodes it stands for, and its height.
        self._extent: dict[int, tuple[int, int]] = {}

    def compose_node(self, parent: Node | None, index: object) -> Node:
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            self._count_alias(event)
            return super().compose_node(parent, index)
        depth = self._depth + 1
        if depth > MAX_DEPTH:
            raise LimitExceeded(_line(event), _too_deep())
        self._count(1, event)
        nodes_before, outer_reach = self._nodes - 1, self._reach
        self._depth = self._reach = depth
        node = super().compose_node(parent, index)
        if event.anchor is not None:
            self._extent[id(node)] = (self._nodes - nodes_before, self._reach - depth + 1)
        self._depth, self._reach = depth - 1, max(outer_reach, self._reach)
        return node

    def _count_alias(self, event: AliasEvent) -> None:
        node = self.anchors.get(event.anchor)
        if node is None:
            return  # the composer says so: found undefined alias
        extent = self._extent.get(id(node))
        if extent is None:  # anchored, not yet composed: the alias is inside it
            raise LimitExceeded(
                _line(event),
                f"alias *{event.anchor} is used inside the node it names; "
                "a pipelines file cannot refer to itself",
            )
        nodes, height = extent
        reach = self._depth + height  # the alias sits one level below the node composed
        if reach > MAX_DEPTH:
            raise LimitExceeded(
                _line(event), f"{_too_deep()} (alias *{event.anchor} stands for {height} levels)"
            )
        self._count(nodes, event)
        self._reach = max(self._reach, reach)

    def _count(self, nodes: int, event: Event) -> None:
        self._nodes += nodes
        if self._nodes <= MAX_NODES:
            return
        if isinstance(event, AliasEvent):
            message = (
                f"alias *{event.anchor} takes the file past the limit: more than "
                f"{MAX_NODES:,} YAML nodes, counting an alias as the nodes it stands for "
                "each time it is used"
            )
        else:
            message = f"has more than {MAX_NODES:,} YAML nodes, the most a pipelines file may have"
        raise LimitExceeded(_line(event), message)


def _line(event: Event) -> int:
    return event.start_mark.line + 1


def _too_deep() -> str:
    return f"nests deeper than {MAX_DEPTH} levels, the most a pipelines file may have"
