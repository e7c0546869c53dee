"""Notifications: a signed JSON POST about a finished run to each `notify` URL whose rule
says so (always, failure, changes), sent by a task, retried, every attempt recorded."""

import json
import logging
import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from runner.config.definition import RunDefinition
from runner.config.github import sign
from runner.models import Delivery, LogChunk, Outgoing, Run
from runner.outgoing.bodies import notifies
from runner.runs import lifecycle
from tests.conftest import SignedDelivery, executed, send_queued
from tests.fake_github import Answer, FakeGitHub

pytestmark = pytest.mark.django_db

SECRET = "notify-signing-secret-5c2b9a"
NOTIFY = "/notify"
SECRET_ENV = "HR_NOTIFY_SECRET"


@pytest.fixture
def receiver(settings, monkeypatch):
    """A loopback server answering POST /notify (200 unless scripted); retries quick."""
    with FakeGitHub() as fake:
        settings.PUBLIC_URL = "https://ci.example.com"
        settings.OUTGOING_RETRY_SECONDS = 0.01
        settings.OUTGOING_TIMEOUT_SECONDS = 0.3
        monkeypatch.setenv(SECRET_ENV, SECRET)
        yield fake.route("POST", NOTIFY, 200)


def entry(receiver: FakeGitHub, on: str = "always", secret_env: str = SECRET_ENV) -> dict:
    return {"url": receiver.url + NOTIFY, "on": on, "secret_env": secret_env}


def finished(
    status: str, notify: list[dict], ref: str = "refs/heads/main", detail: str = "", took: float = 0
) -> Run:
    """A run of acme/webapp test that its worker finished as `status`."""
    delivery = Delivery.objects.create(delivery_id=str(uuid.uuid4()), event="push", payload={})
    run = Run.objects.create(
        delivery=delivery, repository="acme/webapp", pipeline="test", event="push",
        sha="a" * 40, ref=ref, definition=RunDefinition.from_json({"notify": notify}),
        status="running", started_at=timezone.now() - timedelta(seconds=took),
    )  # fmt: skip
    lifecycle.finish(run, status, detail or status)
    return run


def sent_to(receiver: FakeGitHub) -> list[dict]:
    return [r.json for r in receiver.requests_to(NOTIFY)]


def test_a_finished_run_is_posted_as_signed_json(receiver, pipelines, post_delivery):
    pipelines(f"""\
        test:
          on: {{push: null}}
          steps: [{{name: test, run: 'true'}}]
          notify:
            - url: {receiver.url}{NOTIFY}
              on: always
              secret_env: {SECRET_ENV}
        """)
    (run_id,) = post_delivery(SignedDelivery.of_fixture("push__branch")).json()["runs"]
    run = executed(run_id)
    send_queued()
    (request,) = receiver.requests_to(NOTIFY)
    assert request.header("Content-Type") == "application/json"
    assert request.header("User-Agent") == "hookrunner"
    assert request.header("X-Hookrunner-Event") == "run.finished"
    assert request.header("X-Hub-Signature-256") == sign(SECRET, request.body)
    body = request.json
    assert request.header("X-Hookrunner-Delivery") == body["delivery"]
    assert str(uuid.UUID(body["delivery"])) == body["delivery"]
    page = "https://ci.example.com" + reverse("admin:runner_run_change", args=[run.pk])
    assert body == {
        "event": "run.finished",
        "delivery": body["delivery"],
        "repository": "acme/webapp",
        "pipeline": "test",
        "run": run.pk,
        "status": "succeeded",
        "detail": "1 step succeeded",
        "previous_status": None,
        "github_event": "push",
        "sha": run.sha,
        "ref": "refs/heads/main",
        "pr_number": None,
        "rerun_of": None,
        "duration_seconds": run.duration.total_seconds(),
        "url": page,
        "created_at": run.created_at.isoformat(),
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat(),
    }
    assert run.outgoing.get().state == "sent"


def test_without_secret_env_it_is_sent_unsigned(receiver):
    finished("failed", [entry(receiver, secret_env="")])
    send_queued()
    (request,) = receiver.requests_to(NOTIFY)
    assert request.header("X-Hub-Signature-256") is None
    assert request.json["status"] == "failed"


def test_a_cancelled_run_is_notified(receiver):
    delivery = Delivery.objects.create(delivery_id="d-cancel", event="push", payload={})
    run = Run.objects.create(
        delivery=delivery, repository="acme/webapp", pipeline="test", event="push",
        sha="b" * 40, ref="refs/heads/main",
        definition=RunDefinition.from_json({"notify": [entry(receiver)]}),
    )  # fmt: skip
    lifecycle.cancel(run, "cancelled by alice")
    send_queued()
    (body,) = sent_to(receiver)
    assert (body["status"], body["detail"]) == ("cancelled", "cancelled by alice before it started")


# Retries and giving up.


def test_a_502_is_tried_again_with_the_same_delivery_id_and_signature(receiver):
    receiver.route("POST", NOTIFY, 502, 200)
    run = finished("succeeded", [entry(receiver)])
    send_queued()
    first, second = receiver.requests_to(NOTIFY)
    assert first.header("X-Hookrunner-Delivery") == second.header("X-Hookrunner-Delivery")
    assert second.header("X-Hub-Signature-256") == sign(SECRET, second.body)
    notification = run.outgoing.get()
    assert notification.state == "sent"
    assert [(a["status"], a["outcome"]) for a in notification.attempts] == [
        (502, "retry"),
        (200, "ok"),
    ]
    assert (notification.failures, notification.rate_limited) == (1, 0)


def test_a_401_gives_up_at_once_with_the_error_stored(receiver):
    receiver.route("POST", NOTIFY, Answer(401, {"message": "bad signature"}))
    run = finished("succeeded", [entry(receiver)])
    send_queued()
    notification = run.outgoing.get()
    assert (notification.state, notification.error) == ("gave_up", "HTTP 401: bad signature")
    assert len(receiver.requests) == 1


def test_no_answer_in_time_is_tried_again(receiver):
    receiver.route("POST", NOTIFY, Answer(200, delay=1), 200)
    run = finished("succeeded", [entry(receiver)])
    send_queued()
    notification = run.outgoing.get()
    assert notification.state == "sent"
    assert [(a["status"], a["outcome"], a["error"]) for a in notification.attempts] == [
        (None, "retry", "timed out after 0.3s"),
        (200, "ok", ""),
    ]
    assert (notification.failures, notification.rate_limited) == (1, 0)


def test_a_receiver_that_is_down_is_given_up_after_outgoing_attempts(receiver, settings):
    settings.OUTGOING_ATTEMPTS = 3
    receiver.route("POST", NOTIFY, 503)
    run = finished("failed", [entry(receiver)])
    send_queued()
    notification = run.outgoing.get()
    assert notification.state == "gave_up"
    assert notification.error == "gave up after 3 failed attempts: HTTP 503: Service Unavailable"
    assert len(notification.attempts) == 3
    assert (notification.failures, notification.rate_limited) == (3, 0)
    assert len(receiver.requests) == 3


def test_a_signing_secret_that_is_not_set_gives_up_unsent(receiver, monkeypatch):
    monkeypatch.delenv("HR_NOTIFY_SECRET")
    run = finished("failed", [entry(receiver)])
    send_queued()
    notification = run.outgoing.get()
    assert notification.state == "gave_up"
    assert notification.error == (
        "not sent: secret_env HR_NOTIFY_SECRET is not set, so it cannot be signed"
    )
    assert receiver.requests == []


def test_the_signing_secret_is_never_stored_nor_logged(receiver, caplog):
    caplog.set_level(logging.DEBUG)
    receiver.route("POST", NOTIFY, 500, Answer(400, {"message": f"secret was {SECRET}"}))
    run = finished("failed", [entry(receiver)])
    send_queued()
    assert run.outgoing.get().error == "HTTP 400: secret was [hidden]"
    stored = [
        *Outgoing.objects.values_list(),
        *Run.objects.values_list(),
        *LogChunk.objects.values_list(),
        *DBTaskResult.objects.values_list(),
    ]
    assert SECRET not in repr(stored)
    assert caplog.text
    assert SECRET not in caplog.text


def test_logs_name_only_the_host_of_a_notification_url(receiver, caplog):
    caplog.set_level(logging.INFO)
    notify = [{"url": receiver.url + "/notify?key=hush", "on": "always", "secret_env": ""}]
    receiver.route("POST", NOTIFY, 200)
    finished("failed", notify)
    send_queued()
    assert "notification to 127.0.0.1" in caplog.text
    assert "hush" not in caplog.text


# When.


@pytest.mark.parametrize(
    ("status", "sent"),
    [("succeeded", False), ("failed", True), ("timed_out", True), ("error", True),
     ("cancelled", True), ("skipped", True)],
)  # fmt: skip
def test_failure_notifies_every_run_that_did_not_succeed(receiver, status, sent):
    finished(status, [entry(receiver, on="failure")])
    send_queued()
    assert len(receiver.requests) == int(sent)


def test_changes_notifies_failures_and_the_first_success_after_one(receiver):
    notify = [entry(receiver, on="changes")]
    outcomes = ["succeeded", "failed", "failed", "succeeded", "succeeded", "error", "succeeded"]
    for status in outcomes:
        finished(status, notify)
    send_queued()
    assert [(body["status"], body["previous_status"]) for body in sent_to(receiver)] == [
        ("failed", "succeeded"),
        ("failed", "failed"),
        ("succeeded", "failed"),
        ("error", "succeeded"),
        ("succeeded", "error"),
    ]


def test_changes_looks_at_the_same_branch_only(receiver):
    notify = [entry(receiver, on="changes")]
    finished("failed", notify, ref="refs/heads/feature")
    finished("succeeded", notify, ref="refs/heads/main")
    send_queued()
    assert [body["status"] for body in sent_to(receiver)] == ["failed"]


@pytest.mark.parametrize(
    ("rule", "status", "previous", "sent"),
    [
        ("always", "succeeded", None, True),
        ("always", "failed", "failed", True),
        ("failure", "succeeded", "failed", False),
        ("failure", "cancelled", None, True),
        ("changes", "succeeded", None, False),
        ("changes", "succeeded", "succeeded", False),
        ("changes", "succeeded", "failed", True),
        ("changes", "succeeded", "skipped", True),
        ("changes", "failed", "failed", True),
        ("sometimes", "failed", None, False),
    ],
)
def test_rules(rule, status, previous, sent):
    assert notifies(rule, status, previous) is sent


def test_each_entry_is_its_own_request(receiver):
    notify = [entry(receiver), entry(receiver, on="failure", secret_env=""), entry(receiver)]
    run = finished("succeeded", notify)
    send_queued()
    assert run.outgoing.count() == 2
    deliveries = {r.header("X-Hookrunner-Delivery") for r in receiver.requests}
    assert len(deliveries) == 2


def test_without_public_url_there_is_no_link(receiver, settings):
    settings.PUBLIC_URL = ""
    finished("failed", [entry(receiver)])
    send_queued()
    assert sent_to(receiver)[0]["url"] is None


def test_the_runs_page_shows_the_notification_and_its_attempts(receiver, admin_client):
    receiver.route("POST", NOTIFY, 502, 204)
    run = finished("failed", [entry(receiver)])
    send_queued()
    page = admin_client.get(reverse("admin:runner_run_change", args=[run.pk])).content.decode()
    delivery = run.outgoing.get().body["delivery"]
    assert f"notification run.finished {delivery}" in page
    assert receiver.url + NOTIFY in page
    assert "HTTP 502 (failed, worth retrying), HTTP 502: Bad Gateway" in page
    assert "HTTP 204 (ok)" in page


def test_the_body_sent_is_the_body_signed(receiver):
    finished("failed", [entry(receiver)], detail="step test failed with exit code 1", took=2)
    send_queued()
    (request,) = receiver.requests_to(NOTIFY)
    assert json.loads(request.body) == request.json
    assert request.json["duration_seconds"] == pytest.approx(2, abs=0.5)
