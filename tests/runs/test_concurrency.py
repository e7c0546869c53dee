"""Runs sharing a concurrency group take turns; cancel_in_progress lets the newest win."""

import textwrap

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from runner.execution import worker
from runner.models import Run
from runner.runs.concurrency import CLAIMED, WAITING
from runner.runs.queue import try_again_later
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


def test_run_waits_while_another_of_its_group_is_running(deploys):
    first, second = deploys(2)
    Run.objects.filter(pk=first.pk).update(status="running")
    assert worker.execute(second) == WAITING
    assert Run.objects.get(pk=second.pk).status == "queued"


def test_waiting_run_gets_a_later_task_of_its_own(deploys, settings):
    settings.CONCURRENCY_RETRY_SECONDS = 30
    (run,) = deploys(1)
    first_task = run.task_id
    try_again_later(run)
    run.refresh_from_db()
    assert run.task_id != first_task
    later = DBTaskResult.objects.get(id=run.task_id)
    assert later.run_after > timezone.now()
    assert later.queue_name == run.queue


def test_runs_of_a_group_start_oldest_first(deploys):
    first, second = deploys(2)
    assert worker.execute(second) == WAITING
    assert worker.execute(first) == CLAIMED
    assert Run.objects.get(pk=first.pk).status == "succeeded"
    assert worker.execute(second) == CLAIMED
    assert Run.objects.get(pk=second.pk).status == "succeeded"


def test_different_groups_do_not_wait_for_each_other(deploys):
    (staging,) = deploys(1, group="staging")
    Run.objects.filter(pk=staging.pk).update(status="running")
    (production,) = deploys(1, group="production")
    assert worker.execute(production) == CLAIMED


def test_cancel_in_progress_cancels_older_runs_of_the_group_and_says_why(deploys):
    running, queued, newest = deploys(3, cancel_in_progress=True)
    Run.objects.filter(pk=running.pk).update(status="running")
    assert worker.execute(newest) == WAITING
    why = f"cancelled by run {newest.pk}, newer in concurrency group production"
    queued.refresh_from_db()
    assert (queued.status, queued.detail) == ("cancelled", f"{why} before it started")
    assert Run.objects.get(pk=running.pk).cancel_reason() == why
    Run.objects.filter(pk=running.pk).update(status="cancelled")
    assert worker.execute(newest) == CLAIMED


@pytest.mark.django_db(transaction=True)
def test_worker_hands_a_waiting_run_to_a_later_task(deploys, settings):
    settings.CONCURRENCY_RETRY_SECONDS = 60
    first, second = deploys(2)
    Run.objects.filter(pk=first.pk).update(status="running")
    call_command("worker", batch=True, verbosity=0)
    second.refresh_from_db()
    assert second.status == "queued"
    assert DBTaskResult.objects.get(id=second.task_id).status == "READY"
