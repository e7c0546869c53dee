"""Waking idle workers when work is queued, so a run starts in milliseconds while an idle
worker polls the database only every WORKER_POLL_SECONDS.

Every task enqueued (a run, a commit status, a notification: all go through Django's
`task_enqueued` signal) wakes the workers once it is committed, never before and never
for a transaction rolled back:
- PostgreSQL: `pg_notify` in the enqueuing transaction, which PostgreSQL delivers at
  commit to every session listening on CHANNEL, whatever its machine.
- SQLite: after commit, a datagram to each worker's Unix socket in DATA_DIR/wake/
  (runner.execution.wakeup binds them), the queue's name as payload.
On SQLite a wake-up that fails is only logged: the enqueuing request goes on, and the
workers' poll finds the task anyway. On PostgreSQL `pg_notify` is a statement of the
enqueuing transaction and fails with it.
"""

import errno
import logging
import socket
import threading
import time
from functools import cache
from pathlib import Path

from django.conf import settings
from django.db import connections, router, transaction
from django.tasks.signals import task_enqueued
from django_tasks_db.backend import DatabaseBackend
from django_tasks_db.models import DBTaskResult

logger = logging.getLogger(__name__)

CHANNEL = "hookrunner_work"
# The receiver's hot path enqueues: the workers' sockets are listed only when their folder
# changed, and at least this often.
LIST_SECONDS = 1.0
# A failing wake-up is logged at most this often per process.
LOG_SECONDS = 60.0


def sockets_dir() -> Path:
    return settings.DATA_DIR / "wake"


def connect() -> None:
    task_enqueued.connect(wake_workers, sender=DatabaseBackend, dispatch_uid=CHANNEL)


def wake_workers(sender, task_result, **kwargs) -> None:
    """Wake the workers for the task just enqueued, once its transaction commits."""
    queue = task_result.task.queue_name
    connection = connections[router.db_for_write(DBTaskResult)]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, queue])
    elif connection.vendor == "sqlite":
        transaction.on_commit(
            lambda: _socket_waker().send(queue.encode()), using=connection.alias, robust=True
        )


class SocketWaker:
    """Sends to the workers' sockets through one unbound socket per process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        # A worker whose buffer is full has wake-ups pending already: never wait for it.
        self.socket.setblocking(False)
        self.paths: list[Path] = []
        self.changed = 0
        self.listed_at = -LIST_SECONDS
        self.logged_at = -LOG_SECONDS

    def send(self, payload: bytes) -> None:
        try:
            paths = self._worker_sockets()
        except OSError as error:
            self._complain(sockets_dir(), error)
            return
        for path in paths:
            try:
                self.socket.sendto(payload, str(path))
            except BlockingIOError:
                pass
            except OSError as error:
                self._failed(path, error)

    def _worker_sockets(self) -> list[Path]:
        """The sockets listed again when the folder changed (a worker started or ended),
        and at least every LIST_SECONDS, for a change its coarse mtime did not show."""
        directory = sockets_dir()
        try:
            changed = directory.stat().st_mtime_ns
        except FileNotFoundError:
            return []  # no worker has started yet
        with self.lock:
            if changed != self.changed or time.monotonic() - self.listed_at >= LIST_SECONDS:
                self.paths = list(directory.glob("*.sock"))
                self.changed, self.listed_at = changed, time.monotonic()
            return self.paths

    def _failed(self, path: Path, error: OSError) -> None:
        if error.errno in (errno.ECONNREFUSED, errno.ENOENT):
            # Its worker is gone (killed: one that exits removes its socket). Removing
            # it changes the folder, which is then listed again.
            path.unlink(missing_ok=True)
        else:
            self._complain(path, error)

    def _complain(self, path: Path, error: OSError) -> None:
        if time.monotonic() - self.logged_at >= LOG_SECONDS:
            self.logged_at = time.monotonic()
            logger.warning("could not wake the workers at %s: %s", path, error)


@cache
def _socket_waker() -> SocketWaker:
    return SocketWaker()
