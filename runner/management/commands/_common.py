"""What the commands that start or steer runs share: pipelines.yaml read as the shell
sees it, who is acting, refusals turned into one-line errors, and a run said in words.
Not a command (Django skips modules whose names start with "_")."""

import contextlib
import getpass
import os
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError, OutputWrapper

from runner.config.github import REPOSITORY_NAME
from runner.config.pipelines_file import PipelinesError, load_pipelines
from runner.config.repositories import Config
from runner.models import Run
from runner.runs.deployments import DeployRefused


def add_pipelines_argument(parser) -> None:
    parser.add_argument(
        "--pipelines", metavar="FILE", help="pipelines file (default: PIPELINES_FILE)"
    )


def add_by_argument(parser) -> None:
    parser.add_argument("--by", help="who does it, as recorded on the run (default: $USER)")


def config(pipelines: str | None, stderr: OutputWrapper, warn_of_unset: bool = True) -> Config:
    """pipelines.yaml (--pipelines FILE, else PIPELINES_FILE); with `warn_of_unset`, a
    secret not set here is only a warning (the worker's environment, not this shell's,
    gives it)."""
    path = Path(pipelines) if pipelines else Path(settings.PIPELINES_FILE)
    try:
        loaded = load_pipelines(path, os.environ, warn_of_unset=warn_of_unset)
    except PipelinesError as error:
        raise CommandError(f"{path} is not valid:\n{error}") from None
    for warning in loaded.warnings:
        stderr.write(f"warning: {warning}")
    return loaded


def by(options: dict) -> str:
    return options["by"] or login()


def login() -> str:
    """Who runs this command: $USER, else the account's name."""
    try:
        return os.environ.get("USER") or getpass.getuser()
    except OSError:
        return "local"


def check_repository(repository: str) -> None:
    if not REPOSITORY_NAME.fullmatch(repository):
        raise CommandError(f"{repository!r} is not OWNER/REPO")


@contextlib.contextmanager
def refusals() -> Iterator[None]:
    """DeployRefused as a CommandError: its message on one line, a non-zero exit."""
    try:
        yield
    except DeployRefused as refused:
        raise CommandError(str(refused)) from None


def run_of(run_id: int) -> Run:
    run = Run.objects.filter(pk=run_id).first()
    if run is None:
        raise CommandError(f"no such run: {run_id}")
    return run


def said(run: Run) -> str:
    """ "queued run 12", "run 12 waiting for approval", "run 12 cancelled: rejected by ..." """
    run.refresh_from_db()
    if run.status == Run.Status.QUEUED:
        return f"queued run {run.pk}"
    if run.status == Run.Status.WAITING:
        return f"run {run.pk} {run.detail}"
    return f"run {run.pk} {run.status}" + (f": {run.detail}" if run.detail else "")
