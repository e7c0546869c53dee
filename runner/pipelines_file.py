"""pipelines.yaml's schema: read into a Config, every problem reported at once with its
file and line (through runner.yaml_nodes)."""

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from runner.globs import BadGlob, Glob, compile_glob
from runner.pipelines import (
    DEFAULT_NOTIFY_ON,
    DEFAULT_PULL_REQUEST_TYPES,
    DEFAULT_SHELL,
    NOTIFY_ON,
    Concurrency,
    Config,
    Notify,
    Pipeline,
    PullRequestTrigger,
    PushTrigger,
    RepositoryEntry,
    Step,
)
from runner.yaml_nodes import NodeReader, Problem, is_null, kind_of, value_of

PULL_REQUEST_TYPES = frozenset({
    "assigned", "unassigned", "labeled", "unlabeled", "opened", "edited", "closed",
    "reopened", "synchronize", "converted_to_draft", "ready_for_review", "locked",
    "unlocked", "review_requested", "review_request_removed", "auto_merge_enabled",
    "auto_merge_disabled", "enqueued", "dequeued", "milestoned", "demilestoned",
})  # fmt: skip
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Names hookrunner sets for every step; a pipeline may not redefine them.
RESERVED_ENV = re.compile(r"(GITHUB_.*|HOOKRUNNER_.*|PATH|HOME)")
REPOSITORY_PATTERN = re.compile(r"[A-Za-z0-9_.*?\[\]!-]+/[A-Za-z0-9_.*?\[\]!-]+")
QUEUE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
DEFAULT_TIMEOUT = 3600

REPOSITORY_KEYS = {
    "pipelines": True, "secret_env": False, "clone_url": False, "token_env": False,
    "report_status": False,
}  # fmt: skip
PIPELINE_KEYS = {
    "on": True, "steps": True, "env": False, "timeout": False, "workdir": False,
    "checkout": False, "keep_workspace": False, "shell": False, "secrets": False,
    "runs_on": False, "concurrency": False, "forks": False, "needs": False,
    "report_status": False, "notify": False,
}  # fmt: skip
STEP_KEYS = {"name": True, "run": True, "timeout": False, "env": False, "shell": False}
PUSH_KEYS = {
    "branches": False, "branches_ignore": False, "tags": False, "tags_ignore": False,
    "deletions": False, "paths": False, "paths_ignore": False,
}  # fmt: skip
PULL_REQUEST_KEYS = {"types": False, "branches": False, "branches_ignore": False}
# GitHub filters pull requests by path too, but their payload lists no files.
PATH_KEYS = ("paths", "paths_ignore")
CONCURRENCY_KEYS = {"group": True, "cancel_in_progress": False}
NOTIFY_KEYS = {"url": True, "on": False, "secret_env": False}
REPORT_STATUS_PROBLEM = "report_status needs token_env: the variable holding a GitHub token"


@dataclass(frozen=True)
class _Shared:
    """What a repository entry gives each of its pipelines."""

    clone_url: str = ""
    report_status: bool = False
    token_env: str = ""


class PipelinesError(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(problem) for problem in problems))
        self.problems = problems


def load_pipelines(path: Path, environ: Mapping[str, str]) -> Config:
    """The Config in `path`; PipelinesError lists every problem found in it."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise PipelinesError([Problem(str(path), 0, "file", f"cannot be read: {error}")]) from None
    return parse_pipelines(text, str(path), environ)


def parse_pipelines(text: str, source: str, environ: Mapping[str, str]) -> Config:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else 0
        problem = f"{error.problem or error.context} (YAML syntax)"
        raise PipelinesError([Problem(source, line, "file", problem)]) from None
    reader = _Reader(source, environ)
    config = reader.config(root)
    if reader.problems:
        raise PipelinesError(reader.problems)
    return config


class _Reader(NodeReader):
    """pipelines.yaml's schema, read node by node."""

    def __init__(self, source: str, environ: Mapping[str, str]) -> None:
        super().__init__(source)
        self.environ = environ

    def config(self, root: Node | None) -> Config:
        if root is None:
            self.problem(None, "file", "is empty; it needs a repositories: mapping")
            return Config((), self.source)
        top = self.mapping(root, "file", {"repositories": True})
        if top is None or "repositories" not in top:
            return Config((), self.source)
        entries = self.mapping(top["repositories"], "repositories", None) or {}
        repositories = []
        for pattern, node in entries.items():
            entry = self.repository(pattern, node, f"repositories.{pattern}")
            if entry is not None:
                self.check_reachable(entry, repositories, node)
                repositories.append(entry)
        if not entries:
            self.problem(top["repositories"], "repositories", "lists no repository")
        return Config(tuple(repositories), self.source)

    def repository(self, pattern: str, node: Node, where: str) -> RepositoryEntry | None:
        if not REPOSITORY_PATTERN.fullmatch(pattern):
            self.problem(node, where, "is not owner/name (wildcards * ? [] allowed)")
        fields = self.mapping(node, where, REPOSITORY_KEYS)
        if fields is None:
            return None
        secret_env, secret = "", ""
        if "secret_env" in fields:
            secret_env = self.env_reference(fields["secret_env"], f"{where}.secret_env")
            secret = self.environ.get(secret_env, "")
        token_env = ""
        if "token_env" in fields:
            token_env = self.env_reference(fields["token_env"], f"{where}.token_env")
        shared = _Shared(
            clone_url=self.string(fields.get("clone_url"), f"{where}.clone_url", ""),
            report_status=self.boolean(
                fields.get("report_status"), f"{where}.report_status", False
            ),
            token_env=token_env,
        )
        pipelines = []
        named = self.mapping(fields.get("pipelines"), f"{where}.pipelines", None) or {}
        for name, pipeline_node in named.items():
            pipeline = self.pipeline(name, pipeline_node, f"{where}.pipelines.{name}", shared)
            if pipeline is not None:
                pipelines.append(pipeline)
        if "pipelines" in fields and not named:
            self.problem(fields["pipelines"], f"{where}.pipelines", "lists no pipeline")
        self.check_needs(pipelines, named, f"{where}.pipelines")
        if not token_env:
            self.check_token_env(pipelines, named, fields.get("report_status"), where)
        return RepositoryEntry(
            pattern,
            tuple(pipelines),
            secret_env,
            secret,
            token_env=token_env,
            report_status=shared.report_status,
        )

    def check_token_env(
        self, pipelines: list[Pipeline], nodes: dict[str, Node], default: Node | None, where: str
    ) -> None:
        """Without token_env no pipeline may report statuses; the problem points at the
        report_status: true that asks for it."""
        for pipeline in pipelines:
            if pipeline.report_status:
                own = _value_node(nodes[pipeline.name], "report_status")
                # A pipeline with no report_status of its own has the repository's.
                self.problem(
                    default if own is nodes[pipeline.name] else own, where, REPORT_STATUS_PROBLEM
                )
                return

    def check_needs(self, pipelines: list[Pipeline], nodes: dict[str, Node], where: str) -> None:
        """Each name in `needs` is another pipeline of the entry, and no pipeline ends up
        needing itself (it would wait forever)."""
        needs = {pipeline.name: pipeline.needs for pipeline in pipelines}
        for pipeline in pipelines:
            node, place = (
                _value_node(nodes[pipeline.name], "needs"),
                f"{where}.{pipeline.name}.needs",
            )
            for name in pipeline.needs:
                if name not in needs:
                    self.problem(node, place, f"names {name!r}, which is not a pipeline here")
            if _needs_itself(pipeline.name, needs):
                self.problem(node, place, "goes round in a circle back to this pipeline")

    def check_reachable(
        self, entry: RepositoryEntry, earlier: list[RepositoryEntry], node: Node
    ) -> None:
        for other in earlier:
            if other.covers(entry.pattern):
                message = f"is never used: {other.pattern} above already covers it; move it up"
                self.problem(node, f"repositories.{entry.pattern}", message)

    def pipeline(self, name: str, node: Node, where: str, shared: _Shared) -> Pipeline | None:
        fields = self.mapping(node, where, PIPELINE_KEYS)
        if fields is None:
            return None
        push, pull_request = self.triggers(fields.get("on"), f"{where}.on")
        timeout = self.duration(fields.get("timeout"), f"{where}.timeout", DEFAULT_TIMEOUT)
        workdir = self.string(fields.get("workdir"), f"{where}.workdir", "")
        checkout = self.boolean(fields.get("checkout"), f"{where}.checkout", False)
        if workdir and checkout:
            self.problem(node, where, "has both workdir and checkout: true; choose one")
        if workdir and not workdir.startswith("/"):
            self.problem(fields["workdir"], f"{where}.workdir", "must be an absolute path")
        keep_workspace = self.boolean(
            fields.get("keep_workspace"), f"{where}.keep_workspace", False
        )
        if keep_workspace and not checkout:
            self.problem(
                fields["keep_workspace"], f"{where}.keep_workspace", "needs checkout: true"
            )
        shell = self.shell(fields.get("shell"), f"{where}.shell", DEFAULT_SHELL)
        return Pipeline(
            name=name,
            steps=self.steps(fields.get("steps"), f"{where}.steps", timeout, shell),
            push=push,
            pull_request=pull_request,
            env=self.env(fields.get("env"), f"{where}.env"),
            timeout=timeout,
            workdir=workdir,
            checkout=checkout,
            clone_url=shared.clone_url,
            keep_workspace=keep_workspace,
            secrets=self.secrets(fields.get("secrets"), f"{where}.secrets"),
            runs_on=self.queue(fields.get("runs_on"), f"{where}.runs_on"),
            concurrency=self.concurrency(fields.get("concurrency"), f"{where}.concurrency"),
            forks=self.boolean(fields.get("forks"), f"{where}.forks", False),
            needs=tuple(self.strings(fields["needs"], f"{where}.needs"))
            if "needs" in fields
            else (),
            report_status=self.boolean(
                fields.get("report_status"), f"{where}.report_status", shared.report_status
            ),
            token_env=shared.token_env,
            notify=self.notify(fields.get("notify"), f"{where}.notify"),
        )

    def triggers(
        self, node: Node | None, where: str
    ) -> tuple[PushTrigger | None, PullRequestTrigger | None]:
        events = self.mapping(node, where, {"push": False, "pull_request": False}, "event")
        if events is None:
            return None, None
        if not events:
            self.problem(node, where, "names no event (use push and/or pull_request)")
        push = pull_request = None
        if "push" in events:
            push = self.push(events["push"], f"{where}.push")
        if "pull_request" in events:
            pull_request = self.pull_request(events["pull_request"], f"{where}.pull_request")
        return push, pull_request

    def push(self, node: Node, where: str) -> PushTrigger:
        if is_null(node):
            return PushTrigger()
        fields = self.mapping(node, where, PUSH_KEYS) or {}
        if "paths" in fields and "paths_ignore" in fields:
            message = "has both paths and paths_ignore; use one (a '!' pattern in paths excludes)"
            self.problem(node, where, message)
        return PushTrigger(
            branches=self.globs(fields.get("branches"), f"{where}.branches"),
            branches_ignore=self.globs(fields.get("branches_ignore"), f"{where}.branches_ignore")
            or (),
            tags=self.globs(fields.get("tags"), f"{where}.tags"),
            tags_ignore=self.globs(fields.get("tags_ignore"), f"{where}.tags_ignore") or (),
            deletions=self.boolean(fields.get("deletions"), f"{where}.deletions", False),
            paths=self.globs(fields.get("paths"), f"{where}.paths"),
            paths_ignore=self.globs(fields.get("paths_ignore"), f"{where}.paths_ignore") or (),
        )

    def pull_request(self, node: Node, where: str) -> PullRequestTrigger:
        if is_null(node):
            return PullRequestTrigger()
        fields = self.mapping(self.without_path_filters(node, where), where, PULL_REQUEST_KEYS)
        fields = fields or {}
        types = DEFAULT_PULL_REQUEST_TYPES
        if "types" in fields:
            listed = self.strings(fields["types"], f"{where}.types")
            for unknown in sorted(set(listed) - PULL_REQUEST_TYPES):
                self.problem(fields["types"], f"{where}.types", f"unknown type {unknown!r}")
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
                self.problem(key_node, where, message)
            else:
                kept.append((key_node, value_node))
        if len(kept) == len(node.value):
            return node
        return MappingNode(node.tag, kept, node.start_mark, node.end_mark, node.flow_style)

    def notify(self, node: Node | None, where: str) -> tuple[Notify, ...]:
        """A list of {url, on, secret_env}; a plain URL stands for {url: URL}, and one
        entry alone counts as a list of one."""
        if node is None:
            return ()
        if isinstance(node, SequenceNode):
            if not node.value:
                self.problem(node, where, "is an empty list")
            items = [(item, f"{where}[{index}]") for index, item in enumerate(node.value)]
        else:
            items = [(node, where)]
        targets: list[Notify] = []
        for item, place in items:
            target = self.notify_target(item, place)
            if target is None:
                continue
            if any(other.url == target.url for other in targets):
                self.problem(item, place, f"duplicate url {target.url!r}")
                continue
            targets.append(target)
        return tuple(targets)

    def notify_target(self, node: Node, where: str) -> Notify | None:
        if isinstance(node, ScalarNode):
            url = self.url(node, where)
            return Notify(url) if url else None
        fields = self.mapping(node, where, NOTIFY_KEYS)
        if fields is None or "url" not in fields:
            return None
        url = self.url(fields["url"], f"{where}.url")
        on = self.string(fields.get("on"), f"{where}.on", DEFAULT_NOTIFY_ON)
        if on not in NOTIFY_ON:
            choices = ", ".join(NOTIFY_ON)
            self.problem(fields["on"], f"{where}.on", f"{on!r} is not one of {choices}")
        secret_env = ""
        if "secret_env" in fields:
            secret_env = self.env_reference(fields["secret_env"], f"{where}.secret_env")
        return Notify(url, on, secret_env) if url else None

    def url(self, node: Node, where: str) -> str | None:
        """An http:// or https:// URL, or None once the problem is reported."""
        url = self.scalar(node, where, str, "a string")
        if url is not None and not _is_http_url(url):
            self.problem(node, where, f"{url!r} is not an http:// or https:// URL")
            return None
        return url

    def steps(
        self, node: Node | None, where: str, pipeline_timeout: int, shell: tuple[str, ...]
    ) -> tuple[Step, ...]:
        if node is None:
            return ()
        if not isinstance(node, SequenceNode):
            self.problem(node, where, f"must be a list of steps, not {kind_of(node)}")
            return ()
        if not node.value:
            self.problem(node, where, "is empty; a pipeline needs at least one step")
        steps, seen = [], set()
        for index, step_node in enumerate(node.value):
            step = self.step(step_node, f"{where}[{index}]", pipeline_timeout, shell)
            if step is None:
                continue
            if step.name in seen:
                self.problem(step_node, f"{where}[{index}]", f"duplicate step name {step.name!r}")
            seen.add(step.name)
            steps.append(step)
        return tuple(steps)

    def step(
        self, node: Node, where: str, pipeline_timeout: int, shell: tuple[str, ...]
    ) -> Step | None:
        fields = self.mapping(node, where, STEP_KEYS)
        if fields is None or not {"name", "run"} <= fields.keys():
            return None
        run = self.string(fields["run"], f"{where}.run", "")
        if fields["run"] is not None and not run.strip():
            self.problem(fields["run"], f"{where}.run", "is empty")
        timeout = self.duration(fields.get("timeout"), f"{where}.timeout", pipeline_timeout)
        if timeout > pipeline_timeout:
            self.problem(fields["timeout"], f"{where}.timeout", "is longer than the pipeline's")
        return Step(
            name=self.string(fields["name"], f"{where}.name", ""),
            run=run,
            timeout=timeout,
            env=self.env(fields.get("env"), f"{where}.env"),
            shell=self.shell(fields.get("shell"), f"{where}.shell", shell),
        )

    def shell(self, node: Node | None, where: str, default: tuple[str, ...]) -> tuple[str, ...]:
        """A command line the step's text is appended to, as its last argument."""
        if node is None:
            return default
        try:
            words = tuple(shlex.split(self.string(node, where, "")))
        except ValueError as error:
            self.problem(node, where, f"cannot be split into words: {error}")
            return default
        if not words:
            self.problem(node, where, "is empty; name a program, like bash -e -c or python3 -c")
            return default
        return words

    def concurrency(self, node: Node | None, where: str) -> Concurrency | None:
        if node is None:
            return None
        if isinstance(node, ScalarNode):
            return Concurrency(self.string(node, where, ""))
        fields = self.mapping(node, where, CONCURRENCY_KEYS) or {}
        return Concurrency(
            group=self.string(fields.get("group"), f"{where}.group", ""),
            cancel_in_progress=self.boolean(
                fields.get("cancel_in_progress"), f"{where}.cancel_in_progress", False
            ),
        )

    def globs(self, node: Node | None, where: str) -> tuple[Glob, ...] | None:
        if node is None:
            return None
        globs = []
        for pattern in self.strings(node, where):
            try:
                globs.append(compile_glob(pattern))
            except BadGlob as error:
                self.problem(node, where, f"bad pattern {pattern!r}: {error}")
        return tuple(globs)

    def env(self, node: Node | None, where: str) -> dict[str, str]:
        fields = self.mapping(node, where, None, "variable") or {}
        env = {}
        for name, value_node in fields.items():
            if not ENV_NAME.fullmatch(name) or RESERVED_ENV.fullmatch(name):
                self.problem(value_node, where, f"{name!r} cannot be set by a pipeline")
                continue
            value = value_of(value_node)
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                self.problem(value_node, f"{where}.{name}", "must be a string (quote it)")
                continue
            env[name] = str(value)
        return env

    def env_reference(self, node: Node, where: str) -> str:
        name = self.string(node, where, "")
        if name:
            self.check_variable_is_set(node, name, where)
        return name

    def secrets(self, node: Node | None, where: str) -> tuple[str, ...]:
        if node is None:
            return ()
        names = tuple(self.strings(node, where))
        for name in names:
            self.check_variable_is_set(node, name, where)
        return names

    def check_variable_is_set(self, node: Node, name: str, where: str) -> None:
        if not ENV_NAME.fullmatch(name):
            self.problem(node, where, f"{name!r} is not an environment variable name")
        elif not self.environ.get(name):
            self.problem(node, where, f"names {name}, which is not set in hookrunner's environment")

    def queue(self, node: Node | None, where: str) -> str:
        name = self.string(node, where, "default")
        if not QUEUE_NAME.fullmatch(name):
            self.problem(node, where, f"{name!r} is not a queue name (letters, digits, . _ -)")
        return name


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


def _is_http_url(url: str) -> bool:
    if any(char.isspace() or not char.isprintable() for char in url):
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def _value_node(mapping: Node, key: str) -> Node:
    """The node under `key` in a mapping node, for a problem's line; else the mapping."""
    for key_node, value_node in getattr(mapping, "value", []):
        if isinstance(key_node, ScalarNode) and key_node.value == key:
            return value_node
    return mapping
