"""Pipelines as typed, frozen objects. Pure, no ORM.

`runner.config.pipelines_file` builds these from pipelines.yaml; nothing here re-checks
them. What a repository is given of them is runner.config.repositories'; which of them a
delivery starts, runner.config.matching's.
"""

from dataclasses import dataclass, field

from runner.config.globs import Glob

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
