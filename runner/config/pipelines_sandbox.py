"""pipelines.yaml's sandbox: key: what a pipeline's steps may reach beyond their run's
folder, or `sandbox: off`. Paths are checked against this machine as the file is read."""

from collections.abc import Callable
from pathlib import Path

from yaml.nodes import Node, ScalarNode

from runner.config.pipelines import SANDBOX_OFF, SANDBOXED, Sandbox
from runner.config.private_paths import hookrunner_paths, inside_any
from runner.config.yaml_nodes import NodeReader, value_of

SANDBOX_KEYS = {"writable": False, "readonly": False, "network": False}
# YAML 1.1 reads a bare `off` as false: either spelling turns the sandbox off.
OFF_WORDS = (False, "off")


class SandboxReader:
    """Reads `sandbox:` and `workdir:`, refusing paths inside hookrunner's own folders
    (`private` gives them; read once, on first use)."""

    def __init__(
        self, nodes: NodeReader, private: Callable[[], tuple[Path, ...]] = hookrunner_paths
    ) -> None:
        self.nodes = nodes
        self.private = private
        self._private: tuple[Path, ...] | None = None

    def sandbox(self, node: Node | None, where: str) -> Sandbox:
        if node is None:
            return SANDBOXED
        if isinstance(node, ScalarNode):
            value = value_of(node)
            if value in OFF_WORDS:
                return SANDBOX_OFF
            if value is not True and value != "on":
                self.nodes.problem(node, where, "must be off, on, or a mapping of what it allows")
            return SANDBOXED
        fields = self.nodes.mapping(node, where, SANDBOX_KEYS) or {}
        return Sandbox(
            writable=self.paths(fields.get("writable"), f"{where}.writable"),
            readonly=self.paths(fields.get("readonly"), f"{where}.readonly"),
            network=self.nodes.boolean(fields.get("network"), f"{where}.network", True),
        )

    def paths(self, node: Node | None, where: str) -> tuple[str, ...]:
        if node is None:
            return ()
        return tuple(
            path for path in self.nodes.strings(node, where) if self.check_path(node, where, path)
        )

    def check_path(self, node: Node, where: str, path: str) -> bool:
        """Whether `path` may be shown to a step: absolute, existing, none of hookrunner's."""
        if not path.startswith("/"):
            self.nodes.problem(node, where, f"{path!r} must be an absolute path")
            return False
        if not Path(path).exists():
            self.nodes.problem(node, where, f"{path} does not exist on this machine")
            return False
        return self.outside_hookrunner(node, where, path)

    def outside_hookrunner(self, node: Node, where: str, path: str) -> bool:
        if (folder := inside_any(Path(path), self.private_paths())) is None:
            return True
        self.nodes.problem(node, where, f"{path} is inside {folder}, which is hookrunner's own")
        return False

    def check_workdir(self, node: Node, where: str, workdir: str) -> None:
        """A workdir is writable to its steps: never one of hookrunner's folders."""
        self.outside_hookrunner(node, where, workdir)

    def private_paths(self) -> tuple[Path, ...]:
        if self._private is None:
            self._private = self.private()
        return self._private
