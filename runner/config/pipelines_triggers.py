"""pipelines.yaml's triggers: a pipeline's on: with its push and pull_request events and
their filters (branches, tags, paths, deletions, pull request types), globs compiled, and
`manual` with its inputs (read by pipelines_deploy).

As on GitHub, `on:` may also be one event name or a list of them, each with no filter, and
a filter list and its `_ignore` list exclude each other."""

from dataclasses import dataclass

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from runner.config.globs import BadGlob, Glob, compile_glob, never_matches
from runner.config.pipelines import (
    DEFAULT_PULL_REQUEST_TYPES,
    ManualTrigger,
    PullRequestTrigger,
    PushTrigger,
)
from runner.config.pipelines_deploy import DeployReader
from runner.config.yaml_nodes import NodeReader, is_null

PULL_REQUEST_TYPES = frozenset({
    "assigned", "unassigned", "labeled", "unlabeled", "opened", "edited", "closed",
    "reopened", "synchronize", "converted_to_draft", "ready_for_review", "locked",
    "unlocked", "review_requested", "review_request_removed", "auto_merge_enabled",
    "auto_merge_disabled", "enqueued", "dequeued", "milestoned", "demilestoned",
})  # fmt: skip
PUSH_KEYS = {
    "branches": False, "branches_ignore": False, "tags": False, "tags_ignore": False,
    "deletions": False, "paths": False, "paths_ignore": False,
}  # fmt: skip
PULL_REQUEST_KEYS = {"types": False, "branches": False, "branches_ignore": False}
EVENT_KEYS = {"push": False, "pull_request": False, "manual": False}
# GitHub filters pull requests by path too, but their payload lists no files.
PATH_KEYS = ("paths", "paths_ignore")
# Lists that exclude each other in one trigger, as on GitHub: a '!' pattern in the first
# does what the second would.
EXCLUSIVE_LISTS = (("branches", "branches_ignore"), ("tags", "tags_ignore"), PATH_KEYS)
NULL_TAG = "tag:yaml.org,2002:null"


@dataclass(frozen=True)
class Triggers:
    push: PushTrigger | None = None
    pull_request: PullRequestTrigger | None = None
    manual: ManualTrigger | None = None


class TriggerReader:
    """Reads a pipeline's on: mapping into its push, pull_request and manual triggers."""

    def __init__(self, nodes: NodeReader, deploy: DeployReader) -> None:
        self.nodes = nodes
        self.deploy = deploy

    def triggers(self, node: Node | None, where: str) -> Triggers:
        if node is not None and is_null(node):
            self.nodes.problem(node, where, NO_EVENT)
            return Triggers()
        named = _as_events(node)
        events = self.nodes.mapping(named, where, EVENT_KEYS, "event")
        if events is None:
            return Triggers()
        if not named.value:  # not when each event it names is unknown: that was said
            self.nodes.problem(node, where, NO_EVENT)
        push = pull_request = manual = None
        if "push" in events:
            push = self.push(events["push"], f"{where}.push")
        if "pull_request" in events:
            pull_request = self.pull_request(events["pull_request"], f"{where}.pull_request")
        if "manual" in events:
            manual = self.deploy.manual(events["manual"], f"{where}.manual")
        return Triggers(push, pull_request, manual)

    def push(self, node: Node, where: str) -> PushTrigger:
        if is_null(node):
            return PushTrigger()
        fields = self.nodes.mapping(node, where, PUSH_KEYS) or {}
        self.check_exclusive_lists(node, fields, where)
        return PushTrigger(
            branches=self.globs(fields.get("branches"), f"{where}.branches"),
            branches_ignore=self.globs(fields.get("branches_ignore"), f"{where}.branches_ignore")
            or (),
            tags=self.globs(fields.get("tags"), f"{where}.tags"),
            tags_ignore=self.globs(fields.get("tags_ignore"), f"{where}.tags_ignore") or (),
            deletions=self.nodes.boolean(fields.get("deletions"), f"{where}.deletions", False),
            paths=self.globs(fields.get("paths"), f"{where}.paths"),
            paths_ignore=self.globs(fields.get("paths_ignore"), f"{where}.paths_ignore") or (),
        )

    def pull_request(self, node: Node, where: str) -> PullRequestTrigger:
        if is_null(node):
            return PullRequestTrigger()
        fields = self.nodes.mapping(
            self.without_path_filters(node, where), where, PULL_REQUEST_KEYS
        )
        fields = fields or {}
        self.check_exclusive_lists(node, fields, where)
        types = DEFAULT_PULL_REQUEST_TYPES
        if "types" in fields:
            listed = self.nodes.strings(fields["types"], f"{where}.types")
            for unknown in sorted(set(listed) - PULL_REQUEST_TYPES):
                self.nodes.problem(fields["types"], f"{where}.types", f"unknown type {unknown!r}")
            types = frozenset(listed)
        return PullRequestTrigger(
            types=types,
            branches=self.globs(fields.get("branches"), f"{where}.branches"),
            branches_ignore=self.globs(fields.get("branches_ignore"), f"{where}.branches_ignore")
            or (),
        )

    def check_exclusive_lists(self, node: Node, fields: dict[str, Node], where: str) -> None:
        for include, ignore in EXCLUSIVE_LISTS:
            if include in fields and ignore in fields:
                message = (
                    f"has both {include} and {ignore}; use one "
                    f"(a '!' pattern in {include} excludes)"
                )
                self.nodes.problem(node, where, message)

    def without_path_filters(self, node: Node, where: str) -> Node:
        """The pull_request mapping without paths and paths_ignore, each reported with why."""
        if not isinstance(node, MappingNode):
            return node
        kept = []
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, ScalarNode) else None
            if isinstance(key, str) and key.replace("-", "_") in PATH_KEYS:
                message = (
                    f"cannot filter by {key}: a pull_request delivery does not list "
                    "the changed files (filter the push instead)"
                )
                self.nodes.problem(key_node, where, message)
            else:
                kept.append((key_node, value_node))
        if len(kept) == len(node.value):
            return node
        return MappingNode(node.tag, kept, node.start_mark, node.end_mark, node.flow_style)

    def globs(self, node: Node | None, where: str) -> tuple[Glob, ...] | None:
        if node is None:
            return None
        globs = []
        for pattern in self.nodes.strings(node, where):
            try:
                globs.append(compile_glob(pattern))
            except BadGlob as error:
                self.nodes.problem(node, where, f"bad pattern {pattern!r}: {error}")
        if never_matches(tuple(globs)):
            self.nodes.problem(node, where, ONLY_NEGATIONS)
        return tuple(globs)


NO_EVENT = "names no event (use push, pull_request and/or manual)"
ONLY_NEGATIONS = (
    "lists only '!' patterns, so it can never match: a '!' pattern only takes back what a "
    "pattern before it matched (start with '**' for everything else)"
)


def _as_events(node: Node | None) -> Node | None:
    """`on: push` and `on: [push, pull_request]` as the mapping they stand for on GitHub:
    each event named, with no filter."""
    if isinstance(node, ScalarNode):
        names = [node]
    elif isinstance(node, SequenceNode):
        names = node.value
    else:
        return node
    entries = [(name, ScalarNode(NULL_TAG, "", name.start_mark, name.end_mark)) for name in names]
    return MappingNode("tag:yaml.org,2002:map", entries, node.start_mark, node.end_mark)
