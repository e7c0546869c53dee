"""Delivery and Run rows made straight through the ORM, for tests that need rows in the
database without a signed push; every field a test does not give gets a dull default.
Also a database that does not answer."""

import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from django.db import connection
from django.utils import timezone

from runner.config.definition import RunDefinition
from runner.models import Delivery, Run, WorkerSeen


def make_delivery(**fields) -> Delivery:
    """A push delivery with an empty payload and a fresh delivery id."""
    values = {"delivery_id": str(uuid.uuid4()), "event": "push", "payload": {}, **fields}
    return Delivery.objects.create(**values)


def make_run(
    delivery: Delivery | None = None,
    repository: str = "acme/webapp",
    pipeline: str = "test",
    status: str = "queued",
    **fields,
) -> Run:
    """A push run of `pipeline` in `repository` with an empty definition and a fresh task
    id, of a new delivery unless given one."""
    values = {
        "event": "push",
        "definition": RunDefinition(),
        "task_id": str(uuid.uuid4()),
        **fields,
    }
    return Run.objects.create(
        delivery=delivery or make_delivery(),
        repository=repository,
        pipeline=pipeline,
        status=status,
        **values,
    )


def timed_run(
    status: str = "succeeded",
    *,
    repository: str = "acme/webapp",
    pipeline: str = "test",
    queue: str = "default",
    queued_ago: float = 600,
    took: float | None = None,
) -> Run:
    """A run queued `queued_ago` seconds ago; a finished one ran for `took` seconds,
    ending a second ago."""
    now = timezone.now()
    started_at = finished_at = None
    if took is not None:
        finished_at = now - timedelta(seconds=1)
        started_at = finished_at - timedelta(seconds=took)
    elif status == "running":
        started_at = now
    return make_run(
        repository=repository,
        pipeline=pipeline,
        status=status,
        queue=queue,
        created_at=now - timedelta(seconds=queued_ago),
        started_at=started_at,
        finished_at=finished_at,
    )


def seen_worker(name: str, queues: str = "*", ago: float = 0) -> WorkerSeen:
    return WorkerSeen.objects.create(
        name=name, queues=queues, seen_at=timezone.now() - timedelta(seconds=ago)
    )


@contextmanager
def database_down() -> Iterator[None]:
    """The default connection pointed where no database answers: a closed port for
    PostgreSQL, a file in a missing folder for SQLite. Needs a transactional test (an
    open test transaction cannot be closed under it)."""
    saved = dict(connection.settings_dict)
    connection.close()
    if connection.vendor == "sqlite":
        connection.settings_dict["NAME"] = "/nonexistent-hookrunner-dir/db.sqlite3"
    else:
        connection.settings_dict.update(HOST="127.0.0.1", PORT="1")
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)


def git(*args: str, cwd: Path) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return result.stdout.strip()


class Origin:
    """A repository standing in for GitHub's copy of acme/webapp."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True)
        git("init", "-q", "-b", "main", cwd=path)

    def commit(self, readme: str, message: str) -> str:
        (self.path / "README").write_text(readme)
        git("add", "README", cwd=self.path)
        git(
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-q",
            "-m",
            message,
            cwd=self.path,
        )
        return git("rev-parse", "HEAD", cwd=self.path)
