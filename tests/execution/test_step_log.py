"""A step's output through StepLog into LogChunk rows, read back from the database."""

import re
import tracemalloc
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from runner.execution import step_log
from runner.execution.step_log import StepLog
from runner.models import LogChunk, Step, db
from tests.rows import make_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def step() -> Step:
    return Step.objects.create(run=make_run(pipeline="ci"), index=0, name="build")


@pytest.fixture
def clock(monkeypatch) -> SimpleNamespace:
    """StepLog's time, moved by the test: flushes by time without sleeping."""
    clock = SimpleNamespace(now=0.0)
    clock.monotonic = lambda: clock.now
    monkeypatch.setattr(step_log, "time", clock)
    return clock


@pytest.fixture
def flush_every_write(monkeypatch) -> None:
    monkeypatch.setattr(step_log, "FLUSH_SECONDS", 0)


def texts(step: Step) -> list[str]:
    return list(LogChunk.objects.filter(step=step).values_list("text", flat=True))


def stored(step: Step) -> str:
    return "".join(texts(step))


def logged(step: Step, *writes: bytes, limit: int = 1000, secrets=()) -> str:
    log = StepLog(step, list(secrets), limit)
    for data in writes:
        log.write(data)
    log.end()
    log.store_rest()
    return stored(step)


MARKED = re.compile(
    r"(.*)\n\[hookrunner: (\d+) bytes of output dropped here;"
    r" the first (\d+) and the last (\d+) bytes are kept\]\n(.*)",
    re.DOTALL,
)


def marker(dropped: int, head: int, tail: int) -> str:
    return (
        f"\n[hookrunner: {dropped} bytes of output dropped here;"
        f" the first {head} and the last {tail} bytes are kept]\n"
    )


def test_output_within_the_limit_is_stored_whole(step, flush_every_write):
    writes = [b"x" * 30, b"y" * 40, b"z" * 30]  # exactly the limit, past its half
    assert logged(step, *writes, limit=100) == "x" * 30 + "y" * 40 + "z" * 30
    assert (step.output_bytes, step.dropped_bytes) == (100, 0)


@pytest.mark.parametrize("flushes", ["at_close", "every_write"])
def test_past_the_limit_head_and_tail_are_kept_with_the_dropped_count_between(
    step, monkeypatch, flushes
):
    if flushes == "every_write":
        monkeypatch.setattr(step_log, "FLUSH_SECONDS", 0)
    lines = [f"line {n:03}\n".encode() for n in range(100)]  # 9 bytes each, 900 in all
    text = b"".join(lines).decode()
    assert logged(step, *lines, limit=100) == text[:50] + marker(800, 50, 50) + text[-50:]
    assert (step.output_bytes, step.dropped_bytes) == (900, 800)
    assert marker(800, 50, 50) in texts(step), "the marker is a chunk of its own"


@pytest.mark.parametrize("flush_bytes", [1, 5, 30, 1000])
@pytest.mark.parametrize("write_bytes", [1, 2, 7, 64])
def test_what_is_kept_does_not_depend_on_how_the_output_was_split(
    step, monkeypatch, flush_bytes, write_bytes
):
    monkeypatch.setattr(step_log, "FLUSH_BYTES", flush_bytes)
    text = "".join("ab\n€é😀"[n * n % 6] for n in range(400))  # 1 to 4 bytes a character
    data, limit = text.encode(), 41
    head = data[: limit // 2].decode(errors="ignore")  # whole characters only
    tail = data[len(data) - limit + len(head.encode()) :].decode(errors="ignore")
    dropped = len(data) - len(head.encode()) - len(tail.encode())
    writes = [data[at : at + write_bytes] for at in range(0, len(data), write_bytes)]
    assert logged(step, *writes, limit=limit) == (
        head + marker(dropped, len(head.encode()), len(tail.encode())) + tail
    )


def test_tail_keeps_following_live_output_past_the_limit(step, flush_every_write):
    log = StepLog(step, [], 100)
    written = "h" * 200
    log.write(written.encode())
    for n in range(300):
        line = f"progress {n}\n"
        log.write(line.encode())
        written += line
        head, dropped, kept_head, kept_tail, tail = MARKED.fullmatch(stored(step)).groups()
        assert (head, int(kept_head)) == ("h" * 50, 50)
        assert tail.endswith(line), "the latest output is stored as it comes"
        assert int(kept_tail) == len(tail)
        assert 50 + int(dropped) + len(tail) == len(written)
        _head, _marker, oldest, *newer = texts(step)
        assert len("".join(newer)) < 50 <= len(oldest + "".join(newer)), (
            "the tail keeps no chunk it does not need until the step ends"
        )
    assert LogChunk.objects.filter(step=step).count() < 10, "passed chunks are deleted"
    log.end()
    log.store_rest()
    dropped = len(written) - 100
    assert stored(step) == "h" * 50 + marker(dropped, 50, 50) + written[-50:]
    assert step.dropped_bytes == dropped


def test_multibyte_characters_count_as_bytes(step):
    # 4 characters but 12 bytes: past a 10-byte limit; a character is never split.
    assert logged(step, "€€€€".encode(), limit=10) == "€" + marker(3, 3, 6) + "€€"
    assert (step.output_bytes, step.dropped_bytes) == (12, 3)


def test_multibyte_characters_split_across_writes_are_stored_whole(step, flush_every_write):
    assert logged(step, b"\xe2\x82", b"\xac and \xc3", b"\xa9") == "€ and é"


def test_secret_split_across_writes_is_masked(step, flush_every_write):
    writes = [b"token=hun", b"ter2; again: h", b"unter2\n"]
    assert logged(step, *writes, secrets=["hunter2"]) == "token=***; again: ***\n"


def test_secret_is_masked_before_the_limit_cuts_the_output(step):
    writes = [b"aaa", b"hunter2", b"b" * 8]
    text = logged(step, *writes, limit=10, secrets=["hunter2"])
    assert text == "aaa**" + marker(4, 5, 5) + "bbbbb"


def test_invalid_utf8_and_nul_are_stored_as_replacement_characters(step):
    text = logged(step, b"ok \xff\xfe end\x00\n", b"cut \xe2\x82")
    assert text == "ok \ufffd\ufffd end\ufffd\ncut \ufffd"


def test_quiet_poll_flushes_pending_output_after_half_a_second(step, clock):
    log = StepLog(step, [], 1000)
    log.write(b"compiling\n")
    clock.now = 0.4
    log.write(b"")
    assert stored(step) == ""
    clock.now = 0.5
    log.write(b"")
    assert stored(step) == "compiling\n"


def test_a_large_output_stays_within_the_limit_in_the_database_and_in_memory(step):
    limit, total, piece = 1024 * 1024, 50 * 1024 * 1024, b"0123456789abcde\n" * 4096
    log = StepLog(step, [], limit)
    tracemalloc.start()
    try:
        for _ in range(total // len(piece)):
            log.write(piece)
        log.end()
        log.store_rest()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # A flush's text, and the statement the database driver builds of it (PostgreSQL's
    # holds a copy): a few megabytes, whatever went through.
    assert peak < 3 * step_log.FLUSH_BYTES, "memory holds about one flush, whatever went through"
    assert (step.output_bytes, step.dropped_bytes) == (total, total - limit)
    half = piece.decode() * (limit // 2 // len(piece))
    assert stored(step) == half + marker(total - limit, limit // 2, limit // 2) + half


def test_a_flood_is_stored_in_few_transactions_in_pieces_each_within_a_chunk(step):
    # As the pipe gives it: reads of up to 1 MiB that do not end at a line's end.
    data = b"".join(f"line {n}\n".encode() for n in range(600_000))
    reads = [data[at : at + 1_000_003] for at in range(0, len(data), 1_000_003)]
    log = StepLog(step, [], 2 * len(data))
    with CaptureQueriesContext(connection) as queries:
        for read in reads:
            log.write(read)
        log.end()
        log.store_rest()
    inserts = [q for q in queries if q["sql"].startswith("INSERT")]
    assert len(inserts) <= len(data) // step_log.FLUSH_BYTES + 1, "one per flush, not per piece"
    chunks = texts(step)
    assert "".join(chunks) == data.decode(), "every byte, in order"
    assert all(len(chunk.encode()) <= LogChunk.MOST_BYTES for chunk in chunks)
    full = -(-len(data) // LogChunk.MOST_BYTES)
    assert len(chunks) <= full + len(inserts), "full chunks but the last of each flush"


@pytest.mark.parametrize("write_bytes", [1, 5, 64])
def test_pieces_hold_whole_characters_within_their_size(step, monkeypatch, write_bytes):
    monkeypatch.setattr(step_log, "PIECE_BYTES", 7)
    monkeypatch.setattr(step_log, "FLUSH_BYTES", 30)
    text = "".join("ab\n€é😀"[n * n % 6] for n in range(400))  # 1 to 4 bytes a character
    data = text.encode()
    writes = [data[at : at + write_bytes] for at in range(0, len(data), write_bytes)]
    assert logged(step, *writes, limit=10 * len(data)) == text
    assert all(0 < len(chunk.encode()) <= 7 for chunk in texts(step))


def test_the_tail_of_a_flood_keeps_whole_pieces_and_cuts_only_its_oldest(step, monkeypatch):
    monkeypatch.setattr(step_log, "PIECE_BYTES", 10)
    text = "".join(f"{n:04}\n" for n in range(200))  # 1000 bytes, flushed at once
    assert logged(step, text.encode(), limit=96) == (text[:48] + marker(904, 48, 48) + text[-48:])
    # The 952 bytes past the head came as pieces of 10 and a last one of 2.
    assert [len(chunk) for chunk in texts(step)[6:]] == [6, 10, 10, 10, 10, 2]


def test_output_is_written_holding_the_lock_writers_take_turns_on(step, flush_every_write):
    # Receivers and workers queue on it (runner.models.db): a step's output, the largest
    # writes of all, too.
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's writers' lock")
    unlocked = []

    def record(execute, sql, params, many, context):
        writes = "runner_logchunk" in sql and not sql.lstrip().upper().startswith("SELECT")
        if writes and db._sqlite_writer.depth == 0:
            unlocked.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        kept = logged(step, b"x" * 3000, b"y" * 3000, limit=1000)  # head, marker, tail, cut
    assert MARKED.fullmatch(kept)
    assert unlocked == []
