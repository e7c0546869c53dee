from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from runner.models import Delivery, LogChunk, RejectedRequest, Run, Step
from tests.conftest import SignedDelivery

pytestmark = pytest.mark.django_db


def age(queryset, days: int, field: str = "received_at") -> None:
    queryset.update(**{field: timezone.now() - timedelta(days=days)})


@pytest.fixture
def history(post_delivery):
    """An old finished delivery with output, an old one with a queued run, a recent one."""
    old, active, recent = (SignedDelivery.of_fixture("push__branch") for _ in range(3))
    for delivery in (old, active, recent):
        post_delivery(delivery)
    post_delivery(SignedDelivery.of_fixture("push__branch", secret="wrong"))
    for run in Run.objects.filter(delivery__delivery_id=old.delivery_id):
        run.status = "succeeded"
        run.save()
        step = Step.objects.create(run=run, index=0, name="s", status="succeeded")
        LogChunk.objects.create(step=step, seq=0, text="output\n")
    age(Delivery.objects.filter(delivery_id__in=[old.delivery_id, active.delivery_id]), 100)
    age(RejectedRequest.objects.all(), 100)
    return old, active, recent


def test_purge_deletes_old_finished_history_with_its_runs_and_output(history, capsys):
    old, active, recent = history
    call_command("purge", days=90)
    remaining = set(Delivery.objects.values_list("delivery_id", flat=True))
    assert remaining == {active.delivery_id, recent.delivery_id}
    assert not Run.objects.filter(delivery__delivery_id=old.delivery_id).exists()
    assert not LogChunk.objects.exists()
    assert not RejectedRequest.objects.exists()
    assert "deleted, from before" in capsys.readouterr().out


def test_purge_keeps_a_delivery_whose_run_is_still_queued(history):
    _, active, _ = history
    call_command("purge", days=90)
    assert (
        Run.objects.filter(delivery__delivery_id=active.delivery_id, status="queued").count() == 2
    )


def test_purge_deletes_finished_tasks_but_not_waiting_ones(history):
    DBTaskResult.objects.update(
        status="SUCCESSFUL", finished_at=timezone.now() - timedelta(days=100)
    )
    waiting = DBTaskResult.objects.first()
    DBTaskResult.objects.filter(pk=waiting.pk).update(status="READY", finished_at=None)
    call_command("purge", days=90)
    assert list(DBTaskResult.objects.values_list("pk", flat=True)) == [waiting.pk]


def test_dry_run_counts_and_deletes_nothing(history, capsys):
    call_command("purge", days=90, dry_run=True)
    assert capsys.readouterr().out.startswith("would delete, from before")
    assert Delivery.objects.count() == 3
    assert RejectedRequest.objects.count() == 1
