"""Validate a pipelines file: every problem with its line, or a summary of what it configures."""

import os
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from runner.config.pipelines import Pipeline, PullRequestTrigger, PushTrigger
from runner.config.pipelines_file import PipelinesError, load_pipelines
from runner.config.repositories import Config, RepositoryEntry
from runner.config.repository_patterns import common_repository, covers_every, is_exact
from runner.config.text import counted


class Command(BaseCommand):
    help = (
        "Check pipelines.yaml (or --pipelines FILE): list every problem and exit 1, or "
        "summarise it."
    )
    # A broken file must not stop the command that explains what is broken.
    requires_system_checks = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", nargs="?", help="the same as --pipelines FILE")
        parser.add_argument(
            "--pipelines", metavar="FILE", help="pipelines file (default: PIPELINES_FILE)"
        )

    def handle(self, *args, file: str | None, pipelines: str | None, **options) -> None:
        if file and pipelines and file != pipelines:
            raise CommandError(f"two files to check, {file} and --pipelines {pipelines}: give one")
        chosen = pipelines or file
        path = Path(chosen) if chosen else Path(settings.PIPELINES_FILE)
        try:
            config = load_pipelines(path, os.environ)
        except PipelinesError as error:
            for problem in error.problems:
                self.stderr.write(str(problem))
            self.stderr.write(f"{counted(len(error.problems), 'problem')} in {path}")
            sys.exit(1)
        pipelines = sum(len(entry.pipelines) for entry in config.repositories)
        repositories = counted(len(config.repositories), "repository", "repositories")
        self.stdout.write(f"{path}: valid, {repositories}, {counted(pipelines, 'pipeline')}")
        for entry in config.repositories:
            self.stdout.write(f"  {entry.pattern} ({secret_text(config, entry)})")
            for pipeline in entry.pipelines:
                self.stdout.write(f"    {pipeline.name}: {describe(pipeline)}")
            for addition in additions(config, entry):
                self.stdout.write(f"    + {addition}")
        for entry in config.repositories:
            for pipeline in entry.pipelines:
                if not pipeline.sandbox.enabled:
                    self.stderr.write(f"warning: {entry.pattern} {pipeline.name}: {UNSANDBOXED}")


UNSANDBOXED = (
    "sandbox: off: its steps run outside a sandbox, where they can read hookrunner's "
    "secrets, database and configuration, other runs' workspaces and every mirror, and "
    "leave processes running (docs/sandbox.md)"
)


def secret_text(config: Config, entry: RepositoryEntry) -> str:
    """Which secret signs the deliveries of the entry's repositories, wherever no more
    specific entry names its own."""
    named_by = config.covering(entry).giving("secret_env")
    if not named_by.secret_env:
        return "WEBHOOK_SECRET"
    secret = f"secret from {named_by.secret_env}"
    return secret if named_by is entry else f"{secret}, named by {named_by.pattern}"


def additions(config: Config, entry: RepositoryEntry) -> list[str]:
    """Which other entries add pipelines to the entry's repositories, and to which."""
    found = []
    for other in config.repositories:
        shared = common_repository(other.pattern, entry.pattern)
        if other is entry or shared is None:
            continue
        names = ", ".join(pipeline.name for pipeline in other.pipelines)
        if covers_every(other.pattern, entry.pattern):
            found.append(f"{other.place} adds {names}")
        elif is_exact(other.pattern):
            found.append(f"{other.place} adds {names} to {other.pattern}")
        else:
            found.append(f"{other.place} adds {names} to those both cover, such as {shared}")
    return found


def describe(pipeline: Pipeline) -> str:
    texts = (push_text(pipeline.push), pr_text(pipeline.pull_request), manual_text(pipeline))
    triggers = [text for text in texts if text]
    parts = [
        " and ".join(triggers),
        counted(len(pipeline.steps), "step"),
        f"timeout {pipeline.timeout}s",
        f"queue {pipeline.runs_on}",
    ]
    if pipeline.checkout:
        parts.append("checkout")
    if pipeline.workdir:
        parts.append(f"in {pipeline.workdir}")
    if pipeline.secrets:
        parts.append(f"secrets {', '.join(pipeline.secrets)}")
    if pipeline.concurrency:
        parts.append(f"concurrency group {pipeline.concurrency.group}")
    if pipeline.forks:
        parts.append("runs forks")
    return "; ".join([*parts, *deploy_text(pipeline), *pipeline.sandbox.described()])


def manual_text(pipeline: Pipeline) -> str:
    if pipeline.manual is None:
        return ""
    inputs = ", ".join(entry.name for entry in pipeline.manual.inputs)
    return f"manual (inputs {inputs})" if inputs else "manual"


def deploy_text(pipeline: Pipeline) -> list[str]:
    """Where it deploys and who must approve: "environment production", "approval by
    deployers, expires after 86400s"."""
    parts = []
    if pipeline.environment:
        parts.append(f"environment {pipeline.environment.name}")
    if pipeline.approval:
        who = f" by {pipeline.approval.approvers}" if pipeline.approval.approvers else ""
        parts.append(f"approval{who}, expires after {pipeline.approval.expires}s")
    return parts


def patterns(name: str, globs) -> str:
    return f"{name} {', '.join(glob.pattern for glob in globs)}" if globs else ""


def push_text(trigger: PushTrigger | None) -> str:
    if trigger is None:
        return ""
    filters = [
        patterns("branches", trigger.branches),
        patterns("branches_ignore", trigger.branches_ignore),
        patterns("tags", trigger.tags),
        patterns("tags_ignore", trigger.tags_ignore),
        "deletions" if trigger.deletions else "",
    ]
    shown = [text for text in filters if text]
    return f"push ({'; '.join(shown)})" if shown else "push (any ref)"


def pr_text(trigger: PullRequestTrigger | None) -> str:
    if trigger is None:
        return ""
    filters = [
        ", ".join(sorted(trigger.types)),
        patterns("branches", trigger.branches),
        patterns("branches_ignore", trigger.branches_ignore),
    ]
    return f"pull_request ({'; '.join(text for text in filters if text)})"
