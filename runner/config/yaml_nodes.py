"""Typed values out of a YAML node tree, every problem kept with its file and line.

Reading nodes rather than plain values is what lets each problem know its line; reading
goes on after a problem, so one pass reports them all.
"""

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.where}: {self.message}"


# What to answer a key the schema does not know, given the key, its value and the keys
# allowed there; None for no more than that it is unknown.
KeyHint = Callable[[str, Node, Collection[str]], str | None]


class NodeReader:
    """Reads values out of YAML nodes, collecting each problem with its line."""

    def __init__(self, source: str, key_hint: KeyHint | None = None) -> None:
        self.source = source
        self.key_hint = key_hint
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []
        # A problem with a value is reported on the line of its key, where people look.
        self.key_of: dict[int, Node] = {}

    def problem(self, node: Node | None, where: str, message: str) -> None:
        self.problems.append(self.located(node, where, message))

    def warning(self, node: Node | None, where: str, message: str) -> None:
        self.warnings.append(self.located(node, where, message))

    def located(self, node: Node | None, where: str, message: str) -> Problem:
        return Problem(self.source, self.line_of(node), where, message)

    def line_of(self, node: Node | None) -> int:
        node = self.key_of.get(id(node), node)
        return node.start_mark.line + 1 if node is not None else 1

    def mapping(
        self, node: Node | None, where: str, keys: dict[str, bool] | None, noun: str = "key"
    ) -> dict[str, Node] | None:
        """The node's entries by key; `keys` maps each allowed key to whether it is required."""
        if node is None:
            return None
        if not isinstance(node, MappingNode):
            self.problem(node, where, f"must be a mapping, not {kind_of(node)}")
            return None
        try:
            yaml.SafeLoader("").flatten_mapping(node)
        except yaml.MarkedYAMLError as error:  # <<: 5, or a list of something not mappings
            mark = error.problem_mark or node.start_mark
            self.problems.append(
                Problem(self.source, mark.line + 1, where, f"cannot merge: {error.problem}")
            )
            return None
        entries: dict[str, Node] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, ScalarNode) else None
            if not isinstance(key, str) or not key:
                self.problem(key_node, where, f"has a {noun} that is not a plain name")
            elif key in entries:
                self.problem(key_node, where, f"duplicate {noun} {key!r}")
            elif keys is not None and key not in keys:
                hint = self.key_hint(key, value_node, keys) if self.key_hint else None
                why = f": {hint}" if hint else f" (allowed: {', '.join(keys)})"
                self.problem(key_node, where, f"unknown {noun} {key!r}{why}")
            else:
                entries[key] = value_node
                self.key_of[id(value_node)] = key_node
        for key, required in (keys or {}).items():
            if required and key not in entries:
                self.problem(node, where, f"needs {key!r}")
        return entries

    def scalar(self, node: Node, where: str, expected: type, noun: str) -> Any:
        value = value_of(node)
        if not isinstance(node, ScalarNode) or type(value) is not expected:
            self.problem(node, where, f"must be {noun}, not {kind_of(node)}")
            return None
        return value

    def string(self, node: Node | None, where: str, default: str) -> str:
        if node is None:
            return default
        value = self.scalar(node, where, str, "a string")
        return default if value is None else value

    def boolean(self, node: Node | None, where: str, default: bool) -> bool:
        if node is None:
            return default
        value = self.scalar(node, where, bool, "true or false")
        return default if value is None else value

    def strings(self, node: Node, where: str) -> list[str]:
        """A list of strings; a single string counts as a list of one."""
        items = node.value if isinstance(node, SequenceNode) else [node]
        values = [self.scalar(item, where, str, "a string or a list of strings") for item in items]
        if isinstance(node, SequenceNode) and not items:
            self.problem(node, where, "is an empty list")
        return [value for value in values if value is not None]

    def duration(self, node: Node | None, where: str, default: int) -> int:
        if node is None:
            return default
        value = value_of(node)
        seconds = seconds_of(value)
        if seconds is None:
            self.problem(node, where, f"{value!r} is not a duration (like 90s, 20m, 1h, 1h30m)")
            return default
        return seconds


def is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def value_of(node: Node) -> Any:
    """A scalar node's value; yaml.MarkedYAMLError, with the node's line, if its tag cannot
    make it (!!int abc, a 5,000-digit number, an unknown tag)."""
    if not isinstance(node, ScalarNode):
        return None
    try:
        return yaml.SafeLoader("").construct_object(node)
    except (ValueError, KeyError, TypeError, OverflowError) as error:
        text = node.value if len(node.value) <= 40 else node.value[:40] + "..."
        tag = node.tag.replace("tag:yaml.org,2002:", "!!")
        why = "" if isinstance(error, KeyError) else f": {error}"
        message = f"{text!r} is not a valid {tag}{why}"
        raise ConstructorError(None, None, message, node.start_mark) from None


KINDS: dict[type, str] = {str: "a string", int: "a number", float: "a number", bool: "a boolean"}


def kind_of(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    value = value_of(node)
    return "empty" if value is None else KINDS.get(type(value), type(value).__name__)


def seconds_of(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value if value > 0 else None
    if not isinstance(value, str):
        return None
    found = DURATION.fullmatch(value.strip())
    if not found or not any(found.groups()):
        return None
    hours, minutes, seconds = (int(part or 0) for part in found.groups())
    total = hours * 3600 + minutes * 60 + seconds
    return total or None


def node_under(mapping: Node, key: str) -> Node:
    """The node under `key` in a mapping node, for a problem's line; else the mapping."""
    for key_node, value_node in getattr(mapping, "value", []):
        if isinstance(key_node, ScalarNode) and key_node.value == key:
            return value_node
    return mapping
