"""How pipelines.yaml's repository entries combine, checked once every entry is read.

Every entry covering a repository adds its pipelines to it (runner.config.repositories'
Repository), so across the entries that can cover one repository:

- a pipeline name is defined once: two entries defining it would both start it;
- `needs` names a pipeline every repository of the entry has: one of the entry's own, or
  of an entry covering every repository it covers;
- no pipeline ends up needing itself;
- a pipeline reporting commit statuses has a token_env wherever it runs: from its own
  entry, or from one covering every repository it covers.

Whether two patterns share a repository, or one covers the other's, is
runner.config.repository_patterns'.
"""

from dataclasses import dataclass

from yaml.nodes import Node

from runner.config.pipelines_outbound import OutboundReader
from runner.config.repositories import RepositoryEntry
from runner.config.repository_patterns import common_repository, covers_every, is_exact
from runner.config.yaml_nodes import NodeReader, node_under


@dataclass(frozen=True)
class ReadEntry:
    """A repository entry as read, with the nodes its problems point at."""

    entry: RepositoryEntry
    fields: dict[str, Node]
    pipeline_nodes: dict[str, Node]

    @property
    def where(self) -> str:
        return f"repositories.{self.entry.pattern}"


class EntriesChecker:
    def __init__(self, nodes: NodeReader, outbound: OutboundReader) -> None:
        self.nodes = nodes
        self.outbound = outbound

    def check(self, read: list[ReadEntry]) -> None:
        self.check_names(read)
        for item in read:
            entry = item.entry
            needs = any(pipeline.needs for pipeline in entry.pipelines)
            may_report = entry.report_status or any(
                pipeline.report_status for pipeline in entry.pipelines
            )
            # Only then are the entries covering it needed: finding them takes some work.
            if needs or (may_report and not entry.token_env):
                covering = [
                    other
                    for other in read
                    if other is item or covers_every(other.entry.pattern, entry.pattern)
                ]
                self.check_needs(item, covering, read)
                self.check_token_env(item, covering)

    def check_names(self, read: list[ReadEntry]) -> None:
        """A name defined by two entries that share a repository is reported at the later,
        naming the first. Exact names are compared with the same name only: a file
        listing many repositories is read in time proportional to them."""
        defining: dict[str, list[ReadEntry]] = {}
        for item in read:
            for pipeline in item.entry.pipelines:
                defining.setdefault(pipeline.name, []).append(item)
        for name, items in defining.items():
            first_exact: dict[str, ReadEntry] = {}
            wildcards: list[ReadEntry] = []
            for item in items:
                pattern = item.entry.pattern.lower()
                if is_exact(pattern):
                    same = [first_exact[pattern]] if pattern in first_exact else []
                    self.check_defined_once(name, item, [*same, *wildcards])
                    first_exact.setdefault(pattern, item)
                else:
                    self.check_defined_once(name, item, [*first_exact.values(), *wildcards])
                    wildcards.append(item)

    def check_defined_once(self, name: str, item: ReadEntry, earlier: list[ReadEntry]) -> None:
        for other in sorted(earlier, key=lambda other: other.entry.line):
            shared = common_repository(other.entry.pattern, item.entry.pattern)
            if shared is not None:
                line = self.nodes.line_of(other.pipeline_nodes[name])
                message = (
                    f"is also a pipeline of {other.entry.pattern} (line {line}), and both "
                    f"entries cover {shared}: the pipelines a repository gets need names of "
                    "their own"
                )
                self.nodes.problem(
                    item.pipeline_nodes[name], f"{item.where}.pipelines.{name}", message
                )
                return

    def check_needs(
        self, item: ReadEntry, covering: list[ReadEntry], read: list[ReadEntry]
    ) -> None:
        """Each name in `needs` is a pipeline every repository of the entry has, and no
        pipeline ends up needing itself (it would wait forever)."""
        pipelines = [pipeline for other in covering for pipeline in other.entry.pipelines]
        needs = {pipeline.name: pipeline.needs for pipeline in pipelines}
        for pipeline in item.entry.pipelines:
            node = node_under(item.pipeline_nodes[pipeline.name], "needs")
            place = f"{item.where}.pipelines.{pipeline.name}.needs"
            for name in pipeline.needs:
                if name not in needs:
                    self.nodes.problem(node, place, self.unknown_need(name, item, read))
            if _needs_itself(pipeline.name, needs):
                self.nodes.problem(node, place, "goes round in a circle back to this pipeline")

    def unknown_need(self, name: str, item: ReadEntry, read: list[ReadEntry]) -> str:
        for other in read:
            defines = any(pipeline.name == name for pipeline in other.entry.pipelines)
            if defines and common_repository(other.entry.pattern, item.entry.pattern):
                return (
                    f"names {name!r}, a pipeline of {other.entry.pattern}, which does not "
                    f"cover every repository {item.entry.pattern} covers"
                )
        return f"names {name!r}, which is not a pipeline here"

    def check_token_env(self, item: ReadEntry, covering: list[ReadEntry]) -> None:
        if not any(other.entry.token_env for other in covering):
            self.outbound.check_token_env(
                item.entry, item.pipeline_nodes, item.fields.get("report_status"), item.where
            )


def _needs_itself(name: str, needs: dict[str, tuple[str, ...]]) -> bool:
    seen, todo = set(), list(needs.get(name, ()))
    while todo:
        current = todo.pop()
        if current == name:
            return True
        if current not in seen:
            seen.add(current)
            todo.extend(needs.get(current, ()))
    return False
