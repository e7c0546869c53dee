"""What an idle worker waits on: a wake-up for one of its queues (runner.runs.wakeup sends
them), a signal to stop, or the fallback poll's timeout.

The worker listens before it first looks for work, so work committed between a look that
found nothing and the wait still wakes it. While it cannot listen (PostgreSQL away, the
socket not bound), it only polls, and tries to listen again at each wait; once it listens
again it looks for work at once, since wake-ups sent meanwhile are lost.
"""

import contextlib
import logging
import os
import select
import socket
import time

import psycopg
from django.db import connections, router
from django_tasks_db.models import DBTaskResult

from runner.execution.database import UNAVAILABLE, describe
from runner.runs.wakeup import CHANNEL, sockets_dir

logger = logging.getLogger(__name__)

# A source's answer when wake-ups may have been lost: look for work in every queue.
ANY = None


class PostgresListener:
    """LISTEN on a connection of its own, reconnected when it drops."""

    def __init__(self, alias: str) -> None:
        self.alias = alias
        self.database = None
        self.complained = False

    def listening(self) -> bool:
        return self.database is not None

    def listen(self) -> bool:
        database = connections.create_connection(self.alias)
        try:
            with database.cursor() as cursor:
                cursor.execute(f"LISTEN {CHANNEL}")
        except UNAVAILABLE as error:
            database.close()
            if not self.complained:
                self.complained = True
                logger.warning("worker: cannot listen for wake-ups, polling (%s)", describe(error))
            return False
        self.database, self.complained = database, False
        return True

    def fileno(self) -> int | None:
        if self.database is None:
            return None
        try:
            return self.database.connection.fileno()
        except psycopg.Error:  # the connection is lost: listen again at the next wait
            self.close()
            return None

    def drain(self) -> set[str] | None:
        try:
            return {notify.payload for notify in self.database.connection.notifies(timeout=0)}
        except psycopg.Error:
            self.close()
            return ANY

    def close(self) -> None:
        if self.database is not None:
            with contextlib.suppress(Exception):
                self.database.close()
            self.database = None


class SocketListener:
    """A Unix datagram socket of this process in DATA_DIR/wake/, bound again should its
    file go away."""

    def __init__(self) -> None:
        self.path = sockets_dir() / f"{socket.gethostname()}-{os.getpid()}.sock"
        self.socket: socket.socket | None = None
        self.complained = False

    def listening(self) -> bool:
        return self.socket is not None and self.path.exists()

    def listen(self) -> bool:
        self.close()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self.path.parent.mkdir(mode=0o700, exist_ok=True)
            self.path.unlink(missing_ok=True)  # left by a killed worker of the same pid
            listener.bind(str(self.path))
        except OSError as error:
            listener.close()
            if not self.complained:
                self.complained = True
                logger.warning("worker: cannot listen for wake-ups at %s, polling (%s)",
                               self.path, error)  # fmt: skip
            return False
        listener.setblocking(False)
        self.socket, self.complained = listener, False
        return True

    def fileno(self) -> int | None:
        return self.socket.fileno() if self.socket else None

    def drain(self) -> set[str]:
        queues = set()
        with contextlib.suppress(BlockingIOError):
            while True:
                queues.add(self.socket.recv(256).decode(errors="replace"))
        return queues

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close()
            self.socket = None
            self.path.unlink(missing_ok=True)


class Wakeups:
    """Waits for work on `queues` (with "*", any), or until interrupted by a stop."""

    def __init__(self, queues: list[str]) -> None:
        self.queues = None if "*" in queues else set(queues)
        alias = router.db_for_write(DBTaskResult)
        postgresql = connections[alias].vendor == "postgresql"
        self.source = PostgresListener(alias) if postgresql else SocketListener()
        self.source.listen()
        # Written by a signal handler, so a stop ends the wait at once.
        self.stop_reader, self.stop_writer = os.pipe()
        os.set_blocking(self.stop_writer, False)

    def wait(self, seconds: float) -> None:
        """Until a wake-up for our queues, an interruption, or `seconds` have passed."""
        if not self.source.listening() and self.source.listen():
            return
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            watched = [fd for fd in (self.stop_reader, self.source.fileno()) if fd is not None]
            readable, _, _ = select.select(watched, [], [], left)
            if self.stop_reader in readable:
                return
            if readable and self._wanted(self.source.drain()):
                return

    def _wanted(self, queues: set[str] | None) -> bool:
        return queues is ANY or self.queues is None or bool(queues & self.queues)

    def interrupt(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.write(self.stop_writer, b"!")

    def close(self) -> None:
        self.source.close()
        os.close(self.stop_reader)
        os.close(self.stop_writer)
