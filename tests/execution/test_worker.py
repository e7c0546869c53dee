"""Runs executed by the worker: real processes, output and statuses read back from the DB."""

import json
import threading
import time

import pytest

from runner.execution import worker
from runner.models import LogChunk, Run, Step
from runner.runs import lifecycle
from runner.runs.lifecycle import rerun
from tests.conftest import (
    SignedDelivery,
    executed,
    executed_in_a_thread,
    output_of,
    start_in_a_thread,
    wait_for_output,
)
from tests.worker_processes import group_members

pytestmark = pytest.mark.django_db


def steps_of(run: Run) -> list[tuple[str, str, int | None]]:
    return [(step.name, step.status, step.exit_code) for step in run.steps.all()]


def test_steps_run_in_order_and_their_output_is_stored(pipelines, push):
    pipelines("""\
        ci:
          on: {push: null}
          steps:
            - {name: one, run: echo first}
            - {name: two, run: echo second >&2; echo third}
        """)
    (run,) = push()
    assert (run.status, run.detail) == ("succeeded", "2 steps succeeded")
    assert steps_of(run) == [("one", "succeeded", 0), ("two", "succeeded", 0)]
    assert [output_of(step) for step in run.steps.all()] == ["first\n", "second\nthird\n"]
    assert run.started_at <= run.finished_at


def test_failing_step_fails_the_run_and_skips_the_rest(pipelines, push):
    pipelines("""\
        ci:
          on: {push: null}
          steps:
            - {name: build, run: exit 2}
            - {name: deploy, run: echo never}
        """)
    (run,) = push()
    assert (run.status, run.detail) == ("failed", "step build failed with exit code 2")
    assert steps_of(run) == [("build", "failed", 2), ("deploy", "skipped", None)]
    assert not LogChunk.objects.filter(step__name="deploy").exists()


def test_step_past_its_timeout_is_stopped(pipelines, push, settings):
    settings.STEP_KILL_GRACE_SECONDS = 1
    pipelines("""\
        ci:
          on: {push: null}
          steps:
            - {name: hang, run: echo started; sleep 60, timeout: 1s}
        """)
    (run,) = push()
    assert (run.status, run.detail) == ("timed_out", "step hang timed out after 1s")
    assert steps_of(run) == [("hang", "timed_out", None)]
    assert output_of(run.steps.get()) == "started\n"


def test_step_sees_github_variables_and_nothing_of_the_server(pipelines, push, monkeypatch):
    monkeypatch.setenv("DATABASE_PASSWORD", "server-only")
    pipelines("""\
        ci:
          on: {push: null}
          env: {STAGE: test}
          steps:
            - {name: env, run: env | sort, env: {STEP: one}}
        """)
    (run,) = push()
    variables = dict(line.split("=", 1) for line in output_of(run.steps.get()).splitlines())
    assert variables["GITHUB_EVENT_NAME"] == "push"
    assert variables["GITHUB_REPOSITORY"] == "acme/webapp"
    assert variables["GITHUB_SHA"] == "fdf0d9b48aca90fb0019f29d9611992528323408"
    assert variables["GITHUB_REF"] == "refs/heads/main"
    assert variables["GITHUB_REF_NAME"] == "main"
    assert variables["GITHUB_ACTOR"] == "octocat"
    assert variables["HOOKRUNNER_RUN_ID"] == str(run.pk)
    assert (variables["STAGE"], variables["STEP"]) == ("test", "one")
    for server_only in ("DATABASE_PASSWORD", "WEBHOOK_SECRET", "DJANGO_SECRET_KEY", "DATA_DIR"):
        assert server_only not in variables


def test_event_payload_is_readable_from_github_event_path(pipelines, push):
    pipelines("""\
        ci:
          on: {push: null}
          steps:
            - {name: payload, run: cat "$GITHUB_EVENT_PATH"}
        """)
    (run,) = push()
    assert json.loads(output_of(run.steps.get()))["after"] == run.sha


def test_named_secrets_reach_the_step_but_never_its_stored_output(pipelines, push, monkeypatch):
    monkeypatch.setenv("DEPLOY_TOKEN", "s3cr3t-t0ken")
    pipelines("""\
        deploy:
          on: {push: null}
          secrets: [DEPLOY_TOKEN]
          steps:
            - {name: use, run: 'test "$DEPLOY_TOKEN" = s3cr3t-t0ken && echo "token $DEPLOY_TOKEN"'}
        """)
    (run,) = push()
    assert run.status == "succeeded"
    assert output_of(run.steps.get()) == "token ***\n"


def test_secret_unset_when_the_run_starts_fails_it_clearly(pipelines, post_delivery, monkeypatch):
    monkeypatch.setenv("DEPLOY_TOKEN", "x")
    pipelines("""\
        deploy:
          on: {push: null}
          secrets: [DEPLOY_TOKEN]
          steps: [{name: use, run: 'true'}]
        """)
    (run_id,) = post_delivery(SignedDelivery.of_fixture("push__branch")).json()["runs"]
    monkeypatch.delenv("DEPLOY_TOKEN")
    run = executed(run_id)
    assert (run.status, run.detail) == (
        "error",
        "secret DEPLOY_TOKEN is not set in hookrunner's environment",
    )


def test_output_past_the_bound_keeps_its_head_and_tail_around_the_dropped_count(
    pipelines, push, settings
):
    settings.STEP_OUTPUT_LIMIT = 1000
    pipelines("""\
        ci:
          on: {push: null}
          steps: [{name: loud, run: head -c 99990 /dev/zero | tr '\\0' x; echo ' done'}]
        """)
    (run,) = push()
    step = run.steps.get()
    assert (step.output_bytes, step.dropped_bytes) == (99996, 98996)
    assert output_of(step) == (
        "x" * 500
        + "\n[hookrunner: 98996 bytes of output dropped here;"
        + " the first 500 and the last 500 bytes are kept]\n"
        + "x" * 494
        + " done\n"
    )


def test_workdir_pipeline_runs_in_its_directory(pipelines, push, tmp_path):
    target = tmp_path / "srv"
    target.mkdir()
    pipelines(f"""\
        deploy:
          on: {{push: null}}
          workdir: {target}
          steps: [{{name: where, run: pwd}}]
        """)
    (run,) = push()
    assert output_of(run.steps.get()) == f"{target}\n"


def test_missing_workdir_is_an_error_of_the_run(pipelines, push, tmp_path):
    pipelines(f"""\
        deploy:
          on: {{push: null}}
          workdir: {tmp_path / "gone"}
          steps: [{{name: where, run: pwd}}]
        """)
    (run,) = push()
    assert (run.status, run.detail) == ("error", f"workdir {tmp_path / 'gone'} is not a directory")


def test_run_that_is_no_longer_queued_is_not_executed_again(pipelines, push):
    pipelines("""\
        ci:
          on: {push: null}
          steps: [{name: once, run: echo once}]
        """)
    (run,) = push()
    worker.execute(run)
    assert run.steps.count() == 1
    assert LogChunk.objects.count() == 1


HANGING = """\
    ci:
      on: {push: null}
      steps:
        - {name: hang, run: echo started; sleep 60}
        - {name: after, run: echo never}
    """


def test_cancelled_queued_run_never_starts(pipelines, post_delivery):
    pipelines(HANGING)
    (run_id,) = post_delivery(SignedDelivery.of_fixture("push__branch")).json()["runs"]
    assert lifecycle.cancel(Run.objects.get(pk=run_id)) == "cancelled"
    run = executed(run_id)
    assert (run.status, run.detail) == ("cancelled", "cancelled before it started")
    assert not run.steps.exists()


@pytest.mark.django_db(transaction=True)
def test_cancelling_a_running_run_stops_its_step(pipelines, post_delivery, settings):
    settings.STEP_KILL_GRACE_SECONDS = 1
    pipelines(HANGING)
    (run_id,) = post_delivery(SignedDelivery.of_fixture("push__branch")).json()["runs"]
    execution = threading.Thread(target=executed_in_a_thread, args=(run_id,))
    execution.start()
    deadline = time.monotonic() + 20
    while not LogChunk.objects.filter(step__run_id=run_id).exists():
        assert time.monotonic() < deadline, "the step never started"
        time.sleep(0.05)
    assert lifecycle.cancel(Run.objects.get(pk=run_id)) == "asked to stop"
    execution.join(timeout=20)
    run = Run.objects.get(pk=run_id)
    assert (run.status, run.detail) == ("cancelled", "cancelled during step hang")
    assert steps_of(run) == [("hang", "cancelled", None), ("after", "skipped", None)]


def test_cancelling_a_finished_run_changes_nothing(pipelines, push):
    pipelines("""\
        ci:
          on: {push: null}
          steps: [{name: quick, run: 'true'}]
        """)
    (run,) = push()
    assert lifecycle.cancel(run) == "already finished"
    assert Run.objects.get(pk=run.pk).status == "succeeded"


def test_run_again_queues_the_same_definition_and_commit(pipelines, push):
    pipelines("""\
        ci:
          on: {push: null}
          steps: [{name: quick, run: echo again}]
        """)
    (first,) = push()
    second = rerun(first)
    assert (second.status, second.rerun_of, second.sha, second.definition) == (
        "queued",
        first,
        first.sha,
        first.definition,
    )
    assert second.task_id != first.task_id
    second = executed(second.pk)
    assert output_of(second.steps.get()) == "again\n"


def test_nul_and_invalid_utf8_in_output_are_stored_as_replacement_characters(pipelines, push):
    pipelines("""\
        ci:
          on: {push: null}
          steps: [{name: binary, run: "printf 'a\\\\000b\\\\377c'"}]
        """)
    (run,) = push()
    assert run.status == "succeeded"
    assert output_of(run.steps.get()) == "a\ufffdb\ufffdc"


def test_a_command_failing_inside_a_pipe_fails_the_step(pipelines, push):
    pipelines("""\
        ci:
          on: {push: null}
          steps: [{name: pipe, run: 'false | cat; echo not reached'}]
        """)
    (run,) = push()
    assert (run.status, run.detail) == ("failed", "step pipe failed with exit code 1")
    assert output_of(run.steps.get()) == ""


def test_step_runs_under_the_shell_it_names(pipelines, push):
    pipelines("""\
        ci:
          on: {push: null}
          shell: sh -c
          steps:
            - {name: default, run: 'echo "sh says $GITHUB_REF_NAME"'}
            - {name: python, run: 'print(6 * 7)', shell: python3 -c}
        """)
    (run,) = push()
    assert run.status == "succeeded"
    assert [output_of(step) for step in run.steps.all()] == ["sh says main\n", "42\n"]


def test_pipeline_timeout_ends_the_run_as_timed_out(pipelines, push, settings):
    settings.STEP_KILL_GRACE_SECONDS = 1
    pipelines("""\
        ci:
          on: {push: null}
          timeout: 2s
          steps:
            - {name: quick, run: 'true'}
            - {name: hang, run: echo started; sleep 300}
            - {name: later, run: echo never}
        """)
    (run,) = push()
    assert (run.status, run.detail) == ("timed_out", "pipeline timed out after 2s, in step hang")
    assert steps_of(run) == [
        ("quick", "succeeded", 0),
        ("hang", "timed_out", None),
        ("later", "skipped", None),
    ]


def test_step_timeout_kills_the_children_it_left_in_the_background(
    pipelines, push, settings, tmp_path
):
    settings.STEP_KILL_GRACE_SECONDS = 1
    pipelines("""\
        ci:
          on: {push: null}
          steps:
            - {name: hang, run: 'sleep 300 & sleep 300', timeout: 1s}
        """)
    (run,) = push()
    assert run.status == "timed_out"
    assert wait_until_empty(run.steps.get().pid)


def wait_until_empty(pgid: int) -> bool:
    deadline = time.monotonic() + 5
    while group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return group_members(pgid) == []


def test_run_and_steps_record_when_they_started_and_ended(pipelines, push):
    pipelines("""\
        ci:
          on: {push: null}
          steps:
            - {name: nap, run: sleep 0.3}
            - {name: never, run: exit 1}
            - {name: skipped, run: 'true'}
        """)
    (run,) = push()
    nap, never, skipped = run.steps.all()
    assert run.created_at <= run.started_at <= nap.started_at <= nap.finished_at
    assert nap.finished_at <= never.started_at <= never.finished_at <= run.finished_at
    assert nap.duration.total_seconds() >= 0.3
    assert run.duration >= nap.duration + never.duration
    assert (skipped.started_at, skipped.duration) == (None, None)


@pytest.mark.django_db(transaction=True)
def test_output_is_stored_while_the_step_still_runs(pipelines, post_delivery, settings):
    settings.STEP_KILL_GRACE_SECONDS = 1
    pipelines(HANGING)
    (run_id,) = post_delivery(SignedDelivery.of_fixture("push__branch")).json()["runs"]
    execution = start_in_a_thread(run_id)
    step = wait_for_output(run_id, "started\n")
    assert Step.objects.get(pk=step.pk).finished_at is None
    lifecycle.cancel(Run.objects.get(pk=run_id))
    execution.join(timeout=20)


def test_pipeline_timeout_kills_the_children_left_in_the_background(
    pipelines, push, settings, tmp_path
):
    settings.STEP_KILL_GRACE_SECONDS = 1
    pipelines("""\
        ci:
          on: {push: null}
          timeout: 2s
          steps:
            - {name: hang, run: 'sleep 300 & sleep 300'}
        """)
    (run,) = push()
    assert (run.status, run.detail) == ("timed_out", "pipeline timed out after 2s, in step hang")
    assert wait_until_empty(run.steps.get().pid)


@pytest.mark.django_db(transaction=True)
def test_cancel_in_progress_stops_the_running_run_of_the_group_and_says_why(
    pipelines, post_delivery, settings, tmp_path
):
    settings.STEP_KILL_GRACE_SECONDS = 1
    shared = tmp_path / "shared"
    shared.mkdir()
    # The first run of the group hangs; the next one finds the marker and is quick.
    pipelines(f"""\
        deploy:
          on: {{push: null}}
          concurrency: {{group: production, cancel_in_progress: true}}
          sandbox: {{writable: {shared}}}
          steps:
            - name: ship
              run: |
                test -e {shared}/first && exit 0
                touch {shared}/first
                echo started; sleep 60
        """)
    (older_id,) = post_delivery(SignedDelivery.of_fixture("push__branch")).json()["runs"]
    execution = start_in_a_thread(older_id)
    wait_for_output(older_id, "started\n")
    (newer_id,) = post_delivery(SignedDelivery.of_fixture("push__branch")).json()["runs"]
    assert Run.objects.get(pk=newer_id).status == "waiting"
    execution.join(timeout=20)
    older = Run.objects.get(pk=older_id)
    assert (older.status, older.detail) == (
        "cancelled",
        f"cancelled by run {newer_id}, newer in concurrency group production during step ship",
    )
    assert wait_until_empty(older.steps.get().pid)
    assert executed(newer_id).status == "succeeded"
