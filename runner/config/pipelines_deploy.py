"""pipelines.yaml's deployment keys: a pipeline's `environment` (a name, or a name and
the url where it can be seen), `approval: required` with its `approvers` and `expires`,
and the inputs of `on: manual`."""

import re

from yaml.nodes import Node, ScalarNode

from runner.config.pipelines import (
    DEFAULT_APPROVAL_EXPIRES,
    Approval,
    Environment,
    Input,
    ManualTrigger,
)
from runner.config.yaml_nodes import NodeReader, is_null, value_of

ENVIRONMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.-]{0,99}")
ENVIRONMENT_KEYS = {"name": True, "url": False}
MANUAL_KEYS = {"inputs": False}
INPUT_KEYS = {"description": False, "default": False, "choices": False, "required": False}
# An input reaches a step as INPUT_<NAME>: a name a shell variable can have.
INPUT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


class DeployReader:
    """Reads environment:, approval: (with approvers: and expires:) and on.manual."""

    def __init__(self, nodes: NodeReader) -> None:
        self.nodes = nodes

    def environment(self, node: Node | None, where: str) -> Environment | None:
        if node is None:
            return None
        if isinstance(node, ScalarNode):
            name, url = self.nodes.string(node, where, ""), ""
        else:
            fields = self.nodes.mapping(node, where, ENVIRONMENT_KEYS) or {}
            name = self.nodes.string(fields.get("name"), f"{where}.name", "")
            url = self.nodes.string(fields.get("url"), f"{where}.url", "")
            if url and not url.startswith(("https://", "http://")):
                self.nodes.problem(fields["url"], f"{where}.url", "must start with https://")
        if not ENVIRONMENT_NAME.fullmatch(name):
            message = f"{name!r} is not an environment name (letters, digits, space _ . -)"
            self.nodes.problem(node, where, message)
            return None
        return Environment(name, url)

    def approval(self, fields: dict[str, Node], where: str) -> Approval | None:
        """`approval: required`, and what only it allows: `approvers` and `expires`."""
        node = fields.get("approval")
        if node is not None and value_of(node) != "required":
            self.nodes.problem(node, f"{where}.approval", "must be required (or left out)")
            return None
        if node is None:
            for key in ("approvers", "expires"):
                if key in fields:
                    self.nodes.problem(fields[key], f"{where}.{key}", "needs approval: required")
            return None
        approvers = self.nodes.string(fields.get("approvers"), f"{where}.approvers", "")
        expires = self.nodes.duration(
            fields.get("expires"), f"{where}.expires", DEFAULT_APPROVAL_EXPIRES
        )
        return Approval(approvers, expires)

    def manual(self, node: Node, where: str) -> ManualTrigger:
        if is_null(node):
            return ManualTrigger()
        fields = self.nodes.mapping(node, where, MANUAL_KEYS) or {}
        named = self.nodes.mapping(fields.get("inputs"), f"{where}.inputs", None, "input") or {}
        return ManualTrigger(
            tuple(
                self.input(name, value, f"{where}.inputs.{name}") for name, value in named.items()
            )
        )

    def input(self, name: str, node: Node, where: str) -> Input:
        if not INPUT_NAME.fullmatch(name):
            self.nodes.problem(node, where, "is not a name for INPUT_<NAME> (letters, digits, _)")
        if is_null(node):
            return Input(name)
        fields = self.nodes.mapping(node, where, INPUT_KEYS) or {}
        choices = ()
        if "choices" in fields:
            choices = tuple(self.nodes.strings(fields["choices"], f"{where}.choices"))
        default = self.default(fields, where)
        if default is not None and choices and default not in choices:
            self.nodes.problem(fields["default"], f"{where}.default", "is not one of choices")
        if default is None and not self.nodes.boolean(
            fields.get("required"), f"{where}.required", True
        ):
            default = ""
        description = self.nodes.string(fields.get("description"), f"{where}.description", "")
        return Input(name, description, default, choices)

    def default(self, fields: dict[str, Node], where: str) -> str | None:
        """The default as a string: `default: 3` and `default: true` mean what they say."""
        node = fields.get("default")
        if node is None:
            return None
        value = value_of(node)
        if not isinstance(node, ScalarNode) or value is None:
            self.nodes.problem(node, f"{where}.default", "must be a string")
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value) if isinstance(value, int | float) else value
