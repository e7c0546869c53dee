"""An outgoing request whose worker died mid-send gets a new task; one whose task still
waits or runs is left alone."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from runner.models import Outgoing
from runner.outgoing.queue import requeue_lost, send_outgoing
from tests.rows import make_run

pytestmark = pytest.mark.django_db

LONG_AGO = timedelta(hours=1)


@pytest.fixture
def pending() -> Outgoing:
    """A pending commit status created an hour ago, its first task already gone."""
    outgoing = Outgoing.objects.create(
        run=make_run(), kind="commit_status", url="http://127.0.0.1:9/statuses", body={}
    )
    Outgoing.objects.filter(pk=outgoing.pk).update(created_at=timezone.now() - LONG_AGO)
    DBTaskResult.objects.all().delete()
    return outgoing


def tasks_for(outgoing: Outgoing) -> list[str]:
    tasks = DBTaskResult.objects.filter(task_path=send_outgoing.module_path)
    return [task.status for task in tasks if task.args_kwargs["args"][0] == outgoing.pk]


def test_a_pending_request_without_a_task_gets_a_new_one(pending):
    assert requeue_lost() == [pending.pk]
    assert tasks_for(pending) == ["READY"]
    assert requeue_lost() == []


def test_a_task_left_running_by_a_dead_worker_is_failed_and_replaced(pending):
    send_outgoing.enqueue(pending.pk, 0)
    DBTaskResult.objects.update(status="RUNNING", started_at=timezone.now() - LONG_AGO)
    assert requeue_lost() == [pending.pk]
    assert sorted(tasks_for(pending)) == ["FAILED", "READY"]


def test_a_request_whose_task_waits_or_runs_now_is_left_alone(pending):
    send_outgoing.enqueue(pending.pk, 0)
    assert requeue_lost() == []
    DBTaskResult.objects.update(status="RUNNING", started_at=timezone.now())
    assert requeue_lost() == []
    assert tasks_for(pending) == ["RUNNING"]


def test_sent_requests_and_fresh_ones_are_not_touched(pending):
    Outgoing.objects.filter(pk=pending.pk).update(state="sent")
    fresh = Outgoing.objects.create(run=pending.run, kind="notification", url="x", body={})
    DBTaskResult.objects.all().delete()
    assert requeue_lost() == []
    assert tasks_for(fresh) == []
