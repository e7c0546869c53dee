"""pipelines.yaml's triggers: a pipeline's on: with its push and pull_request events and
their filters (branches, tags, paths, deletions, pull request types), globs compiled."""

from yaml.nodes import MappingNode, Node, ScalarNode

from runner.config.globs import BadGlob, Glob, compile_glob
from runner.config.pipelines import DEFAULT_PULL_REQUEST_TYPES, PullRequestTrigger, PushTrigger
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
# GitHub filters pull requests by path too, but their payload lists no files.
PATH_KEYS = ("paths", "paths_ignore")


class TriggerReader:
    """Reads a pipeline's on: mapping into its push and pull_request triggers."""

    def __init__(self, nodes: NodeReader) -> None:
        self.nodes = nodes

    def triggers(
        self, node: Node | None, where: str
    ) -> tuple[PushTrigger | None, PullRequestTrigger | None]:
        events = self.nodes.mapping(node, where, {"push": False, "pull_request": False}, "event")
        if events is None:
            return None, None
        if not events:
            self.nodes.problem(node, where, "names no event (use push and/or pull_request)")
        push = pull_request = None
        if "push" in events:
            push = self.push(events["push"], f"{where}.push")
        if "pull_request" in events:
            pull_request = self.pull_request(events["pull_request"], f"{where}.pull_request")
        return push, pull_request

    def push(self, node: Node, where: str) -> PushTrigger:
        if is_null(node):
            return PushTrigger()
        fields = self.nodes.mapping(node, where, PUSH_KEYS) or {}
        if "paths" in fields and "paths_ignore" in fields:
            message = "has both paths and paths_ignore; use one (a '!' pattern in paths excludes)"
            self.nodes.problem(node, where, message)
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

    def without_path_filters(self, node: Node, where: str) -> Node:
        """The pull_request mapping without paths and paths_ignore, each reported with why."""
        if not isinstance(node, MappingNode):
            return node
        kept = []
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode) and key_node.value in PATH_KEYS:
                message = (
                    f"cannot filter by {key_node.value}: a pull_request delivery does not list "
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
        return tuple(globs)
