"""pipelines.yaml's environment variables: env: mappings a step gets, and the names
(secret_env, token_env, secrets) that must be set in hookrunner's own environment."""

import re
from collections.abc import Mapping

from yaml.nodes import Node

from runner.config.yaml_nodes import NodeReader, value_of

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Names hookrunner sets for every step; a pipeline may not redefine them.
RESERVED_ENV = re.compile(r"(GITHUB_.*|HOOKRUNNER_.*|PATH|HOME)")


class EnvReader:
    """Reads env: mappings and checks variable names against hookrunner's environment: a
    variable that is not set there is a problem, or with `warn_of_unset` a warning (for
    what reads no secret's value, such as manage.py match)."""

    def __init__(
        self, nodes: NodeReader, environ: Mapping[str, str], warn_of_unset: bool = False
    ) -> None:
        self.nodes = nodes
        self.environ = environ
        self.report_unset = nodes.warning if warn_of_unset else nodes.problem

    def env(self, node: Node | None, where: str) -> dict[str, str]:
        fields = self.nodes.mapping(node, where, None, "variable") or {}
        env = {}
        for name, value_node in fields.items():
            if not ENV_NAME.fullmatch(name) or RESERVED_ENV.fullmatch(name):
                self.nodes.problem(value_node, where, f"{name!r} cannot be set by a pipeline")
                continue
            value = value_of(value_node)
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                self.nodes.problem(value_node, f"{where}.{name}", "must be a string (quote it)")
                continue
            env[name] = str(value)
        return env

    def env_reference(self, node: Node, where: str) -> str:
        name = self.nodes.string(node, where, "")
        if name:
            self.check_variable_is_set(node, name, where)
        return name

    def secrets(self, node: Node | None, where: str) -> tuple[str, ...]:
        if node is None:
            return ()
        names = tuple(self.nodes.strings(node, where))
        for name in names:
            self.check_variable_is_set(node, name, where)
        return names

    def check_variable_is_set(self, node: Node, name: str, where: str) -> None:
        if not ENV_NAME.fullmatch(name):
            self.nodes.problem(node, where, f"{name!r} is not an environment variable name")
        elif not self.environ.get(name):
            self.report_unset(
                node, where, f"names {name}, which is not set in hookrunner's environment"
            )
