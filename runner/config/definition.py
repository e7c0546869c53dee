"""A run's definition: what a run needs of its pipeline, frozen as pipelines.yaml defined
it when the run was made, stored with the run as versioned JSON. Pure, no ORM.

Version 1 is the first format; rows written before it carried a version hold the same
keys, so a missing version reads as 1. A field added later gets a default here, so older
rows still read; a row of a newer version than this code knows is refused, not guessed.
"""

from dataclasses import dataclass, field
from typing import Any

from runner.config.pipelines import (
    DEFAULT_APPROVAL_EXPIRES,
    DEFAULT_NOTIFY_ON,
    DEFAULT_SHELL,
    DEFAULT_TIMEOUT,
    SANDBOXED,
    Approval,
    Concurrency,
    Environment,
    Input,
    Notify,
    Pipeline,
    Sandbox,
    Step,
)

VERSION = 1


class UnknownVersion(ValueError):
    """A definition stored by a newer hookrunner than this one."""


@dataclass(frozen=True)
class RunDefinition:
    name: str = ""
    steps: tuple[Step, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    timeout: int = DEFAULT_TIMEOUT
    workdir: str = ""
    checkout: bool = False
    clone_url: str = ""
    keep_workspace: bool = False
    # Empty for a run of a fork's pull request: a fork's code never sees the server's secrets.
    secrets: tuple[str, ...] = ()
    runs_on: str = "default"
    needs: tuple[str, ...] = ()
    report_status: bool = False
    token_env: str = ""
    notify: tuple[Notify, ...] = ()
    concurrency: Concurrency | None = None
    # Rows stored before sandboxes existed read as sandboxed, as every pipeline now is.
    sandbox: Sandbox = SANDBOXED
    environment: Environment | None = None
    approval: Approval | None = None
    # The inputs a manual run of it takes (its run holds the values given).
    inputs: tuple[Input, ...] = ()

    @classmethod
    def of(cls, pipeline: Pipeline, from_fork: bool) -> "RunDefinition":
        return cls(
            name=pipeline.name,
            steps=pipeline.steps,
            env=pipeline.env,
            timeout=pipeline.timeout,
            workdir=pipeline.workdir,
            checkout=pipeline.checkout,
            clone_url=pipeline.clone_url,
            keep_workspace=pipeline.keep_workspace,
            secrets=() if from_fork else pipeline.secrets,
            runs_on=pipeline.runs_on,
            needs=pipeline.needs,
            # None only for a pipeline never given its repository's settings: none to send.
            report_status=bool(pipeline.report_status),
            token_env=pipeline.token_env,
            notify=pipeline.notify,
            concurrency=pipeline.concurrency,
            sandbox=pipeline.sandbox,
            environment=pipeline.environment,
            approval=pipeline.approval,
            inputs=pipeline.manual.inputs if pipeline.manual else (),
        )

    @property
    def concurrency_group(self) -> str:
        return self.concurrency.group if self.concurrency else ""

    @property
    def environment_name(self) -> str:
        return self.environment.name if self.environment else ""

    @property
    def cancels_in_progress(self) -> bool:
        return bool(self.concurrency and self.concurrency.cancel_in_progress)

    def notify_secret_env(self, url: str) -> str:
        """The secret_env of the first notify entry sending to `url`."""
        return next((entry.secret_env for entry in self.notify if entry.url == url), "")

    def to_json(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "name": self.name,
            "steps": [
                {"name": s.name, "run": s.run, "timeout": s.timeout, "env": s.env,
                 "shell": list(s.shell)}
                for s in self.steps
            ],
            "env": self.env,
            "timeout": self.timeout,
            "workdir": self.workdir,
            "checkout": self.checkout,
            "clone_url": self.clone_url,
            "keep_workspace": self.keep_workspace,
            "secrets": list(self.secrets),
            "runs_on": self.runs_on,
            "needs": list(self.needs),
            "report_status": self.report_status,
            "token_env": self.token_env,
            "notify": [{"url": n.url, "on": n.on, "secret_env": n.secret_env} for n in self.notify],
            "concurrency": (
                {"group": self.concurrency.group,
                 "cancel_in_progress": self.concurrency.cancel_in_progress}
                if self.concurrency else None
            ),
            "sandbox": {
                "enabled": self.sandbox.enabled, "writable": list(self.sandbox.writable),
                "readonly": list(self.sandbox.readonly), "network": self.sandbox.network,
            },
            "environment": (
                {"name": self.environment.name, "url": self.environment.url}
                if self.environment else None
            ),
            "approval": (
                {"approvers": self.approval.approvers, "expires": self.approval.expires}
                if self.approval else None
            ),
            "inputs": [
                {"name": i.name, "description": i.description, "default": i.default,
                 "choices": list(i.choices)}
                for i in self.inputs
            ],
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RunDefinition":
        version = data.get("version", 1)
        if version > VERSION:
            raise UnknownVersion(f"run definition version {version} is newer than {VERSION}")
        concurrency = data.get("concurrency")
        return cls(
            name=data.get("name", ""),
            steps=tuple(_step(step) for step in data.get("steps", ())),
            env=dict(data.get("env", {})),
            timeout=data.get("timeout", DEFAULT_TIMEOUT),
            workdir=data.get("workdir", ""),
            checkout=data.get("checkout", False),
            clone_url=data.get("clone_url", ""),
            keep_workspace=data.get("keep_workspace", False),
            secrets=tuple(data.get("secrets", ())),
            runs_on=data.get("runs_on", "default"),
            needs=tuple(data.get("needs", ())),
            report_status=data.get("report_status", False),
            token_env=data.get("token_env", ""),
            notify=tuple(
                Notify(n["url"], n.get("on") or DEFAULT_NOTIFY_ON, n.get("secret_env") or "")
                for n in data.get("notify", ())
            ),
            concurrency=Concurrency(**concurrency) if concurrency else None,
            sandbox=_sandbox(data.get("sandbox") or {}),
            environment=_environment(data.get("environment")),
            approval=_approval(data.get("approval")),
            inputs=tuple(_input(entry) for entry in data.get("inputs", ())),
        )


def _step(data: dict[str, Any]) -> Step:
    shell = tuple(data.get("shell") or DEFAULT_SHELL)
    return Step(data["name"], data["run"], data["timeout"], dict(data.get("env", {})), shell)


def _sandbox(data: dict[str, Any]) -> Sandbox:
    return Sandbox(
        enabled=data.get("enabled", True),
        writable=tuple(data.get("writable", ())),
        readonly=tuple(data.get("readonly", ())),
        network=data.get("network", True),
    )


def _environment(data: dict[str, Any] | None) -> Environment | None:
    return Environment(data["name"], data.get("url") or "") if data else None


def _approval(data: dict[str, Any] | None) -> Approval | None:
    if data is None:
        return None
    return Approval(data.get("approvers") or "", data.get("expires", DEFAULT_APPROVAL_EXPIRES))


def _input(data: dict[str, Any]) -> Input:
    return Input(
        data["name"], data.get("description") or "", data.get("default"),
        tuple(data.get("choices") or ()),
    )  # fmt: skip
