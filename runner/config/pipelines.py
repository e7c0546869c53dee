"""Pipelines as typed, frozen objects, and which of them a delivery starts. Pure, no ORM.

`runner.config.pipelines_file` builds these from pipelines.yaml; nothing here re-checks them.
"""

from dataclasses import dataclass, field, replace

from runner.config import repository_patterns
from runner.config.github import (
    COMMITS_CAPPED,
    COMMITS_UNREADABLE,
    FILES_CAPPED,
    NO_COMMITS,
    Event,
    branch_of,
    tag_of,
)
from runner.config.globs import Glob, matches_any
from runner.config.yaml_nodes import Problem

DEFAULT_PULL_REQUEST_TYPES = frozenset({"opened", "synchronize", "reopened"})
# A step's text is the last argument; -e and pipefail make any failing command fail it.
DEFAULT_SHELL = ("bash", "-e", "-o", "pipefail", "-c")
# When a notification is sent: every finished run; every run that does not succeed; or a
# run that does not succeed and the first success after one (a recovery).
NOTIFY_ON = ("always", "failure", "changes")
DEFAULT_NOTIFY_ON = "always"
# Seconds a pipeline, and each of its steps, may run unless pipelines.yaml says otherwise.
DEFAULT_TIMEOUT = 3600
# Seconds a run waits for a person's approval before it is skipped (approval expired).
DEFAULT_APPROVAL_EXPIRES = 24 * 3600


@dataclass(frozen=True)
class Step:
    name: str
    run: str
    timeout: int
    env: dict[str, str] = field(default_factory=dict)
    shell: tuple[str, ...] = DEFAULT_SHELL


@dataclass(frozen=True)
class PushTrigger:
    branches: tuple[Glob, ...] | None = None
    branches_ignore: tuple[Glob, ...] = ()
    tags: tuple[Glob, ...] | None = None
    tags_ignore: tuple[Glob, ...] = ()
    deletions: bool = False
    # Matched against the files the push's commits change; never both (as on GitHub).
    paths: tuple[Glob, ...] | None = None
    paths_ignore: tuple[Glob, ...] = ()


@dataclass(frozen=True)
class PullRequestTrigger:
    types: frozenset[str] = DEFAULT_PULL_REQUEST_TYPES
    branches: tuple[Glob, ...] | None = None
    branches_ignore: tuple[Glob, ...] = ()


@dataclass(frozen=True)
class Concurrency:
    group: str
    cancel_in_progress: bool = False


@dataclass(frozen=True)
class Notify:
    """Where to POST about a finished run, when, and the variable holding the secret that
    signs it (X-Hub-Signature-256); empty for unsigned."""

    url: str
    on: str = DEFAULT_NOTIFY_ON
    secret_env: str = ""


@dataclass(frozen=True)
class Sandbox:
    """What a pipeline's steps may reach besides their run's own folder (docs/sandbox.md).
    `enabled` is False only where pipelines.yaml says `sandbox: off`."""

    enabled: bool = True
    writable: tuple[str, ...] = ()
    readonly: tuple[str, ...] = ()
    network: bool = True

    def described(self) -> list[str]:
        """What differs from the default sandbox, in words: ["sandbox off"], or what it adds."""
        if not self.enabled:
            return ["sandbox off"]
        parts = [f"writes {', '.join(self.writable)}"] if self.writable else []
        if self.readonly:
            parts.append(f"reads {', '.join(self.readonly)}")
        return parts if self.network else [*parts, "no network"]


SANDBOXED = Sandbox()
SANDBOX_OFF = Sandbox(enabled=False)


@dataclass(frozen=True)
class Environment:
    """Where a pipeline deploys (production, staging...): one live deployment each per
    repository, the last run of it that succeeded. `url` is where it can be seen."""

    name: str
    url: str = ""


@dataclass(frozen=True)
class Approval:
    """A person must approve each run before its first step: one in the Django group
    `approvers`, or with the approve_run permission where it names none. A run waiting
    longer than `expires` seconds is skipped."""

    approvers: str = ""
    expires: int = DEFAULT_APPROVAL_EXPIRES


@dataclass(frozen=True)
class Input:
    """A value a person gives a manual run, reaching its steps as INPUT_<NAME>. Without a
    default it must be given; with choices it must be one of them."""

    name: str
    description: str = ""
    default: str | None = None
    choices: tuple[str, ...] = ()

    @property
    def variable(self) -> str:
        return "INPUT_" + self.name.upper()


@dataclass(frozen=True)
class ManualTrigger:
    """`on: manual`: a person may start the pipeline for a branch, tag or sha."""

    inputs: tuple[Input, ...] = ()


@dataclass(frozen=True)
class Pipeline:
    name: str
    steps: tuple[Step, ...]
    push: PushTrigger | None = None
    pull_request: PullRequestTrigger | None = None
    env: dict[str, str] = field(default_factory=dict)
    timeout: int = DEFAULT_TIMEOUT
    workdir: str = ""
    checkout: bool = False
    # Where checkout clones from; empty for the clone URL the payload gives.
    clone_url: str = ""
    keep_workspace: bool = False
    secrets: tuple[str, ...] = ()
    runs_on: str = "default"
    concurrency: Concurrency | None = None
    forks: bool = False
    # Pipelines of the same repository that must succeed for the same sha first.
    needs: tuple[str, ...] = ()
    # Post a commit status for each run, with the token in the repository's token_env.
    # None as read from the file, where a pipeline leaves it out: its repository's, which
    # it is given (with token_env and clone_url) once matched to a repository.
    report_status: bool | None = None
    token_env: str = ""
    notify: tuple[Notify, ...] = ()
    sandbox: Sandbox = SANDBOXED
    manual: ManualTrigger | None = None
    environment: Environment | None = None
    approval: Approval | None = None


@dataclass(frozen=True)
class RepositoryEntry:
    """One entry of pipelines.yaml's repositories: its pattern, its pipelines, and the
    settings it gives the repositories it covers. A setting it leaves out is empty (None
    for report_status): a less specific entry covering the same repository may give it."""

    pattern: str
    pipelines: tuple[Pipeline, ...]
    secret_env: str = ""
    secret: str = field(default="", repr=False)
    # The variable holding the GitHub token for commit statuses.
    token_env: str = ""
    # The default of the repository's pipelines that have no report_status of their own.
    report_status: bool | None = None
    clone_url: str = ""
    line: int = 0

    def covers(self, repository: str) -> bool:
        # GitHub treats owner and repository names case-insensitively.
        return repository_patterns.covers(self.pattern, repository)

    @property
    def place(self) -> str:
        return f"{self.pattern} (line {self.line})"


class AmbiguousPipelines(ValueError):
    """Two entries covering one repository define a pipeline of the same name."""


@dataclass(frozen=True)
class Repository:
    """What pipelines.yaml gives one repository: the pipelines of every entry that covers
    it, in file order, and each setting from the most specific of them that gives it (an
    exact owner/name before a wildcard, then the one with more literal characters, then
    the one higher in the file)."""

    name: str
    entries: tuple[RepositoryEntry, ...]

    @property
    def patterns(self) -> str:
        return ", ".join(entry.pattern for entry in self.entries)

    @property
    def secret_env(self) -> str:
        return self.giving("secret_env").secret_env

    @property
    def secret(self) -> str:
        return self.giving("secret_env").secret

    @property
    def token_env(self) -> str:
        return self.giving("token_env").token_env

    @property
    def clone_url(self) -> str:
        return self.giving("clone_url").clone_url

    @property
    def report_status(self) -> bool:
        return bool(self.giving("report_status").report_status)

    @property
    def pipelines(self) -> tuple[Pipeline, ...]:
        """Every entry's pipelines, given the repository's settings; AmbiguousPipelines if
        two entries define one name (the file's checks refuse that as it is read)."""
        defined_by: dict[str, RepositoryEntry] = {}
        clone_url, token_env, report_status = self.clone_url, self.token_env, self.report_status
        pipelines = []
        for entry in self.entries:
            for pipeline in entry.pipelines:
                if (other := defined_by.setdefault(pipeline.name, entry)) is not entry:
                    raise AmbiguousPipelines(
                        f"{self.name}: pipeline {pipeline.name} is defined by both "
                        f"{other.place} and {entry.place}"
                    )
                own = pipeline.report_status
                pipelines.append(
                    replace(
                        pipeline,
                        clone_url=clone_url,
                        token_env=token_env,
                        report_status=report_status if own is None else own,
                    )
                )
        return tuple(pipelines)

    def giving(self, setting: str) -> RepositoryEntry:
        """The most specific entry that gives `setting`; else the most specific one."""
        ranked = sorted(
            self.entries,
            key=lambda entry: repository_patterns.specificity(entry.pattern),
            reverse=True,  # which keeps entries ranked alike in file order
        )
        return next(
            (entry for entry in ranked if getattr(entry, setting) not in ("", None)), ranked[0]
        )


@dataclass(frozen=True)
class Config:
    repositories: tuple[RepositoryEntry, ...]
    source: str = ""
    # Not problems, but worth saying: a variable that is not set, for a command that reads
    # no secret's value (load_pipelines' warn_of_unset).
    warnings: tuple[Problem, ...] = ()

    def repository(self, name: str) -> Repository | None:
        """What the entries covering `name` give it; None if no entry covers it."""
        entries = tuple(entry for entry in self.repositories if entry.covers(name))
        return Repository(name, entries) if entries else None

    def covering(self, entry: RepositoryEntry) -> Repository:
        """The entries covering every repository `entry` covers, itself among them: what
        each of those repositories is given at least."""
        entries = tuple(
            other
            for other in self.repositories
            if other is entry or repository_patterns.covers_every(other.pattern, entry.pattern)
        )
        return Repository(entry.pattern, entries)


@dataclass(frozen=True)
class Verdict:
    pipeline: Pipeline
    starts: bool
    reason: str

    def __str__(self) -> str:
        if not self.starts:
            outcome = f"does not start: {self.reason}"
        elif self.reason == TRIGGERS_MATCH:
            outcome = "starts"
        else:
            outcome = f"starts ({self.reason})"
        return f"{self.pipeline.name}: {outcome}"


TRIGGERS_MATCH = "triggers match"


def match(config: Config, event: Event) -> list[Verdict]:
    """For each pipeline of the event's repository: does it start, and if not, why not."""
    repository = config.repository(event.repository)
    if repository is None:
        return []
    return [_verdict(pipeline, event) for pipeline in repository.pipelines]


def is_from_fork(event: Event) -> bool:
    return event.name == "pull_request" and (
        event.head_repository.lower() != event.repository.lower()
    )


def _verdict(pipeline: Pipeline, event: Event) -> Verdict:
    note = None
    if event.name == "push":
        refusal = _push_refusal(pipeline.push, event)
        note = None if refusal else _unchecked_paths(pipeline.push, event)
    elif event.name == "pull_request":
        refusal = _pull_request_refusal(pipeline, event)
    else:
        refusal = f"pipelines do not run on {event.name} events"
    return Verdict(pipeline, refusal is None, refusal or note or TRIGGERS_MATCH)


def _push_refusal(trigger: PushTrigger | None, event: Event) -> str | None:
    if trigger is None:
        return "no push trigger"
    if event.deleted and not trigger.deletions:
        return "the push deletes a branch or tag (set deletions: true to run on those)"
    filters_branches = trigger.branches is not None or bool(trigger.branches_ignore)
    filters_tags = trigger.tags is not None or bool(trigger.tags_ignore)
    if (name := branch_of(event.ref)) is not None:
        if filters_tags and not filters_branches:
            # GitHub's rule: a trigger that filters only tags never runs on branches.
            return f"branch {name}: the push trigger lists only tags"
        refusal = _filter_refusal("branch", name, trigger.branches, trigger.branches_ignore)
        return refusal or _paths_refusal(trigger, event)
    if (name := tag_of(event.ref)) is not None:
        if filters_branches and not filters_tags:
            return f"tag {name}: the push trigger lists only branches"
        return _filter_refusal("tag", name, trigger.tags, trigger.tags_ignore)
    return f"ref {event.ref} is neither a branch nor a tag"


def _pull_request_refusal(pipeline: Pipeline, event: Event) -> str | None:
    trigger = pipeline.pull_request
    if trigger is None:
        return "no pull_request trigger"
    if event.action not in trigger.types:
        return f"action {event.action} is not in types ({', '.join(sorted(trigger.types))})"
    if is_from_fork(event) and not pipeline.forks:
        source = event.head_repository or "a deleted fork"
        return f"the pull request comes from {source} (set forks: true to run forks, secretless)"
    return _filter_refusal("base branch", event.base_ref, trigger.branches, trigger.branches_ignore)


FILTER_KEYS = {"branch": "branches", "base branch": "branches", "tag": "tags"}


def _filter_refusal(
    what: str, name: str, include: tuple[Glob, ...] | None, ignore: tuple[Glob, ...]
) -> str | None:
    key = FILTER_KEYS[what]
    if include is not None and not matches_any(include, name):
        patterns = ", ".join(glob.pattern for glob in include)
        return f"{what} {name} matches none of {key} ({patterns})"
    if ignore and matches_any(ignore, name):
        return f"{what} {name} matches {key}_ignore"
    return None


UNKNOWN_FILES_NOTES = {
    NO_COMMITS: "paths: the push lists no commits, so it runs",
    COMMITS_CAPPED: "paths: the push may hold more commits than the payload lists, so it runs",
    FILES_CAPPED: "paths: a commit may change more files than the payload lists, so it runs",
    COMMITS_UNREADABLE: "paths: the payload's commit list cannot be read, so it runs",
}
UNKNOWN_FILES_NOTE = "paths: the changed files are unknown, so it runs"


def _unchecked_paths(trigger: PushTrigger | None, event: Event) -> str | None:
    """Why the trigger's path filters are not checked for this push, which then runs."""
    if trigger is None or (trigger.paths is None and not trigger.paths_ignore):
        return None
    if tag_of(event.ref) is not None:
        return "paths: not checked for a tag push (as on GitHub), so it runs"
    if event.deleted:
        return "paths: not checked for a deletion, so it runs"
    if event.changed_files is None:
        return UNKNOWN_FILES_NOTES.get(event.changed_files_unknown, UNKNOWN_FILES_NOTE)
    return None


def _paths_refusal(trigger: PushTrigger, event: Event) -> str | None:
    if trigger.paths is None and not trigger.paths_ignore:
        return None
    files = event.changed_files
    if files is None or _unchecked_paths(trigger, event):
        return None  # it runs, and the verdict's note says why
    if not files:
        return "paths: the push's commits change no files"
    if trigger.paths is not None:
        if any(matches_any(trigger.paths, name) for name in files):
            return None
        patterns = _patterns(trigger.paths)
        if len(files) == 1:
            return f"paths: the one changed file, {files[0]}, does not match paths ({patterns})"
        return f"paths: none of the {len(files)} changed files matches paths ({patterns})"
    if not all(matches_any(trigger.paths_ignore, name) for name in files):
        return None
    patterns = _patterns(trigger.paths_ignore)
    if len(files) == 1:
        return f"paths: the one changed file, {files[0]}, matches paths_ignore ({patterns})"
    return f"paths: all {len(files)} changed files match paths_ignore ({patterns})"


def _patterns(globs: tuple[Glob, ...]) -> str:
    return ", ".join(glob.pattern for glob in globs)
