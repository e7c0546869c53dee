"""Commit statuses: pending when a run is queued (or waits), then success, failure or error
when it ends, posted to a GitHub-shaped server on loopback by tasks, retried, recorded."""

import logging
import textwrap
import time
from datetime import datetime, timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from runner.config.definition import RunDefinition
from runner.models import Delivery, LogChunk, Outgoing, Run
from runner.outgoing import queue as outgoing
from runner.outgoing.attempt import MOST_RATE_LIMITED, attempt
from runner.outgoing.queue import send_outgoing
from runner.runs import lifecycle
from tests.conftest import SignedDelivery, executed, send_queued
from tests.fake_github import Answer, FakeGitHub

pytestmark = pytest.mark.django_db

TOKEN = "ghp_commit_status_test_token_9f8e7d"
SHA = "fdf0d9b48aca90fb0019f29d9611992528323408"  # push__branch's after
STATUSES = rf"/repos/acme/webapp/statuses/{SHA}"
ONE_STEP = """\
    test:
      on: {push: null}
      steps: [{name: test, run: 'true'}]
    """


@pytest.fixture
def github(github_api, monkeypatch):
    """The fake GitHub, answering with success, and this module's token set."""
    monkeypatch.setenv("HR_TEST_TOKEN", TOKEN)
    return github_api.statuses(201)


@pytest.fixture
def reporting(settings, tmp_path):
    """Write pipelines.yaml: acme/webapp with HR_TEST_TOKEN as token_env, report_status as
    given (the default of its pipelines), and these pipelines."""

    def configure(pipelines_yaml: str = ONE_STEP, report_status: bool = True) -> None:
        settings.WORKSPACES_DIR = tmp_path / "workspaces"
        path = tmp_path / "pipelines.yaml"
        body = textwrap.indent(textwrap.dedent(pipelines_yaml), "      ")
        path.write_text(
            "repositories:\n  acme/webapp:\n    token_env: HR_TEST_TOKEN\n"
            f"    report_status: {str(report_status).lower()}\n    pipelines:\n{body}"
        )
        settings.PIPELINES_FILE = path

    return configure


@pytest.fixture
def deliver(post_delivery):
    """Push to acme/webapp main; the runs it made, by pipeline name."""

    def push(fixture: str = "push__branch") -> dict[str, Run]:
        ids = post_delivery(SignedDelivery.of_fixture(fixture)).json()["runs"]
        return {run.pipeline: run for run in Run.objects.filter(pk__in=ids)}

    return push


def page_of(run: Run) -> str:
    return "https://ci.example.com" + reverse("admin:runner_run_change", args=[run.pk])


def statuses_sent(github: FakeGitHub) -> list[dict]:
    return [r.json for r in github.requests_to(STATUSES, "POST")]


def a_run(status: str = "queued", **changes) -> Run:
    """A run of acme/webapp test at SHA, made directly (no receiver)."""
    delivery = Delivery.objects.create(
        delivery_id=f"d-{time.monotonic_ns()}", event="push", payload={}
    )
    definition = RunDefinition(report_status=True, token_env="HR_TEST_TOKEN")
    fields = {
        "delivery": delivery, "repository": "acme/webapp", "pipeline": "test", "event": "push",
        "sha": SHA, "ref": "refs/heads/main", "definition": definition, "status": status,
    }  # fmt: skip
    return Run.objects.create(**{**fields, **changes})


def ended(run: Run, status: str, detail: str = "", took: float = 0) -> Run:
    """The run, claimed `took` seconds ago, finished by its worker as `status`."""
    started_at = timezone.now() - timedelta(seconds=took)
    Run.objects.filter(pk=run.pk).update(status="running", started_at=started_at)
    run.refresh_from_db()
    lifecycle.finish(run, status, detail)
    return run


# End to end.


def test_a_push_reports_pending_then_success_with_context_description_and_link(
    github, reporting, post_delivery
):
    reporting()
    (run_id,) = post_delivery(SignedDelivery.of_fixture("push__branch")).json()["runs"]
    send_queued()
    run = executed(run_id)
    send_queued()
    pending, success = statuses_sent(github)
    assert pending == {
        "state": "pending",
        "context": "hookrunner/test",
        "description": "queued",
        "target_url": page_of(run),
    }
    assert success["state"] == "success"
    assert success["context"] == "hookrunner/test"
    assert success["target_url"] == page_of(run)
    assert success["description"].startswith("1 step succeeded (")
    assert success["description"].endswith("s)")
    sent = github.requests_to(STATUSES)[0]
    assert sent.header("Authorization") == f"Bearer {TOKEN}"
    assert sent.header("X-GitHub-Api-Version") == "2022-11-28"
    assert sent.header("Accept") == "application/vnd.github+json"
    assert sent.header("User-Agent") == "hookrunner"
    assert set(run.outgoing.values_list("state", flat=True)) == {"sent"}


@pytest.mark.django_db(transaction=True)
def test_one_worker_reports_pending_before_it_starts_the_run(github, reporting, deliver):
    reporting()
    run = deliver()["test"]
    call_command("worker", batch=True, verbosity=0)
    run.refresh_from_db()
    assert run.status == "succeeded"
    pending, success = github.requests_to(STATUSES)
    assert (pending.json["state"], success.json["state"]) == ("pending", "success")
    assert pending.at < run.started_at.timestamp() <= success.at


def test_pipelines_that_do_not_report_post_nothing(github, reporting, deliver):
    reporting(report_status=False)
    executed(deliver()["test"].pk)
    assert send_queued() == 0
    assert github.requests == []
    assert not Outgoing.objects.exists()


# What each status says.


def test_a_waiting_run_is_pending_waiting_for_what_it_needs(github, reporting, deliver):
    reporting("""\
        test:
          on: {push: null}
          steps: [{name: test, run: 'true'}]
        deploy:
          on: {push: null}
          needs: [test]
          steps: [{name: deploy, run: 'true'}]
        """)
    runs = deliver()
    send_queued()
    by_context = {body["context"]: body for body in statuses_sent(github)}
    assert by_context["hookrunner/deploy"]["state"] == "pending"
    assert by_context["hookrunner/deploy"]["description"] == "waiting for test"
    assert by_context["hookrunner/deploy"]["target_url"] == page_of(runs["deploy"])
    executed(runs["test"].pk)
    send_queued()
    deploy = [body for body in statuses_sent(github) if body["context"] == "hookrunner/deploy"]
    assert (deploy[-1]["state"], deploy[-1]["description"]) == ("pending", "queued")


def test_a_run_skipped_at_once_is_reported_skipped(github, reporting, deliver):
    reporting("""\
        test:
          on: {push: {branches: [release]}}
          steps: [{name: test, run: 'true'}]
        deploy:
          on: {push: null}
          needs: [test]
          steps: [{name: deploy, run: 'true'}]
        """)
    deploy = deliver()["deploy"]
    assert deploy.status == "skipped"
    send_queued()
    (body,) = statuses_sent(github)
    assert (body["state"], body["description"]) == (
        "success",
        "skipped: it needs test, which has no run for this commit",
    )
    pending = deploy.outgoing.get(body__state="pending")
    assert pending.state == "gave_up"
    assert pending.error == "not sent: the run ended first; its final status is sent instead"


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("succeeded", "success"),
        ("failed", "failure"),
        ("timed_out", "failure"),
        ("error", "error"),
        ("cancelled", "error"),
        ("skipped", "success"),
    ],
)
def test_how_each_end_is_reported(github, status, state):
    run = ended(a_run(), status, f"what happened: {status}", took=75)
    send_queued()
    (body,) = statuses_sent(github)
    assert body == {
        "state": state,
        "context": "hookrunner/test",
        "description": f"what happened: {status} (1m 15s)",
        "target_url": page_of(run),
    }


def test_a_cancelled_queued_run_reports_error(github, reporting, deliver):
    reporting()
    run = deliver()["test"]
    lifecycle.cancel(run, "cancelled by alice")
    send_queued()
    (body,) = statuses_sent(github)
    assert (body["state"], body["description"]) == (
        "error",
        "cancelled by alice before it started",
    )


def test_a_failed_step_is_named_in_one_line_of_at_most_140_characters(github):
    detail = "step " + "very-long-name-" * 20 + "\nsecond line failed with exit code 2"
    ended(a_run(), "failed", detail, took=3)
    send_queued()
    (body,) = statuses_sent(github)
    assert len(body["description"]) == 140
    assert body["description"].endswith("…")
    assert "\n" not in body["description"]


def test_without_public_url_there_is_no_target_url(github, settings):
    settings.PUBLIC_URL = ""
    ended(a_run(), "succeeded", "1 step succeeded")
    send_queued()
    (body,) = statuses_sent(github)
    assert "target_url" not in body


def test_github_enterprise_api_url(github, settings):
    settings.GITHUB_API_URL = github.url + "/api/v3"
    github.route("POST", rf"/api/v3/repos/acme/webapp/statuses/{SHA}", 201)
    ended(a_run(), "succeeded")
    send_queued()
    assert [r.path for r in github.requests] == [f"/api/v3{STATUSES}"]


def test_a_re_run_reports_pending_again(github, admin_client):
    run = ended(a_run(), "failed", "step test failed with exit code 1")
    send_queued()
    admin_client.post(reverse("admin:run_rerun", args=[run.pk]))
    send_queued()
    assert [body["state"] for body in statuses_sent(github)] == ["failure", "pending"]


# Retries and giving up.


def test_a_502_is_tried_again_and_every_attempt_kept(github):
    github.statuses(502, 201)
    run = ended(a_run(), "succeeded")
    send_queued()
    (status,) = run.outgoing.all()
    assert status.state == "sent"
    assert [(a["status"], a["outcome"], a["error"]) for a in status.attempts] == [
        (502, "retry", "HTTP 502: Bad Gateway"),
        (201, "ok", ""),
    ]
    assert (status.failures, status.rate_limited) == (1, 0)
    assert status.last_attempt_at == datetime.fromisoformat(status.attempts[-1]["at"])
    assert len(github.requests) == 2


def test_a_401_gives_up_at_once_with_the_error_stored(github):
    github.statuses(Answer(401, {"message": "Bad credentials"}))
    run = ended(a_run(), "succeeded")
    send_queued()
    (status,) = run.outgoing.all()
    assert (status.state, status.error) == ("gave_up", "HTTP 401: Bad credentials")
    assert [(a["status"], a["outcome"]) for a in status.attempts] == [(401, "give_up")]
    assert (status.failures, status.rate_limited) == (1, 0)
    assert len(github.requests) == 1


def test_no_answer_in_time_is_tried_again(github):
    github.statuses(Answer(201, delay=1), 201)
    run = ended(a_run(), "succeeded")
    send_queued()
    (status,) = run.outgoing.all()
    assert status.state == "sent"
    assert [(a["status"], a["outcome"], a["error"]) for a in status.attempts] == [
        (None, "retry", "timed out after 0.3s"),
        (201, "ok", ""),
    ]
    assert (status.failures, status.rate_limited) == (1, 0)


def test_it_gives_up_after_outgoing_attempts_failures_doubling_the_wait(github, settings):
    settings.OUTGOING_ATTEMPTS = 3
    settings.OUTGOING_RETRY_SECONDS = 7
    github.statuses(503)
    run = ended(a_run(), "succeeded")
    (status,) = run.outgoing.all()
    assert attempt(status) == (7, 0)
    assert attempt(status) == (14, 0)
    assert attempt(status) is None
    status.refresh_from_db()
    assert (status.state, status.error) == (
        "gave_up",
        "gave up after 3 failed attempts: HTTP 503: Service Unavailable",
    )
    assert (status.failures, status.rate_limited) == (3, 0)
    assert [a["outcome"] for a in status.attempts] == ["retry", "retry", "retry"]
    assert len(github.requests) == 3


def test_the_counts_on_the_row_not_the_error_texts_decide_when_to_give_up(github, settings):
    """An attempt list saying nothing of failures does not reset them; a rate limit's text
    among the errors does not make a failure one."""
    settings.OUTGOING_ATTEMPTS = 3
    github.statuses(503)
    run = ended(a_run(), "succeeded")
    (status,) = run.outgoing.all()
    status.failures = 2
    status.attempts = [{"at": "2026-01-01T00:00:00+00:00", "status": 503, "error": "rate limited"}]
    status.save()
    assert attempt(status) is None
    status.refresh_from_db()
    assert (status.state, status.failures) == ("gave_up", 3)
    assert status.error == "gave up after 3 failed attempts: HTTP 503: Service Unavailable"


def test_a_rate_limit_is_waited_out_not_given_up(github, settings):
    reset = int(time.time()) + 30
    exhausted = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)}
    github.statuses(Answer(403, {"message": "API rate limit exceeded"}, exhausted), 201)
    run = ended(a_run(), "succeeded")
    (status,) = run.outgoing.all()
    delay, _ = attempt(status)
    assert 29 <= delay <= 32
    assert status.state == "pending"
    assert status.attempts[0]["outcome"] == "rate_limited"
    assert status.attempts[0]["error"].startswith("rate limited (HTTP 403")
    assert attempt(status) is None
    assert status.state == "sent"
    status.refresh_from_db()
    assert (status.failures, status.rate_limited) == (0, 1)
    assert [a["outcome"] for a in status.attempts] == ["rate_limited", "ok"]


def test_rate_limits_do_not_use_up_outgoing_attempts(github, settings):
    settings.OUTGOING_ATTEMPTS = 2
    limited = Answer(429, headers={"Retry-After": "0"})
    github.statuses(502, limited, limited, limited, 201)
    run = ended(a_run(), "succeeded")
    send_queued()
    (status,) = run.outgoing.all()
    assert status.state == "sent"
    assert (status.failures, status.rate_limited) == (1, 3)
    assert [a["outcome"] for a in status.attempts] == [
        "retry", "rate_limited", "rate_limited", "rate_limited", "ok",
    ]  # fmt: skip
    assert len(github.requests) == 5


def test_it_gives_up_after_most_rate_limited_rate_limits(github, settings):
    settings.OUTGOING_ATTEMPTS = 2
    github.statuses(502, Answer(429, headers={"Retry-After": "0"}))
    run = ended(a_run(), "succeeded")
    send_queued()
    (status,) = run.outgoing.all()
    assert status.state == "gave_up"
    assert (status.failures, status.rate_limited) == (1, MOST_RATE_LIMITED)
    assert status.error.startswith(
        f"gave up after being rate limited {MOST_RATE_LIMITED} times: rate limited (HTTP 429"
    )
    assert len(github.requests) == 1 + MOST_RATE_LIMITED


def test_a_rate_limit_wait_is_bounded(github, settings):
    settings.OUTGOING_MAX_WAIT_SECONDS = 0.02
    github.statuses(Answer(429, headers={"Retry-After": "3600"}), 201)
    run = ended(a_run(), "succeeded")
    (status,) = run.outgoing.all()
    assert attempt(status) == (0.02, 0)
    send_queued()
    status.refresh_from_db()
    assert [a["status"] for a in status.attempts] == [429, 201]
    assert (status.failures, status.rate_limited) == (0, 1)


def test_a_token_that_is_not_set_gives_up_without_a_request(github, monkeypatch):
    monkeypatch.delenv("HR_TEST_TOKEN")
    run = ended(a_run(), "succeeded")
    send_queued()
    (status,) = run.outgoing.all()
    assert (status.state, status.error, status.attempts) == (
        "gave_up",
        "not sent: token_env HR_TEST_TOKEN is not set in hookrunner's environment",
        [],
    )
    assert (status.failures, status.rate_limited, status.last_attempt_at) == (0, 0, None)
    assert github.requests == []


def test_the_token_is_never_stored_nor_logged(github, caplog):
    """Even when the server quotes it back (a proxy's error page might)."""
    caplog.set_level(logging.DEBUG)
    github.statuses(502, Answer(401, {"message": f"Bad credentials: Bearer {TOKEN}"}))
    run = ended(a_run(), "failed", "step test failed with exit code 1")
    send_queued()
    (status,) = run.outgoing.all()
    assert status.error == "HTTP 401: Bad credentials: Bearer [hidden]"
    assert github.requests[0].header("Authorization") == f"Bearer {TOKEN}"  # it was sent
    stored = [
        *Outgoing.objects.values_list(),
        *Run.objects.values_list(),
        *LogChunk.objects.values_list(),
        *DBTaskResult.objects.values_list(),
    ]
    assert stored
    assert TOKEN not in repr(stored)
    assert caplog.text
    assert TOKEN not in caplog.text


# Order.


def test_a_final_status_waits_for_the_pending_one_still_being_tried(github):
    github.statuses(502, 201)
    run = a_run()
    outgoing.queue_started([run])
    pending = run.outgoing.get()
    assert attempt(pending) is not None  # 502: tried again later
    run = ended(run, "succeeded", "1 step succeeded")
    final = run.outgoing.exclude(pk=pending.pk).get()
    assert attempt(final) == (0.01, 1)  # waits, sends nothing
    assert len(github.requests) == 1
    assert attempt(pending) is None  # the run has ended: old news, not sent
    assert pending.state == "gave_up"
    assert attempt(final) is None
    assert [body["state"] for body in statuses_sent(github)] == ["pending", "success"]


def test_a_final_status_does_not_wait_for_a_stuck_pending_one(github, settings):
    """Its worker died while sending it: silent for longer than any wait between attempts."""
    settings.OUTGOING_MAX_WAIT_SECONDS = 60
    run = a_run()
    outgoing.queue_started([run])
    run.outgoing.update(created_at=timezone.now() - timedelta(seconds=61))
    run = ended(run, "succeeded", "1 step succeeded")
    final = run.outgoing.get(body__state="success")
    assert attempt(final) is None
    assert [body["state"] for body in statuses_sent(github)] == ["success"]


def test_a_final_status_waits_for_a_pending_one_made_long_ago_but_tried_lately(github, settings):
    """Silence is counted from its last attempt, not from when it was made."""
    settings.OUTGOING_MAX_WAIT_SECONDS = 60
    github.statuses(502, 201)
    run = a_run()
    outgoing.queue_started([run])
    pending = run.outgoing.get()
    run.outgoing.update(created_at=timezone.now() - timedelta(seconds=3600))
    pending.refresh_from_db()
    assert attempt(pending) is not None  # 502 just now: it is still being tried
    run = ended(run, "succeeded", "1 step succeeded")
    final = run.outgoing.get(body__state="success")
    assert attempt(final) == (0.01, 1)
    run.outgoing.filter(pk=pending.pk).update(
        last_attempt_at=timezone.now() - timedelta(seconds=61)
    )
    assert attempt(final) is None  # silent since: stuck
    assert [body["state"] for body in statuses_sent(github)] == ["pending", "success"]


def test_a_newer_run_of_the_same_pipeline_and_commit_reports_instead(github):
    older = a_run()
    newer = a_run()
    ended(older, "failed", "step test failed with exit code 1")
    send_queued()
    (status,) = older.outgoing.all()
    assert (status.state, status.error) == (
        "gave_up",
        f"not sent: run {newer.pk} of the same pipeline and commit reports instead",
    )
    assert github.requests == []


def test_statuses_go_to_the_runs_queue_ahead_of_runs(github):
    run = a_run(queue="deploy")
    ended(run, "succeeded")
    (task,) = DBTaskResult.objects.filter(task_path=send_outgoing.module_path)
    assert (task.queue_name, task.priority) == ("deploy", outgoing.PRIORITY)
    assert outgoing.PRIORITY > 0  # execute_run's


# The run's page.


def test_the_runs_page_shows_each_attempt_and_why_it_gave_up(github, admin_client, settings):
    settings.OUTGOING_ATTEMPTS = 4
    github.statuses(502, Answer(422, {"message": "Validation Failed"}))
    run = ended(a_run(), "succeeded", "1 step succeeded")
    send_queued()
    page = admin_client.get(reverse("admin:runner_run_change", args=[run.pk])).content.decode()
    assert "Commit statuses and notifications" in page
    assert "status success hookrunner/test: 1 step succeeded" in page
    assert "HTTP 502 (failed, worth retrying), HTTP 502: Bad Gateway" in page
    assert "HTTP 422 (failed, not worth retrying), HTTP 422: Validation Failed" in page
    assert "2 failed (gives up at 4), 0 rate limited (gives up at 10)" in page
    assert "gave up" in page
