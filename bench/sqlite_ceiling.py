"""How fast SQLite alone stores output as hookrunner stores it: the ceiling of capture.

The same bytes in the same rows (LogChunk's table and indexes, copied from the migrated
database), as many rows a transaction as the worker's StepLog puts in one, under the
pragmas of settings.DATABASES, from Python's sqlite3 with no worker, pipe or Django in
the way, into a fresh file beside the bench's database."""

import sqlite3
import time
from pathlib import Path

from django.conf import settings

from runner.execution.step_log import FLUSH_BYTES, PIECE_BYTES
from runner.models import LogChunk


def table_sql(database: Path) -> list[str]:
    """LogChunk's CREATE TABLE and CREATE INDEX statements in the migrated `database`."""
    with sqlite3.connect(database) as migrated:
        rows = migrated.execute(
            "SELECT sql FROM sqlite_master"
            " WHERE tbl_name = ? AND sql IS NOT NULL ORDER BY type DESC",
            [LogChunk._meta.db_table],
        )
        return [sql for (sql,) in rows]


def open_like_hookrunner(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.executescript(settings.DATABASES["default"]["OPTIONS"]["init_command"])
    return connection


def ceiling_mb_s(database: Path, text: str, total_bytes: int) -> float:
    """MB/s of SQLite storing `total_bytes` of `text` (a piece of PIECE_BYTES) as the
    worker stores a flood: FLUSH_BYTES a transaction, in rows of one piece each."""
    assert len(text.encode()) == PIECE_BYTES
    path = database.with_name("ceiling.sqlite3")
    connection = open_like_hookrunner(path)
    for sql in table_sql(database):
        connection.execute(sql)
    table = LogChunk._meta.db_table
    insert = f"INSERT INTO {table} (step_id, seq, text, created_at) VALUES (1, ?, ?, 0)"  # noqa: S608
    rows_per_transaction = FLUSH_BYTES // PIECE_BYTES
    rows = total_bytes // PIECE_BYTES
    started = time.perf_counter()
    for first in range(0, rows, rows_per_transaction):
        connection.execute("BEGIN IMMEDIATE")
        last = min(first + rows_per_transaction, rows)
        connection.executemany(insert, ((seq, text) for seq in range(first, last)))
        connection.execute("COMMIT")
    seconds = time.perf_counter() - started
    connection.close()
    for leftover in path.parent.glob(path.name + "*"):
        leftover.unlink()
    return rows * PIECE_BYTES / 1_000_000 / seconds
