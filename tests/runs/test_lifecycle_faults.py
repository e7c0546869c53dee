"""A failure right after a transition writes a run's status leaves nothing stranded: no
run queued without a task, waiting for what has been decided or for a turn nobody holds,
no commit status pending without a task, no ended run without its final status. Either
the whole transition is there, or none of it; what a crash leaves running is the
reaper's, which then does everything that follows."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from runner.config.store import pipelines_store
from runner.models import Decision, Delivery, EnvironmentLock, Outgoing, Run
from runner.models.runs import RunQuerySet
from runner.outgoing.queue import send_outgoing
from runner.runs import lifecycle
from runner.runs.concurrency import has_turn_taken
from runner.runs.deployments import Commit, manual_pipeline, start
from runner.runs.needs import UNDECIDED, newest_needed, verdict
from runner.runs.reaper import reap_stale_runs, requeue_unclaimed
from tests.conftest import SignedDelivery

pytestmark = pytest.mark.django_db

PIPELINES = """\
repositories:
  acme/webapp:
    token_env: HR_FAULT_TOKEN
    report_status: true
    pipelines:
      test:
        on: {push: null}
        steps: [{name: t, run: "true"}]
      deploy:
        on: {push: null}
        needs: test
        concurrency: production
        steps: [{name: d, run: "true"}]
"""


class InjectedFault(Exception):
    pass


@pytest.fixture
def fail_after_status_write(monkeypatch):
    """Arm it with n: the n-th write of a run's status from then on raises once it is made."""
    armed = {"left": 0}

    def counted(write):
        def wrapped(self, *args, **kwargs):
            result = write(self, *args, **kwargs)
            writes_status = write.__name__ != "update" or "status" in kwargs
            if armed["left"] and writes_status:
                armed["left"] -= 1
                if not armed["left"]:
                    raise InjectedFault(f"after {write.__name__}")
            return result

        return wrapped

    for name in ("update", "bulk_create", "create"):
        monkeypatch.setattr(RunQuerySet, name, counted(getattr(RunQuerySet, name)))

    def arm(nth: int = 1) -> None:
        armed["left"] = nth

    return arm


@pytest.fixture
def pushing(post_delivery, settings, tmp_path, monkeypatch):
    """Push to acme/webapp with the given pipelines.yaml; the runs it made, by pipeline."""
    monkeypatch.setenv("HR_FAULT_TOKEN", "t")

    def push(pipelines: str) -> dict[str, Run]:
        path = tmp_path / "pipelines.yaml"
        path.write_text(pipelines)
        settings.PIPELINES_FILE = path
        response = post_delivery(SignedDelivery.of_fixture("push__branch"))
        return {run.pipeline: run for run in Run.objects.filter(pk__in=response.json()["runs"])}

    return push


@pytest.fixture
def pushed(pushing):
    """Push to acme/webapp; the runs it made, by pipeline."""

    def push() -> dict[str, Run]:
        return pushing(PIPELINES)

    return push


def stranded() -> list[str]:
    """What is left that nothing will ever move on."""
    ready = {
        str(pk) for pk in DBTaskResult.objects.filter(status="READY").values_list("id", flat=True)
    }
    problems = [
        f"run {r.pk} queued without a task" for r in Run.objects.queued() if r.task_id not in ready
    ]
    for run in Run.objects.waiting():
        if run.waiting_for == Run.WaitingFor.NEEDS:
            if verdict(run.definition.needs, newest_needed([run])) != UNDECIDED:
                problems.append(f"run {run.pk} waits for needs that are decided")
        elif run.waiting_for == Run.WaitingFor.TURN and not has_turn_taken(run.concurrency_group):
            problems.append(f"run {run.pk} waits for a turn nobody holds")
        elif run.waiting_for == Run.WaitingFor.APPROVAL and run.approval_expires_at is None:
            problems.append(f"run {run.pk} waits for an approval that never expires")
        elif (
            run.waiting_for == Run.WaitingFor.LOCK
            and not EnvironmentLock.objects.filter(
                repository=run.repository, environment=run.environment
            ).exists()
        ):
            problems.append(f"run {run.pk} waits for a lock nobody holds")
    sending = DBTaskResult.objects.filter(task_path=send_outgoing.module_path, status="READY")
    with_task = {task.args_kwargs["args"][0] for task in sending}
    for outgoing in Outgoing.objects.filter(state=Outgoing.State.PENDING):
        if outgoing.pk not in with_task:
            problems.append(f"outgoing {outgoing.pk} pending without a task")
    for run in Run.objects.filter(status__in=Run.ENDED):
        states = [o.body["state"] for o in run.outgoing.all()]
        if not set(states) - {"pending"}:
            problems.append(f"run {run.pk} ended without its final status")
    return problems


def status_of(run: Run) -> str:
    return Run.objects.get(pk=run.pk).status


def reap_silent(run: Run) -> None:
    """The run's worker died: silent long enough, the reaper ends it."""
    Run.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert [reaped.run_id for reaped in reap_stale_runs()] == [run.pk]


def claimed(run: Run) -> Run:
    assert lifecycle.claim(run, "box:1")
    return run


def test_created_runs_fail_with_their_delivery_and_leave_nothing(pushed, fail_after_status_write):
    fail_after_status_write(1)
    assert pushed() == {}
    assert not Run.objects.exists() and not Outgoing.objects.exists()
    assert not DBTaskResult.objects.exists()
    assert stranded() == []


@pytest.mark.parametrize("nth", [1, 2], ids=["its own end", "releasing what needs it"])
def test_a_finish_that_fails_leaves_the_run_running_for_the_reaper(
    pushed, fail_after_status_write, nth
):
    runs = pushed()
    test = claimed(runs["test"])
    fail_after_status_write(nth)
    with pytest.raises(InjectedFault):
        lifecycle.finish(test, "succeeded", "1 step succeeded")
    assert (status_of(test), status_of(runs["deploy"])) == ("running", "waiting")
    assert stranded() == []
    reap_silent(test)
    assert (status_of(test), status_of(runs["deploy"])) == ("error", "skipped")
    assert stranded() == []


def test_a_skip_that_fails_is_undone_with_the_end_that_caused_it(pushed, fail_after_status_write):
    runs = pushed()
    test = claimed(runs["test"])
    fail_after_status_write(2)
    with pytest.raises(InjectedFault):
        lifecycle.finish(test, "failed", "step t failed with exit code 1")
    assert (status_of(test), status_of(runs["deploy"])) == ("running", "waiting")
    assert stranded() == []


@pytest.mark.parametrize("nth", [1, 2], ids=["its own end", "giving the turn"])
def test_an_end_that_fails_to_give_the_turn_on_gives_nothing(pushed, fail_after_status_write, nth):
    first = pushed()
    lifecycle.finish(claimed(first["test"]), "succeeded", "1 step succeeded")
    deploy = claimed(first["deploy"])
    second = pushed()
    lifecycle.finish(claimed(second["test"]), "succeeded", "1 step succeeded")
    assert (status_of(second["deploy"]), stranded()) == ("waiting", [])
    fail_after_status_write(nth)
    with pytest.raises(InjectedFault):
        lifecycle.finish(deploy, "succeeded", "1 step succeeded")
    assert (status_of(deploy), status_of(second["deploy"])) == ("running", "waiting")
    assert stranded() == []
    reap_silent(deploy)
    assert status_of(second["deploy"]) == "queued"
    assert stranded() == []


def test_joining_the_line_of_a_group_that_fails_is_undone(pushed, fail_after_status_write):
    first = pushed()
    lifecycle.finish(claimed(first["test"]), "succeeded", "1 step succeeded")
    claimed(first["deploy"])
    test = claimed(pushed()["test"])
    fail_after_status_write(2)
    with pytest.raises(InjectedFault):
        lifecycle.finish(test, "succeeded", "1 step succeeded")
    assert status_of(test) == "running"
    assert stranded() == []


def test_a_cancel_that_fails_cancels_nothing(pushed, fail_after_status_write):
    runs = pushed()
    fail_after_status_write(1)
    with pytest.raises(InjectedFault):
        lifecycle.cancel(runs["test"])
    assert (status_of(runs["test"]), status_of(runs["deploy"])) == ("queued", "waiting")
    assert stranded() == []


def test_a_lost_run_that_fails_to_be_marked_is_marked_by_the_next_reap(
    pushed, fail_after_status_write
):
    runs = pushed()
    test = claimed(runs["test"])
    Run.objects.filter(pk=test.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    fail_after_status_write(1)
    with pytest.raises(InjectedFault):
        reap_stale_runs()
    assert (status_of(test), status_of(runs["deploy"])) == ("running", "waiting")
    assert stranded() == []
    reap_silent(test)
    assert stranded() == []


def test_a_claim_whose_worker_dies_at_once_leaves_the_run_queued_for_a_new_task(
    pushed, fail_after_status_write
):
    runs = pushed()
    # The worker took the run's task up, as django-tasks-db does, an hour ago.
    taken = DBTaskResult.objects.filter(id=runs["test"].task_id)
    taken.update(status="RUNNING", started_at=timezone.now() - timedelta(hours=1))
    fail_after_status_write(1)
    with pytest.raises(InjectedFault):
        lifecycle.claim(runs["test"], "box:1")
    assert status_of(runs["test"]) == "queued"
    assert requeue_unclaimed() == [runs["test"].pk]
    assert taken.get().status == "FAILED"
    assert Run.objects.get(pk=runs["test"].pk).task_id != runs["test"].task_id
    assert stranded() == []


def test_a_re_run_that_fails_adds_no_run(pushed, fail_after_status_write):
    runs = pushed()
    test = claimed(runs["test"])
    lifecycle.finish(test, "failed", "step t failed with exit code 1")
    fail_after_status_write(1)
    with pytest.raises(InjectedFault):
        lifecycle.rerun(test, by="alice")
    assert Run.objects.count() == 2
    assert stranded() == []


def test_the_end_of_a_run_reads_only_waiting_runs_however_many_ended_runs_its_sha_has(
    pushed, monkeypatch
):
    runs = pushed()
    ended = [
        Run(
            delivery=runs["test"].delivery, repository="acme/webapp", pipeline="test",
            event="push", sha=runs["test"].sha, definition=runs["test"].definition,
            status="succeeded", finished_at=timezone.now(),
        )
        for _ in range(300)
    ]  # fmt: skip
    Run.objects.bulk_create(ended)
    loaded = []
    real_from_db = Run.from_db.__func__

    def counted_from_db(cls, *args, **kwargs):
        loaded.append(1)
        return real_from_db(cls, *args, **kwargs)

    monkeypatch.setattr(Run, "from_db", classmethod(counted_from_db))
    lifecycle.finish(claimed(runs["test"]), "succeeded", "1 step succeeded")
    assert status_of(runs["deploy"]) != "waiting"
    # The waiting deploy run and the newest run of test: never the 300 ended ones.
    assert len(loaded) < 10


# Deployments: approvals, locks, manual runs.

APPROVED_DEPLOY = """\
repositories:
  acme/webapp:
    token_env: HR_FAULT_TOKEN
    report_status: true
    pipelines:
      deploy:
        on: [push, manual]
        environment: production
        approval: required
        concurrency: production
        steps: [{name: d, run: "true"}]
"""


@pytest.fixture
def awaiting(pushing):
    """A push to acme/webapp whose deploy waits for approval; that run."""
    return pushing(APPROVED_DEPLOY)["deploy"]


@pytest.mark.parametrize("approved", [True, False], ids=["approve", "reject"])
def test_a_decision_that_fails_decides_nothing(awaiting, fail_after_status_write, approved):
    fail_after_status_write(1)
    with pytest.raises(InjectedFault):
        (lifecycle.approve if approved else lifecycle.reject)(awaiting, "alice", "why")
    assert (status_of(awaiting), Decision.objects.count()) == ("waiting", 0)
    assert stranded() == []


def test_an_unlocking_that_fails_keeps_the_lock_and_its_waiting_runs(
    awaiting, fail_after_status_write
):
    lifecycle.lock("acme/webapp", "production", "bob", "freeze")
    lifecycle.approve(awaiting, "alice")
    fail_after_status_write(1)
    with pytest.raises(InjectedFault):
        lifecycle.unlock("acme/webapp", "production")
    assert EnvironmentLock.objects.count() == 1
    assert Run.objects.get(pk=awaiting.pk).waiting_for == "lock"
    assert stranded() == []


def test_a_claim_that_finds_the_lock_and_fails_leaves_the_run_queued(
    awaiting, fail_after_status_write
):
    lifecycle.approve(awaiting, "alice")
    lifecycle.lock("acme/webapp", "production", "bob", "freeze")
    fail_after_status_write(1)
    with pytest.raises(InjectedFault):
        lifecycle.claim(Run.objects.get(pk=awaiting.pk), "box:1")
    assert status_of(awaiting) == "queued"
    assert stranded() == []


def test_a_manual_start_that_fails_leaves_no_run_and_no_delivery(awaiting, fail_after_status_write):
    pipeline = manual_pipeline(pipelines_store().newest(), "acme/webapp", "deploy")
    deliveries = Delivery.objects.count()
    fail_after_status_write(1)
    with pytest.raises(InjectedFault):
        start(pipeline, "acme/webapp", Commit("1" * 40), {}, "alice")
    assert (Run.objects.count(), Delivery.objects.count()) == (1, deliveries)
    assert stranded() == []
