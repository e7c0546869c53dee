"""Runs sharing a concurrency group take turns, oldest first, each queued by the end of
the one before; cancel_in_progress lets the newest win."""

import textwrap

import pytest
from django.core.management import call_command
from django_tasks_db.models import DBTaskResult

from runner.execution import worker
from runner.models import Run
from runner.runs import lifecycle
from tests.conftest import SignedDelivery

pytestmark = pytest.mark.django_db


@pytest.fixture
def deploys(settings, tmp_path, post_delivery):
    """Queue `count` deploy runs of one group, oldest first."""
    settings.WORKSPACES_DIR = tmp_path / "workspaces"

    def queue(count: int, cancel_in_progress: bool = False, group: str = "production"):
        path = tmp_path / "pipelines.yaml"
        cancel = "true" if cancel_in_progress else "false"
        path.write_text(
            textwrap.dedent(f"""\
                repositories:
                  acme/webapp:
                    pipelines:
                      deploy:
                        on: {{push: null}}
                        concurrency: {{group: {group}, cancel_in_progress: {cancel}}}
                        steps: [{{name: ship, run: echo shipped}}]
                """)
            .replace("True", "true")
            .replace("False", "false")
        )
        settings.PIPELINES_FILE = path
        runs = []
        for _ in range(count):
            response = post_delivery(SignedDelivery.of_fixture("push__branch"))
            runs.extend(Run.objects.filter(pk__in=response.json()["runs"]))
        return runs

    return queue


def statuses(*runs: Run) -> list[tuple[str, str]]:
    return [
        (run.status, run.waiting_for)
        for run in Run.objects.filter(pk__in=[r.pk for r in runs]).order_by("pk")
    ]


def has_ready_task(run: Run) -> bool:
    run.refresh_from_db()
    return DBTaskResult.objects.filter(id=run.task_id, status="READY").exists()


def test_the_first_run_of_a_free_group_is_queued_and_the_next_waits_without_a_task(deploys):
    first, second = deploys(2)
    assert statuses(first, second) == [("queued", ""), ("waiting", "turn")]
    assert has_ready_task(first)
    second.refresh_from_db()
    assert second.task_id is None
    assert second.detail == "waiting for its turn in concurrency group production"


def test_the_end_of_a_run_queues_the_next_of_its_group_at_once(deploys):
    first, second, third = deploys(3)
    assert worker.execute(first)
    assert statuses(first, second, third) == [
        ("succeeded", ""),
        ("queued", ""),
        ("waiting", "turn"),
    ]
    assert has_ready_task(second)
    assert worker.execute(second)
    assert statuses(second, third) == [("succeeded", ""), ("queued", "")]


def test_a_run_waits_while_another_of_its_group_is_running(deploys):
    (first,) = deploys(1)
    lifecycle.claim(first, "w:1")
    (second,) = deploys(1)
    assert statuses(second) == [("waiting", "turn")]
    lifecycle.finish(first, "failed", "step ship failed with exit code 1")
    assert statuses(second) == [("queued", "")]


def test_cancelling_the_queued_run_of_a_group_queues_the_next(deploys):
    first, second = deploys(2)
    assert lifecycle.cancel(first) == lifecycle.Cancel.CANCELLED
    assert statuses(first, second) == [("cancelled", ""), ("queued", "")]
    assert has_ready_task(second)


def test_cancelling_a_waiting_run_leaves_the_turn_where_it_is(deploys):
    first, second, third = deploys(3)
    lifecycle.cancel(second)
    assert statuses(first, second, third) == [
        ("queued", ""),
        ("cancelled", ""),
        ("waiting", "turn"),
    ]
    assert worker.execute(first)
    assert statuses(third) == [("queued", "")]


def test_different_groups_do_not_wait_for_each_other(deploys):
    (staging,) = deploys(1, group="staging")
    lifecycle.claim(staging, "w:1")
    (production,) = deploys(1, group="production")
    assert statuses(production) == [("queued", "")]


def test_a_re_run_waits_for_its_turn_too(deploys):
    (first,) = deploys(1)
    lifecycle.claim(first, "w:1")
    again = lifecycle.rerun(first, by="alice")
    assert statuses(again) == [("waiting", "turn")]
    lifecycle.finish(first, "succeeded", "1 step succeeded")
    assert statuses(again) == [("queued", "")]


def test_cancel_in_progress_cancels_older_runs_of_the_group_and_says_why(deploys):
    running, waiting = deploys(2)
    lifecycle.claim(running, "w:1")
    (newest,) = deploys(1, cancel_in_progress=True)
    why = f"cancelled by run {newest.pk}, newer in concurrency group production"
    waiting.refresh_from_db()
    assert (waiting.status, waiting.detail) == ("cancelled", f"{why} before it started")
    assert Run.objects.get(pk=running.pk).cancel_reason() == why
    assert statuses(newest) == [("waiting", "turn")]
    lifecycle.finish(running, "cancelled", f"{why} during step ship")
    assert statuses(newest) == [("queued", "")]


def test_cancel_in_progress_with_nothing_running_starts_the_newest_at_once(deploys):
    first, second = deploys(2, cancel_in_progress=True)
    assert statuses(first, second) == [("cancelled", ""), ("queued", "")]


@pytest.mark.django_db(transaction=True)
def test_a_worker_runs_a_group_one_by_one_without_waiting_in_between(deploys):
    runs = deploys(3)
    call_command("worker", batch=True, verbosity=0)
    assert statuses(*runs) == [("succeeded", "")] * 3
