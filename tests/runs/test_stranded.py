"""A delivery stored but never processed (its web process died between the two) is
processed from its stored payload by a worker's upkeep once it is abandoned, exactly once
however many workers look."""

import logging
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from runner.models import Delivery, Run
from runner.receiver import intake
from runner.receiver.parsing import parse_event
from runner.runs import processing
from runner.runs.processing import ABANDONED_AFTER, process_stranded
from tests.conftest import SignedDelivery
from tests.worker_processes import wait_for, wait_until_finished, worker_environment


def stranded(fixture: str = "push__branch", age: timedelta = 2 * ABANDONED_AFTER) -> Delivery:
    """A delivery stored as the receiver stores it, whose process then died `age` ago."""
    delivery = SignedDelivery.of_fixture(fixture)
    pk = intake._store(parse_event(delivery.headers(), delivery.body))
    Delivery.objects.filter(pk=pk).update(received_at=timezone.now() - age)
    return Delivery.objects.get(pk=pk)


@pytest.mark.django_db
def test_abandoned_delivery_is_processed_from_its_payload_and_its_runs_queued(caplog):
    delivery = stranded()
    with caplog.at_level(logging.WARNING, logger="runner"):
        (outcome,) = process_stranded()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.detail, delivery.attempts) == (
        "accepted",
        "started 2 runs: test, deploy",
        2,
    )
    runs = Run.objects.filter(delivery=delivery).order_by("pk")
    assert [run.pipeline for run in runs] == ["test", "deploy"]
    assert outcome.run_ids == [run.pk for run in runs]
    assert DBTaskResult.objects.filter(id__in=[run.task_id for run in runs]).count() == 2
    (line,) = [r.getMessage() for r in caplog.records if r.name == "runner.runs.processing"]
    assert line.startswith(f"delivery={delivery.delivery_id} event=push ")
    assert "stranded" in line
    assert "outcome=accepted" in line
    assert process_stranded() == []
    assert Run.objects.count() == 2


@pytest.mark.django_db
def test_delivery_still_within_the_abandon_limit_is_left_alone():
    delivery = stranded(age=ABANDONED_AFTER / 2)
    assert process_stranded() == []
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("received", 1)
    assert not Run.objects.exists()


@pytest.mark.django_db
def test_delivery_claimed_moments_ago_is_not_taken_for_abandoned():
    delivery = stranded()
    # Another process claimed it (a redelivery, another worker) and is processing it.
    assert processing.claim(delivery)
    delivery.refresh_from_db()
    assert delivery.status == "received"
    assert not processing.abandoned(delivery)
    assert process_stranded() == []
    assert Delivery.objects.get().attempts == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fixture", "status", "detail"),
    [
        ("ping__default", "accepted", "pong: hook 30 reached hookrunner"),
        ("star__created", "ignored", "hookrunner does not act on star events"),
    ],
)
def test_abandoned_delivery_ends_as_its_receiver_would_have_ended_it(fixture, status, detail):
    delivery = stranded(fixture)
    process_stranded()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.detail) == (status, detail)


@pytest.mark.django_db
def test_abandoned_delivery_that_fails_is_recorded_failed(settings, tmp_path):
    broken = tmp_path / "pipelines.yaml"
    broken.write_text("repositories: [\n")
    settings.PIPELINES_FILE = broken
    delivery = stranded()
    (outcome,) = process_stranded()
    delivery.refresh_from_db()
    assert outcome.status == delivery.status == "failed"
    assert "InvalidPipelines" in delivery.detail
    assert not Run.objects.exists()


@pytest.mark.django_db
def test_abandoned_delivery_whose_payload_is_no_longer_readable_is_recorded_failed():
    delivery = stranded()
    Delivery.objects.filter(pk=delivery.pk).update(payload={"ref": 5})
    assert len(process_stranded()) == 1
    delivery.refresh_from_db()
    assert delivery.status == "failed"
    assert "push payload field" in delivery.detail


@pytest.mark.django_db
def test_an_upkeep_takes_at_most_its_share_oldest_first_and_the_next_the_rest(monkeypatch):
    monkeypatch.setattr(processing, "STRANDED_PER_UPKEEP", 2)
    deliveries = [stranded(age=ABANDONED_AFTER * (10 - n)) for n in range(5)]
    assert [o.delivery_id for o in process_stranded()] == [d.delivery_id for d in deliveries[:2]]
    assert len(process_stranded()) == 2
    assert len(process_stranded()) == 1
    assert {d.status for d in Delivery.objects.filter(pk__in=[d.pk for d in deliveries])} == {
        "accepted"
    }


def in_threads(count: int, call) -> list:
    results, errors = [None] * count, []

    def one(index: int) -> None:
        try:
            results[index] = call()
        except Exception as error:  # reported below, in the test's thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=one, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


@pytest.mark.django_db(transaction=True)
def test_two_workers_looking_at_once_process_it_once(monkeypatch):
    delivery = stranded()
    # Both have read the abandoned delivery before either claims it.
    both_read = threading.Barrier(2, timeout=30)
    real_stranded_deliveries = processing.stranded_deliveries

    def read_then_wait(*args, **kwargs):
        found = list(real_stranded_deliveries(*args, **kwargs))
        both_read.wait()
        return found

    monkeypatch.setattr(processing, "stranded_deliveries", read_then_wait)
    outcomes = in_threads(2, process_stranded)
    assert sorted(len(found) for found in outcomes) == [0, 1]
    assert Run.objects.filter(delivery=delivery).count() == 2
    assert DBTaskResult.objects.count() == 2
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("accepted", 2)


@pytest.mark.django_db(transaction=True)
def test_many_workers_looking_at_once_process_each_delivery_once():
    deliveries = [stranded() for _ in range(5)]
    outcomes = in_threads(6, process_stranded)
    assert sum(len(found) for found in outcomes) == 5
    assert Run.objects.count() == 10
    for delivery in deliveries:
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts) == ("accepted", 2)


@pytest.mark.django_db(transaction=True)
def test_a_workers_upkeep_processes_a_stranded_delivery_and_its_run_runs(
    pipelines, worker_processes, tmp_path
):
    path = pipelines("""\
        ci:
          on: {push: null}
          steps: [{name: build, run: echo built}]
        """)
    delivery = stranded()
    env = worker_environment(
        path, tmp_path / "workspaces", REAP_SECONDS=0.2, WORKER_BEAT_SECONDS=0.1
    )
    worker_processes.start(env)
    run = wait_for(lambda: Run.objects.filter(delivery=delivery).first(), "run queued", 30)
    (finished,) = wait_until_finished([run.pk], seconds=60)
    assert finished.status == "succeeded"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.detail) == ("accepted", "started 1 run: ci")
