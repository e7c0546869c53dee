"""GET /healthz: plain JSON for load balancers and monitoring, 503 only when the database
does not answer, never a 500."""

import json
import urllib.request

import pytest
from django.test import Client
from django.urls import reverse

from runner.models import WorkerSeen
from runner.ops import health
from tests.rows import database_down, seen_worker, timed_run

pytestmark = pytest.mark.django_db

KEYS = {
    "status",
    "sandbox",
    "problems",
    "database",
    "pipelines",
    "queued",
    "oldest_queued_seconds",
    "queues",
    "workers",
}


def get_health(client: Client) -> tuple[int, dict]:
    response = client.get(reverse("healthz"))
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    return response.status_code, response.json()


def test_ok_with_a_live_worker_and_nothing_waiting(client):
    seen_worker("box:1", "*", ago=2)
    timed_run("succeeded", took=30)
    status, body = get_health(client)
    assert status == 200
    assert set(body) == KEYS
    assert body == {
        "status": "ok",
        "problems": [],
        "database": "ok",
        "pipelines": "ok",
        "queued": 0,
        "oldest_queued_seconds": None,
        "queues": {},
        "workers": {
            "alive": 1,
            "queues": ["*"],
            "last_seen_seconds_ago": body["workers"]["last_seen_seconds_ago"],
        },
        "sandbox": "ok",
    }
    assert 2 <= body["workers"]["last_seen_seconds_ago"] < 10


def test_degraded_when_a_live_worker_cannot_sandbox_steps(client):
    seen_worker("box:1", "*", ago=2)
    seen_worker("box:2", "*", ago=2)
    problem = "bubblewrap is not installed (bwrap was not found): apt-get install bubblewrap"
    WorkerSeen.objects.filter(name="box:2").update(sandbox_problem=problem)
    status, body = get_health(client)
    assert (status, body["status"], body["sandbox"]) == (200, "degraded", problem)
    assert body["problems"] == [f"a worker cannot sandbox steps: {problem}"]


def test_queued_runs_are_counted_per_queue_with_the_oldest_age(client, settings):
    settings.HEALTH_QUEUE_AGE_SECONDS = 300
    seen_worker("box:1", "default,deploy")
    timed_run("queued", queued_ago=100)
    timed_run("queued", queued_ago=40)
    timed_run("queued", queue="deploy", queued_ago=10)
    timed_run("running", queued_ago=900)
    status, body = get_health(client)
    assert (status, body["status"], body["problems"]) == (200, "ok", [])
    assert body["queued"] == 3
    assert 100 <= body["oldest_queued_seconds"] < 110
    assert body["queues"]["default"]["queued"] == 2
    assert 100 <= body["queues"]["default"]["oldest_queued_seconds"] < 110
    assert body["queues"]["deploy"]["queued"] == 1
    assert 10 <= body["queues"]["deploy"]["oldest_queued_seconds"] < 20


def test_degraded_when_no_worker_was_seen_recently(client, settings):
    settings.HEALTH_WORKER_SILENT_SECONDS = 30
    seen_worker("box:1", ago=90)
    status, body = get_health(client)
    assert (status, body["status"]) == (200, "degraded")
    assert body["problems"] == ["no worker has said it is alive in the last 30 s"]
    assert body["workers"]["alive"] == 0
    assert 90 <= body["workers"]["last_seen_seconds_ago"] < 100


def test_degraded_when_no_worker_was_ever_seen(client):
    status, body = get_health(client)
    assert (status, body["status"]) == (200, "degraded")
    assert body["workers"] == {"alive": 0, "queues": [], "last_seen_seconds_ago": None}


def test_degraded_when_a_queued_run_waits_too_long(client, settings):
    settings.HEALTH_QUEUE_AGE_SECONDS = 300
    seen_worker("box:1")
    timed_run("queued", queued_ago=400)
    status, body = get_health(client)
    assert (status, body["status"]) == (200, "degraded")
    assert len(body["problems"]) == 1
    assert body["problems"][0].startswith("the oldest run in queue 'default' has waited 40")


def test_degraded_when_runs_wait_in_a_queue_no_live_worker_takes(client):
    seen_worker("box:1", "default")
    seen_worker("box:2", "deploy", ago=3600)  # long gone
    timed_run("queued", queue="deploy", queued_ago=1)
    status, body = get_health(client)
    assert (status, body["status"]) == (200, "degraded")
    assert body["problems"] == ["runs wait in queue 'deploy', which no live worker takes"]
    assert body["workers"]["queues"] == ["default"]


def test_degraded_with_the_first_problem_of_an_invalid_pipelines_file(client, pipelines):
    seen_worker("box:1")
    path = pipelines("""
        test:
          on: {push: {}}
          stpes: []
    """)
    status, body = get_health(client)
    assert (status, body["status"]) == (200, "degraded")
    assert body["problems"] == ["pipelines.yaml is invalid"]
    first = body["pipelines"]
    assert first.startswith(f"invalid: {path}:")
    assert "\n" not in first
    # Problems come in line order: the pipeline (line 5) has no steps, before its
    # misspelt key (line 7).
    assert first.endswith("repositories.acme/webapp.pipelines.test: needs 'steps'")


def test_a_get_takes_three_queries_however_many_rows(client, django_assert_num_queries):
    seen_worker("box:1")
    with django_assert_num_queries(3):
        client.get(reverse("healthz"))
    for index in range(30):
        timed_run("queued", queue=f"q{index % 3}")
        seen_worker(f"box:{index + 2}")
    with django_assert_num_queries(3):
        client.get(reverse("healthz"))


def test_head_is_answered_and_post_is_405_without_csrf():
    client = Client(enforce_csrf_checks=True)
    assert client.head(reverse("healthz")).status_code == 200
    response = client.post(reverse("healthz"))
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"


@pytest.mark.django_db(transaction=True)
def test_fail_and_503_when_the_database_does_not_answer(client):
    with database_down():
        status, body = get_health(client)
    assert status == 503
    assert set(body) == KEYS
    assert body["status"] == "fail"
    assert body["problems"] == ["the database does not answer"]
    assert body["database"] == "unreachable (OperationalError; the server log has why)"
    assert body["pipelines"] == "ok"
    assert body["queued"] is body["oldest_queued_seconds"] is body["workers"] is None


def test_an_unexpected_error_is_a_503_with_json_not_a_500(client, monkeypatch):
    def broken():
        raise RuntimeError("bug")

    monkeypatch.setattr(health, "health", broken)
    status, body = get_health(client)
    assert status == 503
    assert body["status"] == "fail"


@pytest.mark.django_db(transaction=True)
def test_over_http(live_server):
    seen_worker("box:1")
    timed_run("queued", queued_ago=5)
    with urllib.request.urlopen(f"{live_server.url}/healthz", timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/json"
        body = json.load(response)
    assert body["status"] == "ok"
    assert body["queued"] == 1
