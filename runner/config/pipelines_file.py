"""pipelines.yaml's schema: read into a Config, every problem reported at once with its
file and line (through runner.config.yaml_nodes).

Here: the file, its repository entries, their pipelines and steps. The readers it holds
read the rest: pipelines_triggers (on:), pipelines_env (env: and the variables
named for secrets and tokens), pipelines_outbound (report_status and notify:),
pipelines_sandbox (sandbox: and where workdir may be), pipelines_deploy (environment:,
approval: and the inputs of on: manual) and pipelines_entries (how entries
covering one repository combine). Keys spelt as in GitHub Actions are answered by
pipelines_actions. Problems are listed in line order.
"""

import re
import shlex
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import yaml
from yaml.nodes import Node, ScalarNode, SequenceNode

from runner.config import yaml_limits
from runner.config.pipelines import DEFAULT_SHELL, DEFAULT_TIMEOUT, Concurrency, Pipeline, Step
from runner.config.pipelines_actions import actions_key_hint
from runner.config.pipelines_deploy import DeployReader
from runner.config.pipelines_entries import EntriesChecker, ReadEntry
from runner.config.pipelines_env import EnvReader
from runner.config.pipelines_outbound import OutboundReader
from runner.config.pipelines_sandbox import SandboxReader
from runner.config.pipelines_triggers import TriggerReader
from runner.config.repositories import Config, RepositoryEntry
from runner.config.yaml_nodes import NodeReader, Problem, kind_of

REPOSITORY_PATTERN = re.compile(r"[A-Za-z0-9_.*?\[\]!-]+/[A-Za-z0-9_.*?\[\]!-]+")
# owner/name has at most 39 + 1 + 100 characters; a pattern may add some wildcards.
MAX_PATTERN_LENGTH = 200
QUEUE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")

REPOSITORY_KEYS = {
    "pipelines": True, "secret_env": False, "clone_url": False, "token_env": False,
    "report_status": False,
}  # fmt: skip
PIPELINE_KEYS = {
    "on": True, "steps": True, "env": False, "timeout": False, "workdir": False,
    "checkout": False, "keep_workspace": False, "shell": False, "secrets": False,
    "runs_on": False, "concurrency": False, "forks": False, "needs": False,
    "report_status": False, "notify": False, "sandbox": False, "environment": False,
    "approval": False, "approvers": False, "expires": False,
}  # fmt: skip
STEP_KEYS = {"name": True, "run": True, "timeout": False, "env": False, "shell": False}
CONCURRENCY_KEYS = {"group": True, "cancel_in_progress": False}


class PipelinesError(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(problem) for problem in problems))
        self.problems = problems


def load_pipelines(path: Path, environ: Mapping[str, str], warn_of_unset: bool = False) -> Config:
    """The Config in `path`; PipelinesError lists every problem found in it. The work is
    bounded (runner.config.yaml_limits): a file past a limit is one problem naming it.

    A variable named for a secret or a token that `environ` does not set is a problem,
    or with `warn_of_unset` one of the Config's warnings: for what reads no secret's value
    (manage.py match), never for what serves deliveries or runs pipelines."""
    try:
        text = yaml_limits.read_text(path)
    except yaml_limits.LimitExceeded as error:
        raise PipelinesError([Problem(str(path), error.line, "file", error.message)]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise PipelinesError([Problem(str(path), 0, "file", f"cannot be read: {error}")]) from None
    return parse_pipelines(text, str(path), environ, warn_of_unset)


def parse_pipelines(
    text: str, source: str, environ: Mapping[str, str], warn_of_unset: bool = False
) -> Config:
    try:
        root = yaml_limits.compose(text)
    except yaml_limits.LimitExceeded as error:
        raise PipelinesError([Problem(source, error.line, "file", error.message)]) from None
    except yaml.MarkedYAMLError as error:
        problem = f"{error.problem or error.context} (YAML syntax)"
        raise PipelinesError([Problem(source, _line_of(error), "file", problem)]) from None
    except RecursionError:
        raise PipelinesError([Problem(source, 0, "file", _TOO_DEEP)]) from None
    reader = _Reader(source, environ, warn_of_unset)
    try:
        config = reader.config(root)
    except yaml.MarkedYAMLError as error:
        # A value its tag cannot make (!!int abc, an unknown tag): reading stops there.
        problem = str(error.problem or error.context)
        reader.nodes.problems.append(Problem(source, _line_of(error), "file", problem))
    except RecursionError:
        reader.nodes.problems.append(Problem(source, 0, "file", _TOO_DEEP))
    if reader.nodes.problems:
        raise PipelinesError(_in_line_order(reader.nodes.problems))
    return replace(config, warnings=tuple(_in_line_order(reader.nodes.warnings)))


_TOO_DEEP = "nests too deeply to be read"


def _pattern_problem(pattern: str) -> str | None:
    if not REPOSITORY_PATTERN.fullmatch(pattern):
        return "is not owner/name (wildcards * ? [] allowed)"
    if len(pattern) > MAX_PATTERN_LENGTH:
        return f"is longer than {MAX_PATTERN_LENGTH} characters, which no owner/name needs"
    return None


def _in_line_order(problems: list[Problem]) -> list[Problem]:
    """Problems are found in the order the schema is read, not always the file's order."""
    return sorted(problems, key=lambda problem: problem.line)


def _line_of(error: yaml.MarkedYAMLError) -> int:
    mark = error.problem_mark or error.context_mark
    return mark.line + 1 if mark else 0


class _Reader:
    """pipelines.yaml's schema, read node by node: the file, its repository entries, their
    pipelines and steps here; triggers, env and what is sent out by the readers it holds,
    all reporting to one list of problems."""

    def __init__(self, source: str, environ: Mapping[str, str], warn_of_unset: bool) -> None:
        self.nodes = NodeReader(source, actions_key_hint)
        self.env_reader = EnvReader(self.nodes, environ, warn_of_unset)
        self.deploy = DeployReader(self.nodes)
        self.triggers = TriggerReader(self.nodes, self.deploy)
        self.outbound = OutboundReader(self.nodes, self.env_reader)
        self.sandbox = SandboxReader(self.nodes)

    def config(self, root: Node | None) -> Config:
        if root is None:
            self.nodes.problem(None, "file", "is empty; it needs a repositories: mapping")
            return Config((), self.nodes.source)
        top = self.nodes.mapping(root, "file", {"repositories": True})
        if top is None or "repositories" not in top:
            return Config((), self.nodes.source)
        entries = self.nodes.mapping(top["repositories"], "repositories", None) or {}
        read = []
        for pattern, node in entries.items():
            entry = self.repository(pattern, node, f"repositories.{pattern}")
            if entry is not None:
                read.append(entry)
        if not entries:
            self.nodes.problem(top["repositories"], "repositories", "lists no repository")
        # A pattern refused is not compared with others: its problem is said.
        comparable = [entry for entry in read if not _pattern_problem(entry.entry.pattern)]
        EntriesChecker(self.nodes, self.outbound).check(comparable)
        return Config(tuple(entry.entry for entry in read), self.nodes.source)

    def repository(self, pattern: str, node: Node, where: str) -> ReadEntry | None:
        if problem := _pattern_problem(pattern):
            self.nodes.problem(node, where, problem)
        fields = self.nodes.mapping(node, where, REPOSITORY_KEYS)
        if fields is None:
            return None
        secret_env, secret = "", ""
        if "secret_env" in fields:
            secret_env = self.env_reader.env_reference(fields["secret_env"], f"{where}.secret_env")
            secret = self.env_reader.environ.get(secret_env, "")
        token_env = ""
        if "token_env" in fields:
            token_env = self.env_reader.env_reference(fields["token_env"], f"{where}.token_env")
        pipelines = []
        named = self.nodes.mapping(fields.get("pipelines"), f"{where}.pipelines", None) or {}
        for name, pipeline_node in named.items():
            pipeline = self.pipeline(name, pipeline_node, f"{where}.pipelines.{name}")
            if pipeline is not None:
                pipelines.append(pipeline)
        if "pipelines" in fields and not named:
            self.nodes.problem(fields["pipelines"], f"{where}.pipelines", "lists no pipeline")
        entry = RepositoryEntry(
            pattern,
            tuple(pipelines),
            secret_env,
            secret,
            token_env=token_env,
            report_status=self.own_report_status(fields, where),
            clone_url=self.nodes.string(fields.get("clone_url"), f"{where}.clone_url", ""),
            line=self.nodes.line_of(node),
        )
        return ReadEntry(entry, fields, named)

    def own_report_status(self, fields: dict[str, Node], where: str) -> bool | None:
        """report_status as a repository entry or a pipeline sets it; None if left out."""
        if "report_status" not in fields:
            return None
        return self.nodes.boolean(fields["report_status"], f"{where}.report_status", False)

    def pipeline(self, name: str, node: Node, where: str) -> Pipeline | None:
        fields = self.nodes.mapping(node, where, PIPELINE_KEYS)
        if fields is None:
            return None
        triggers = self.triggers.triggers(fields.get("on"), f"{where}.on")
        environment = self.deploy.environment(fields.get("environment"), f"{where}.environment")
        timeout = self.nodes.duration(fields.get("timeout"), f"{where}.timeout", DEFAULT_TIMEOUT)
        workdir = self.nodes.string(fields.get("workdir"), f"{where}.workdir", "")
        checkout = self.nodes.boolean(fields.get("checkout"), f"{where}.checkout", False)
        if workdir and checkout:
            self.nodes.problem(node, where, "has both workdir and checkout: true; choose one")
        if workdir and not workdir.startswith("/"):
            self.nodes.problem(fields["workdir"], f"{where}.workdir", "must be an absolute path")
        elif workdir:
            self.sandbox.check_workdir(fields["workdir"], f"{where}.workdir", workdir)
        keep_workspace = self.nodes.boolean(
            fields.get("keep_workspace"), f"{where}.keep_workspace", False
        )
        if keep_workspace and not checkout:
            self.nodes.problem(
                fields["keep_workspace"], f"{where}.keep_workspace", "needs checkout: true"
            )
        shell = self.shell(fields.get("shell"), f"{where}.shell", DEFAULT_SHELL)
        return Pipeline(
            name=name,
            steps=self.steps(fields.get("steps"), f"{where}.steps", timeout, shell),
            push=triggers.push,
            pull_request=triggers.pull_request,
            manual=triggers.manual,
            environment=environment,
            approval=self.deploy.approval(fields, where),
            env=self.env_reader.env(fields.get("env"), f"{where}.env"),
            timeout=timeout,
            workdir=workdir,
            checkout=checkout,
            keep_workspace=keep_workspace,
            secrets=self.env_reader.secrets(fields.get("secrets"), f"{where}.secrets"),
            runs_on=self.queue(fields.get("runs_on"), f"{where}.runs_on"),
            concurrency=self.concurrency(fields.get("concurrency"), f"{where}.concurrency"),
            forks=self.nodes.boolean(fields.get("forks"), f"{where}.forks", False),
            needs=tuple(self.nodes.strings(fields["needs"], f"{where}.needs"))
            if "needs" in fields
            else (),
            report_status=self.own_report_status(fields, where),
            notify=self.outbound.notify(fields.get("notify"), f"{where}.notify"),
            sandbox=self.sandbox.sandbox(fields.get("sandbox"), f"{where}.sandbox"),
        )

    def steps(
        self, node: Node | None, where: str, pipeline_timeout: int, shell: tuple[str, ...]
    ) -> tuple[Step, ...]:
        if node is None:
            return ()
        if not isinstance(node, SequenceNode):
            self.nodes.problem(node, where, f"must be a list of steps, not {kind_of(node)}")
            return ()
        if not node.value:
            self.nodes.problem(node, where, "is empty; a pipeline needs at least one step")
        steps, seen = [], set()
        for index, step_node in enumerate(node.value):
            step = self.step(step_node, f"{where}[{index}]", pipeline_timeout, shell)
            if step is None:
                continue
            if step.name in seen:
                self.nodes.problem(
                    step_node, f"{where}[{index}]", f"duplicate step name {step.name!r}"
                )
            seen.add(step.name)
            steps.append(step)
        return tuple(steps)

    def step(
        self, node: Node, where: str, pipeline_timeout: int, shell: tuple[str, ...]
    ) -> Step | None:
        fields = self.nodes.mapping(node, where, STEP_KEYS)
        if fields is None or not {"name", "run"} <= fields.keys():
            return None
        run = self.nodes.string(fields["run"], f"{where}.run", "")
        if fields["run"] is not None and not run.strip():
            self.nodes.problem(fields["run"], f"{where}.run", "is empty")
        timeout = self.nodes.duration(fields.get("timeout"), f"{where}.timeout", pipeline_timeout)
        if timeout > pipeline_timeout:
            self.nodes.problem(
                fields["timeout"], f"{where}.timeout", "is longer than the pipeline's"
            )
        return Step(
            name=self.nodes.string(fields["name"], f"{where}.name", ""),
            run=run,
            timeout=timeout,
            env=self.env_reader.env(fields.get("env"), f"{where}.env"),
            shell=self.shell(fields.get("shell"), f"{where}.shell", shell),
        )

    def shell(self, node: Node | None, where: str, default: tuple[str, ...]) -> tuple[str, ...]:
        """A command line the step's text is appended to, as its last argument."""
        if node is None:
            return default
        try:
            words = tuple(shlex.split(self.nodes.string(node, where, "")))
        except ValueError as error:
            self.nodes.problem(node, where, f"cannot be split into words: {error}")
            return default
        if not words:
            self.nodes.problem(
                node, where, "is empty; name a program, like bash -e -c or python3 -c"
            )
            return default
        return words

    def concurrency(self, node: Node | None, where: str) -> Concurrency | None:
        if node is None:
            return None
        if isinstance(node, ScalarNode):
            return Concurrency(self.nodes.string(node, where, ""))
        fields = self.nodes.mapping(node, where, CONCURRENCY_KEYS) or {}
        return Concurrency(
            group=self.nodes.string(fields.get("group"), f"{where}.group", ""),
            cancel_in_progress=self.nodes.boolean(
                fields.get("cancel_in_progress"), f"{where}.cancel_in_progress", False
            ),
        )

    def queue(self, node: Node | None, where: str) -> str:
        name = self.nodes.string(node, where, "default")
        if not QUEUE_NAME.fullmatch(name):
            self.nodes.problem(
                node, where, f"{name!r} is not a queue name (letters, digits, . _ -)"
            )
        return name
