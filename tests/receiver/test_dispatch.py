"""The WSGI handler gunicorn serves: deliveries skip settings.MIDDLEWARE for a chain of
their own, and answer exactly as through the whole stack; other paths keep it all."""

import json
from dataclasses import dataclass

import pytest
from django.contrib.sessions.middleware import SessionMiddleware
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import RequestFactory

from runner.models import Delivery, RejectedRequest
from runner.receiver import hosts
from runner.receiver.dispatch import WebhookFirstHandler
from runner.runs import processing
from runner.wsgi import application
from tests.conftest import SignedDelivery

pytestmark = pytest.mark.django_db


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    cookies: list[str]
    body: bytes

    def json(self) -> dict:
        assert self.headers["Content-Type"] == "application/json"
        return json.loads(self.body)


@pytest.fixture
def serve():
    """Call the handler as gunicorn does, with a request built by RequestFactory."""
    handler = WebhookFirstHandler()
    # As Django's test client does: the test's transaction must outlive each request.
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)

    def call(method: str, path: str, body: bytes = b"", **headers: str) -> Answer:
        request = RequestFactory().generic(
            method, path, body, content_type=headers.pop("Content-Type", ""), headers=headers
        )
        started: list = []
        response = handler(request.environ, lambda status, items: started.append(items))
        content = b"".join(response)
        response.close()
        items = started[0]
        cookies = [value for name, value in items if name == "Set-Cookie"]
        return Answer(response.status_code, dict(items), cookies, content)

    yield call
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def deliver(serve, webhook_url):
    def post(delivery: SignedDelivery, path: str = webhook_url, **changes: str) -> Answer:
        return serve("POST", path, delivery.body, **{**delivery.headers(), **changes})

    return post


@pytest.fixture
def sessions_broken(monkeypatch):
    """Any request that goes through SessionMiddleware fails."""

    def broken(self, request):
        raise AssertionError("the session middleware ran")

    monkeypatch.setattr(SessionMiddleware, "process_request", broken)


def test_a_delivery_skips_the_session_middleware_and_is_stored(deliver, sessions_broken):
    delivery = SignedDelivery.of_fixture("push__branch")
    answer = deliver(delivery)
    assert answer.status == 202
    assert answer.json()["status"] == "accepted"
    assert Delivery.objects.get().delivery_id == delivery.delivery_id
    assert answer.cookies == []


def test_the_path_without_its_slash_is_dispatched_alike(deliver, webhook_url, sessions_broken):
    answer = deliver(SignedDelivery.of_fixture("push__branch"), webhook_url.rstrip("/"))
    assert answer.status == 202


def test_a_delivery_keeps_the_security_headers(deliver):
    answer = deliver(SignedDelivery.of_fixture("push__branch"))
    assert answer.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    ("changes", "status", "reason"),
    [
        ({"X-Hub-Signature-256": "sha256=" + "0" * 64}, 403, "does not match"),
        ({"X-GitHub-Event": ""}, 400, "missing X-GitHub-Event"),
        ({"Content-Type": "text/plain"}, 400, "unsupported content type"),
    ],
)
def test_refusals_are_json_and_recorded(deliver, sessions_broken, changes, status, reason):
    answer = deliver(SignedDelivery.of_fixture("push__branch"), **changes)
    assert answer.status == status
    assert reason in answer.json()["detail"]
    assert RejectedRequest.objects.get().http_status == status


def test_bad_json_is_a_json_400(deliver):
    delivery = SignedDelivery.of_fixture("push__branch")
    delivery.body = b'{"ref": '
    answer = deliver(delivery)
    assert answer.status == 400
    assert answer.json()["detail"].startswith("body is not valid JSON")


def test_a_body_over_the_cap_is_a_json_413(deliver, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 1000
    answer = deliver(SignedDelivery.of_fixture("push__branch"))
    assert answer.status == 413
    assert "exceeds the 1000-byte limit" in answer.json()["detail"]


def test_a_get_is_a_json_405_naming_post(serve, webhook_url):
    answer = serve("GET", webhook_url)
    assert (answer.status, answer.headers["Allow"]) == (405, "POST")
    assert answer.json()["status"] == "rejected"


def test_a_crash_is_a_json_500(deliver, monkeypatch):
    monkeypatch.setattr(processing, "decide", lambda event, config: 1 / 0)
    answer = deliver(SignedDelivery.of_fixture("push__branch"))
    assert answer.status == 500
    assert answer.json()["status"] == "failed"


def test_a_refused_host_is_answered_logged_and_recorded(deliver, server_log):
    hosts._logged_at.clear()
    answer = deliver(SignedDelivery.of_fixture("push__branch"), Host="ci.example.com")
    assert answer.status == 400
    assert "is not in ALLOWED_HOSTS" in answer.json()["detail"]
    assert RejectedRequest.objects.get().reason == "host 'ci.example.com' is not in ALLOWED_HOSTS"
    assert "refused a request" in server_log.getvalue()


def test_admin_still_goes_through_sessions_and_csrf(serve):
    login = serve("GET", "/admin/login/")
    assert login.status == 200
    assert any(cookie.startswith("csrftoken=") for cookie in login.cookies)
    assert login.headers["X-Frame-Options"] == "DENY"
    # No CSRF token: refused by CsrfViewMiddleware, which the webhook path never meets.
    posted = serve(
        "POST",
        "/admin/login/",
        b"username=a&password=b",
        **{"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert posted.status == 403


def test_admin_fails_when_sessions_are_broken(serve, sessions_broken):
    assert serve("GET", "/admin/login/").status == 500


def test_the_application_gunicorn_serves_is_the_webhook_first_handler():
    assert isinstance(application, WebhookFirstHandler)
