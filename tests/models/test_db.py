"""SQLite writers take turns: threads on a lock, processes on an flock of a file."""

import fcntl
import os
import subprocess
import sys
import threading

import pytest
from django.db import connections

from runner.models import db
from runner.models.db import SQLiteWriter

HOLD_UNTIL_TOLD = """
import fcntl, sys
with open(sys.argv[1], "a") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    print("locked", flush=True)
    sys.stdin.readline()
"""


def is_locked(path) -> bool:
    with open(path, "a") as other:
        try:
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(other, fcntl.LOCK_UN)
        return False


def test_the_file_is_locked_while_held_and_once_however_nested(tmp_path):
    path = tmp_path / "db.sqlite3-writer.lock"
    writer = SQLiteWriter()
    with writer.held(str(path)):
        with writer.held(str(path)):
            assert is_locked(path)
        assert is_locked(path)
    assert not is_locked(path)


def test_a_writer_waits_for_another_process_to_let_go(tmp_path):
    path = tmp_path / "db.sqlite3-writer.lock"
    other = subprocess.Popen(
        [sys.executable, "-c", HOLD_UNTIL_TOLD, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert other.stdout.readline() == "locked\n"
    entered = threading.Event()

    def write() -> None:
        with SQLiteWriter().held(str(path)):
            entered.set()

    writer = threading.Thread(target=write)
    writer.start()
    assert not entered.wait(0.3)
    other.communicate("go\n")
    writer.join(10)
    assert entered.is_set()


def test_each_process_opens_its_own_lock_file(tmp_path, monkeypatch):
    # A descriptor shared across fork would share its lock with the parent's.
    path = str(tmp_path / "db.sqlite3-writer.lock")
    writer = SQLiteWriter()
    with writer.held(path):
        inherited = writer.descriptor
    monkeypatch.setattr(os, "getpid", lambda: -1)
    with writer.held(path):
        assert writer.descriptor != inherited


@pytest.mark.django_db
def test_write_transaction_locks_the_file_next_to_the_database(monkeypatch):
    connection = connections["default"]
    if connection.vendor != "sqlite" or connection.is_in_memory_db():
        pytest.skip("only a SQLite file has a lock file")
    opened = set()
    real = SQLiteWriter._descriptor
    monkeypatch.setattr(
        SQLiteWriter, "_descriptor", lambda self, path: opened.add(path) or real(self, path)
    )
    with db.write_transaction():
        assert is_locked(f"{connection.settings_dict['NAME']}-writer.lock")
    assert opened == {f"{connection.settings_dict['NAME']}-writer.lock"}


FILL_UNTIL_FULL = """
import resource, signal, sqlite3, sys
path, init_command = sys.argv[1], sys.argv[2]
database = sqlite3.connect(path, isolation_level=None)
database.executescript(init_command)
database.execute("CREATE TABLE chunk (text TEXT)")
database.execute("INSERT INTO chunk VALUES ('before')")
# A disk with 2 MB left: writing past it fails with EFBIG, as ENOSPC would fail it.
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (2_000_000, 2_000_000))
try:
    for _ in range(100):
        database.execute("INSERT INTO chunk VALUES (?)", ["x" * 100_000])
except sqlite3.OperationalError as error:
    print("refused:", error)
print("read back:", database.execute("SELECT text FROM chunk LIMIT 1").fetchone()[0])
"""


def test_a_database_that_cannot_grow_refuses_the_write_and_still_reads(tmp_path, settings):
    # hookrunner's pragmas read pages through a memory map: an I/O error there would be
    # a signal that kills the process. Writes go through write(), and fail as errors.
    init_command = settings.DATABASES["default"].get("OPTIONS", {}).get("init_command")
    if init_command is None:
        pytest.skip("SQLite's pragmas")
    assert "mmap_size" in init_command
    done = subprocess.run(
        [sys.executable, "-c", FILL_UNTIL_FULL, str(tmp_path / "db.sqlite3"), init_command],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    refused, read_back = done.stdout.splitlines()
    assert refused.startswith("refused: ")  # EFBIG: "disk I/O error"; ENOSPC: "... is full"
    assert read_back == "read back: before"
