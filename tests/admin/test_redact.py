"""Redacting a leaked value from stored output: within chunks, across them, never kept."""

import logging
import random

import pytest
from django.apps import apps
from django.db import connection

from runner.admin import redact as redact_module
from runner.admin.redact import redact, redacted_chunks
from runner.models import LogChunk, Redaction, Run, Step
from tests.rows import make_run

pytestmark = pytest.mark.django_db

SECRET = "s3cret-Token-42"


def make_step(*texts: str, run: Run | None = None) -> Step:
    run = run or make_run()
    step = Step.objects.create(run=run, index=run.steps.count(), name="build")
    LogChunk.objects.bulk_create(
        LogChunk(step=step, seq=seq, text=text) for seq, text in enumerate(texts)
    )
    return step


def texts(step: Step) -> list[str]:
    return list(step.chunks.order_by("seq").values_list("text", flat=True))


@pytest.fixture
def chunk_updates() -> list[str]:
    """The UPDATE statements run against LogChunk rows while the test runs."""
    table = LogChunk._meta.db_table
    updates: list[str] = []

    def record(execute, sql, params, many, context):
        if sql.startswith("UPDATE") and table in sql:
            updates.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        yield updates


def test_a_value_within_one_chunk_is_replaced():
    step = make_step("starting\n", f"export TOKEN={SECRET}\nok\n", "done\n")
    redaction = redact(SECRET, Run.objects.all(), "alice")
    assert texts(step) == ["starting\n", "export TOKEN=***\nok\n", "done\n"]
    assert redaction.chunks_changed == 1


def test_a_value_split_across_two_chunks_is_replaced_where_it_starts():
    step = make_step("login with s3cr", "et-Token-42 now\n")
    redact(SECRET, None, "alice")
    assert texts(step) == ["login with ***", " now\n"]


def test_a_value_across_three_short_chunks_leaves_the_middle_one_empty():
    step = make_step("x s3c", "ret-To", "ken-42 y")
    redaction = redact(SECRET, None, "alice")
    assert texts(step) == ["x ***", "", " y"]
    assert redaction.chunks_changed == 3


def test_a_value_across_many_one_character_chunks():
    step = make_step("<", *SECRET, ">")
    redact(SECRET, None, "alice")
    assert texts(step) == ["<", "***", *[""] * (len(SECRET) - 1), ">"]


def test_several_occurrences_within_and_across_chunks():
    output = f"{SECRET}{SECRET} a {SECRET}\n" * 3 + f"end {SECRET}"
    pieces = [output[at : at + 7] for at in range(0, len(output), 7)]
    step = make_step(*pieces)
    redact(SECRET, None, "alice")
    assert "".join(texts(step)) == output.replace(SECRET, "***")
    assert len(texts(step)) == len(pieces)


def test_an_occurrence_does_not_run_from_one_step_into_the_next():
    run = make_run()
    first = make_step("ends with s3cret-To", run=run)
    second = make_step("ken-42 starts the next step", run=run)
    redaction = redact(SECRET, None, "alice")
    assert texts(first) == ["ends with s3cret-To"]
    assert texts(second) == ["ken-42 starts the next step"]
    assert redaction.chunks_changed == 0


def test_only_the_chosen_runs_change(chunk_updates):
    chosen = [make_step("a", f"{SECRET}\n"), make_step(f"x{SECRET[:5]}", f"{SECRET[5:]}y")]
    others = [make_step(f"{SECRET}\n"), make_step(f"x{SECRET[:5]}", f"{SECRET[5:]}y")]
    quiet = make_step("nothing to see\n", "here either\n")
    runs = Run.objects.filter(pk__in=[step.run_id for step in chosen])
    redaction = redact(SECRET, runs, "alice")
    assert [texts(step) for step in chosen] == [["a", "***\n"], ["x***", "y"]]
    assert [texts(step) for step in others] == [
        [f"{SECRET}\n"],
        [f"x{SECRET[:5]}", f"{SECRET[5:]}y"],
    ]
    assert texts(quiet) == ["nothing to see\n", "here either\n"]
    # Only the rows that changed were written.
    assert redaction.chunks_changed == 3
    assert len(chunk_updates) == 3


def test_all_runs_change_with_none():
    steps = [make_step(f"{SECRET}\n"), make_step(f"{SECRET[:3]}", f"{SECRET[3:]}!")]
    redaction = redact(SECRET, None, "alice")
    assert [texts(step) for step in steps] == [["***\n"], ["***", "!"]]
    assert (redaction.scope, redaction.chunks_changed) == ("all runs", 3)


def test_the_redaction_records_who_where_and_how_many_and_the_value_is_nowhere():
    runs = [make_step(f"a {SECRET} b", f"{SECRET[:4]}", f"{SECRET[4:]}").run for _ in range(3)]
    make_step(f"untouched {SECRET}")
    chosen = Run.objects.filter(pk__in=[run.pk for run in runs])
    redaction = redact(SECRET, chosen, "alice")

    row = Redaction.objects.get()
    assert row == redaction
    assert (row.done_by, row.chunks_changed) == ("alice", 9)
    assert row.scope == "runs " + ", ".join(str(run.pk) for run in runs)
    assert row.done_at is not None
    assert SECRET not in repr(Redaction.objects.values().get())
    # The value stays only where it was not to be redacted: no other row of any table.
    holding = [
        (model.__name__, values)
        for model in apps.get_models()
        for values in model.objects.values()
        if SECRET in repr(values)
    ]
    assert [(name, values["text"]) for name, values in holding] == [
        ("LogChunk", f"untouched {SECRET}")
    ]


def test_scope_names_one_run_a_few_runs_or_counts_many():
    runs = [make_run() for _ in range(25)]
    ids = sorted(run.pk for run in runs)
    scope = lambda chosen: redact(SECRET, Run.objects.filter(pk__in=chosen), "a").scope  # noqa: E731
    assert scope(ids[:1]) == f"run {ids[0]}"
    assert scope(ids[:3]) == f"runs {ids[0]}, {ids[1]}, {ids[2]}"
    assert scope(ids) == "25 runs: " + ", ".join(map(str, ids[:20])) + ", …"
    assert scope([]) == "no runs"


def test_a_redaction_that_finds_nothing_is_recorded_all_the_same(chunk_updates):
    make_step("clean output\n")
    redaction = redact(SECRET, None, "bob")
    assert (redaction.done_by, redaction.chunks_changed) == ("bob", 0)
    assert chunk_updates == []


@pytest.mark.parametrize("value", ["", " ", "\t\n ", "abc", "  abc  ", "a\u00e9c"])
def test_short_or_blank_values_are_refused(value):
    step = make_step("abc  abc  a\u00e9c \t\n ")
    with pytest.raises(ValueError, match="refusing to redact") as refused:
        redact(value, None, "alice")
    assert "abc" not in str(refused.value)
    assert texts(step) == ["abc  abc  a\u00e9c \t\n "]
    assert not Redaction.objects.exists()


def test_four_characters_are_enough():
    step = make_step("key=abcd;", " abcd")
    redact("abcd", None, "alice")
    assert texts(step) == ["key=***;", " ***"]


def test_matching_is_case_sensitive_on_every_database(chunk_updates):
    # SQLite's LIKE would take "secret-token-42" for the value: the value is found exactly.
    lower, upper = SECRET.lower(), SECRET.upper()
    others = make_step(f"{lower}\n", f"{upper[:6]}", f"{upper[6:]}\n")
    mixed = make_step(
        f"{lower} {SECRET}\n", f"{lower[:6]}", f"{lower[6:]} {SECRET[:6]}", SECRET[6:]
    )
    redaction = redact(SECRET, None, "alice")
    assert texts(others) == [f"{lower}\n", f"{upper[:6]}", f"{upper[6:]}\n"]
    assert texts(mixed) == [f"{lower} ***\n", f"{lower[:6]}", f"{lower[6:]} ***", ""]
    assert redaction.chunks_changed == 3
    assert len(chunk_updates) == 3


def test_a_nul_in_the_value_matches_what_step_output_stores_for_it():
    step = make_step("token: ab\ufffdcdef\n")
    redact("ab\x00cdef", None, "alice")
    assert texts(step) == ["token: ***\n"]


def test_the_value_is_in_no_query_and_no_log(settings, caplog):
    make_step(f"{SECRET}\n", f"{SECRET[:5]}", f"{SECRET[5:]}\n")
    settings.DEBUG = True  # Django then records every query with its parameters
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django.db.backends")
    sent: list[tuple[str, object]] = []

    def record(execute, sql, params, many, context):
        sent.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        redaction = redact(SECRET, Run.objects.all(), "alice")
    assert redaction.chunks_changed == 3
    assert "3 chunks changed in 1 step" in caplog.text
    assert "runner_logchunk" in caplog.text  # the SQL log was on
    assert len(sent) > 5 and SECRET not in repr(sent)
    assert SECRET not in caplog.text
    assert SECRET not in repr(connection.queries)


def test_a_failure_within_a_step_leaves_its_chunks_as_they_were(monkeypatch):
    done = make_step(f"{SECRET[:5]}", f"{SECRET[5:]}\n")
    failing = make_step(f"{SECRET[:5]}", f"{SECRET[5:]}\n")
    real = redact_module.redacted_chunks

    def failing_midway(chunks, value):
        for number, change in enumerate(real(chunks, value)):
            if change[0] == failing.chunks.get(seq=0).pk and number == 0:
                yield change
                raise RuntimeError("crashed after the first chunk of the pair")
            yield change

    monkeypatch.setattr(redact_module, "redacted_chunks", failing_midway)
    with pytest.raises(RuntimeError, match="crashed") as crashed:
        redact(SECRET, None, "alice")
    assert SECRET not in str(crashed.value)
    assert texts(done) == ["***", "\n"]
    assert texts(failing) == [f"{SECRET[:5]}", f"{SECRET[5:]}\n"]
    assert Redaction.objects.get().chunks_changed == 2


def test_steps_longer_than_a_read_batch(monkeypatch):
    monkeypatch.setattr(redact_module, "BATCH", 3)
    output = "".join(f"line {n} {SECRET if n % 4 == 0 else 'ok'}\n" for n in range(40))
    step = make_step(*[output[at : at + 11] for at in range(0, len(output), 11)])
    redact(SECRET, None, "alice")
    assert "".join(texts(step)) == output.replace(SECRET, "***")


def test_many_steps_are_searched_a_few_at_a_time(monkeypatch):
    monkeypatch.setattr(redact_module, "SCAN_STEPS", 2)
    steps = [make_step(f"{n} {SECRET[:n]}", f"{SECRET[n:]} {n}") for n in range(1, 8)]
    redaction = redact(SECRET, None, "alice")
    assert [texts(step) for step in steps] == [[f"{n} ***", f" {n}"] for n in range(1, 8)]
    assert redaction.chunks_changed == 14


@pytest.mark.parametrize("value", ["abab", "aabaa", "abba"])
def test_any_chunking_gives_the_redacted_output_in_the_same_chunks(value):
    rng = random.Random(value)  # noqa: S311 - reproducible chunkings, not secrets
    for _ in range(2000):
        output = "".join(rng.choice("ab") for _ in range(rng.randrange(30)))
        cuts = sorted(rng.randrange(len(output) + 1) for _ in range(rng.randrange(8)))
        ends = zip([0, *cuts], [*cuts, len(output)], strict=True)
        pieces = [output[start:end] for start, end in ends]
        changes = dict(redacted_chunks(enumerate(pieces), value))
        new = [changes.get(key, piece) for key, piece in enumerate(pieces)]
        assert "".join(new) == output.replace(value, "***"), (pieces, value)
        assert all(changes[key] != pieces[key] for key in changes)
