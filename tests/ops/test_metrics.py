"""GET /metrics: Prometheus' text format, computed from the database at scrape time; off
unless enabled, and not public."""

import gzip
import urllib.error
import urllib.request
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from runner.models import Delivery, Run, Step
from runner.ops.metrics import BUCKETS
from tests.rows import database_down, make_delivery, seen_worker, timed_run

pytestmark = pytest.mark.django_db

TOKEN = "s3cret-metrics-token"
LE = [f"{float(bound)}" for bound in BUCKETS] + ["+Inf"]


@pytest.fixture
def enabled(settings):
    settings.METRICS_ENABLED = True
    settings.METRICS_TOKEN = ""
    settings.METRICS_WINDOW_SECONDS = 24 * 3600


def scrape(client: Client, **extra) -> dict[str, dict[tuple, float]]:
    """Each metric family's samples as {(sample name, sorted labels...): value}."""
    response = client.get(reverse("metrics"), **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    assert response["Cache-Control"] == "no-store"
    return samples(response.content.decode())


def samples(text: str) -> dict[str, dict[tuple, float]]:
    return {
        family.name: {
            (sample.name, *sorted(sample.labels.items())): sample.value for sample in family.samples
        }
        for family in text_string_to_metric_families(text)
    }


def delivery(status: str) -> Delivery:
    return make_delivery(status=status)


def step(run: Run, index: int, name: str, took: float | None) -> Step:
    finished_at = started_at = None
    if took is not None:
        finished_at = run.finished_at or run.created_at + timedelta(hours=1)
        started_at = finished_at - timedelta(seconds=took)
    return Step.objects.create(
        run=run,
        index=index,
        name=name,
        status="succeeded" if took is not None else "skipped",
        started_at=started_at,
        finished_at=finished_at,
    )


def test_off_unless_enabled(client, settings):
    settings.METRICS_ENABLED = False
    settings.METRICS_TOKEN = TOKEN
    for response in (
        client.get(reverse("metrics"), headers={"Authorization": f"Bearer {TOKEN}"}),
        client.get(reverse("metrics")),
        client.post(reverse("metrics")),
    ):
        assert response.status_code == 404


def test_a_token_is_required_when_set(client, settings, enabled):
    settings.METRICS_TOKEN = TOKEN
    url = reverse("metrics")
    missing = client.get(url)
    assert missing.status_code == 401
    assert missing["WWW-Authenticate"] == 'Bearer realm="hookrunner metrics"'
    assert client.get(url, headers={"Authorization": TOKEN}).status_code == 401
    assert client.get(url, headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    assert client.get(url, headers={"Authorization": "Bearer"}).status_code == 401
    for wrong in ("wrong", TOKEN[:-1], TOKEN + "x", "s3cret-metrics-tokén", "€"):
        response = client.get(url, headers={"Authorization": f"Bearer {wrong}"})
        assert response.status_code == 403, wrong
    assert client.get(url, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert client.get(url, headers={"Authorization": f"bearer {TOKEN}"}).status_code == 200


def test_with_a_token_any_address_may_scrape(client, settings, enabled):
    settings.METRICS_TOKEN = TOKEN
    response = client.get(
        reverse("metrics"),
        REMOTE_ADDR="203.0.113.9",
        headers={"Authorization": f"Bearer {TOKEN}", "X-Forwarded-For": "198.51.100.1"},
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("address", "headers", "allowed"),
    [
        ("127.0.0.1", {}, True),
        ("127.0.0.53", {}, True),
        ("::1", {}, True),
        ("::ffff:127.0.0.1", {}, True),
        ("10.0.0.5", {}, False),
        ("203.0.113.9", {}, False),
        ("", {}, False),
        # A proxy on the same machine makes every client look local.
        ("127.0.0.1", {"X-Forwarded-For": "203.0.113.9"}, False),
        ("127.0.0.1", {"X-Real-IP": "203.0.113.9"}, False),
        ("::1", {"Forwarded": "for=203.0.113.9"}, False),
    ],
)
def test_without_a_token_only_direct_loopback_clients(client, enabled, address, headers, allowed):
    response = client.get(reverse("metrics"), REMOTE_ADDR=address, headers=headers)
    assert response.status_code == (200 if allowed else 403)


def test_get_only_and_no_csrf_token_needed(enabled):
    client = Client(enforce_csrf_checks=True)
    assert client.get(reverse("metrics")).status_code == 200
    for method in (client.post, client.put, client.delete, client.head):
        response = method(reverse("metrics"))
        assert response.status_code == 405
        assert response["Allow"] == "GET"


def test_deliveries_kept_by_status(client, enabled):
    for status in ["accepted"] * 3 + ["ignored"] * 2 + ["duplicate"]:
        delivery(status)
    kept = scrape(client)["hookrunner_deliveries_kept"]
    assert kept == {
        ("hookrunner_deliveries_kept", ("status", "received")): 0,
        ("hookrunner_deliveries_kept", ("status", "accepted")): 3,
        ("hookrunner_deliveries_kept", ("status", "ignored")): 2,
        ("hookrunner_deliveries_kept", ("status", "duplicate")): 1,
        ("hookrunner_deliveries_kept", ("status", "failed")): 0,
    }


def test_runs_kept_by_status_repository_and_pipeline_with_zeros(client, enabled):
    for status in ("succeeded", "succeeded", "failed", "queued"):
        timed_run(status)
    timed_run("timed_out", repository="acme/api", pipeline="deploy")
    runs = scrape(client)["hookrunner_runs_kept"]
    values = {
        (labels["repository"], labels["pipeline"], labels["status"]): value
        for (_, *pairs), value in runs.items()
        for labels in [dict(pairs)]
    }
    statuses = Run.Status.values
    assert len(values) == 2 * len(statuses)
    assert {key: n for key, n in values.items() if n} == {
        ("acme/webapp", "test", "succeeded"): 2,
        ("acme/webapp", "test", "failed"): 1,
        ("acme/webapp", "test", "queued"): 1,
        ("acme/api", "deploy", "timed_out"): 1,
    }


def test_queue_depth_and_oldest_queued_age(client, enabled):
    timed_run("queued", queued_ago=120)
    timed_run("queued", queued_ago=30)
    timed_run("queued", queue="gpu", queued_ago=5)
    timed_run("running", queued_ago=4000)
    timed_run("succeeded", queued_ago=4000, took=10)
    scraped = scrape(client)
    depth = {
        dict(pairs)["queue"]: value
        for (_, *pairs), value in scraped["hookrunner_queue_depth"].items()
    }
    oldest = {
        dict(pairs)["queue"]: value
        for (_, *pairs), value in scraped["hookrunner_oldest_queued_seconds"].items()
    }
    # deploy is a queue of tests/fixtures/pipelines.yaml: shown, empty.
    assert depth == {"default": 2, "deploy": 0, "gpu": 1}
    assert 120 <= oldest["default"] < 130
    assert 5 <= oldest["gpu"] < 15
    assert oldest["deploy"] == 0


def test_run_durations_histogram_is_cumulative_and_matches_the_rows(client, enabled):
    # le is inclusive: a run of exactly 1 s is in the 1 s bucket.
    durations = [0.5, 1, 3, 45, 59.9, 700, 4000]
    for took in durations:
        timed_run("succeeded", took=took)
    timed_run("failed", took=20, repository="acme/api", pipeline="deploy")
    # Not counted: unfinished, never started, queued before the window.
    timed_run("running")
    timed_run("queued")
    cancelled = timed_run("cancelled")  # before it started
    Run.objects.filter(pk=cancelled.pk).update(finished_at=cancelled.created_at)
    timed_run("succeeded", took=2, queued_ago=2 * 24 * 3600)

    scraped = scrape(client)
    family = scraped["hookrunner_run_duration_seconds"]
    labels = (("pipeline", "test"), ("repository", "acme/webapp"))
    buckets = [family[("hookrunner_run_duration_seconds_bucket", ("le", le), *labels)] for le in LE]
    expected = [sum(took <= bound for took in durations) for bound in BUCKETS]
    assert buckets == [*expected, len(durations)]
    assert buckets == sorted(buckets)  # cumulative
    assert expected == [2, 3, 3, 3, 5, 5, 5, 5, 6, 6]
    gcount = scraped["hookrunner_run_duration_seconds_gcount"]
    gsum = scraped["hookrunner_run_duration_seconds_gsum"]
    assert gcount[("hookrunner_run_duration_seconds_gcount", *labels)] == len(durations)
    assert gsum[("hookrunner_run_duration_seconds_gsum", *labels)] == pytest.approx(sum(durations))
    other = (("pipeline", "deploy"), ("repository", "acme/api"))
    assert family[("hookrunner_run_duration_seconds_bucket", ("le", "15.0"), *other)] == 0
    assert family[("hookrunner_run_duration_seconds_bucket", ("le", "30.0"), *other)] == 1
    assert len(family) == 2 * len(LE)


def test_step_durations_histogram_by_step(client, enabled):
    run = timed_run("succeeded", took=100)
    step(run, 0, "install", 12)
    step(run, 1, "test", 61)
    step(run, 2, "report", None)  # skipped: never started
    other = timed_run("failed", took=50)
    step(other, 0, "install", 14)
    step(other, 1, "test", 30)
    family = scrape(client)["hookrunner_step_duration_seconds"]

    def buckets(name: str) -> list[float]:
        labels = (("pipeline", "test"), ("repository", "acme/webapp"), ("step", name))
        return [
            family[("hookrunner_step_duration_seconds_bucket", ("le", le), *labels)] for le in LE
        ]

    assert buckets("install") == [0, 0, 2, 2, 2, 2, 2, 2, 2, 2, 2]
    assert buckets("test") == [0, 0, 0, 1, 1, 2, 2, 2, 2, 2, 2]
    assert len(family) == 2 * len(LE)


def test_workers_alive_by_queues_and_pipelines_valid(client, enabled, settings, pipelines):
    settings.HEALTH_WORKER_SILENT_SECONDS = 30
    seen_worker("box:1", "*")
    seen_worker("box:2", "*")
    seen_worker("box:3", "deploy")
    seen_worker("box:4", "deploy", ago=60)
    scraped = scrape(client)
    assert scraped["hookrunner_workers_alive"] == {
        ("hookrunner_workers_alive", ("queues", "*")): 2,
        ("hookrunner_workers_alive", ("queues", "deploy")): 1,
    }
    assert scraped["hookrunner_pipelines_valid"] == {("hookrunner_pipelines_valid",): 1}
    pipelines("test: {}")
    invalid = scrape(client)["hookrunner_pipelines_valid"]
    assert invalid == {("hookrunner_pipelines_valid",): 0}


def test_a_scrape_takes_six_queries_however_many_rows(client, enabled):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            scrape(client)
        return len(captured)

    timed_run("succeeded", took=3)
    few = queries()
    assert few <= 6
    for index in range(40):
        run = timed_run(
            ["succeeded", "failed", "queued", "running"][index % 4],
            repository=f"acme/r{index % 5}",
            pipeline=f"p{index % 3}",
            queue=f"q{index % 4}",
            took=index if index % 4 < 2 else None,
        )
        step(run, 0, f"s{index % 2}", index / 2 if index % 4 < 2 else None)
        delivery("accepted")
        seen_worker(f"box:{index}", f"q{index % 4}")
    assert queries() == few


def test_openmetrics_when_asked_with_gauge_histograms(client, enabled):
    timed_run("succeeded", took=3)
    response = client.get(
        reverse("metrics"), headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert response["Content-Type"].startswith("application/openmetrics-text")
    families = {family.name: family for family in openmetrics_families(response.content.decode())}
    assert families["hookrunner_run_duration_seconds"].type == "gaugehistogram"
    assert families["hookrunner_queue_depth"].type == "gauge"


def test_gzip_when_asked(client, enabled):
    timed_run("succeeded", took=3)
    response = client.get(reverse("metrics"), headers={"Accept-Encoding": "gzip"})
    assert response["Content-Encoding"] == "gzip"
    assert "hookrunner_runs_kept" in gzip.decompress(response.content).decode()


@pytest.mark.django_db(transaction=True)
def test_503_when_the_database_does_not_answer(client, enabled):
    with database_down():
        response = client.get(reverse("metrics"))
    assert response.status_code == 503


@pytest.mark.django_db(transaction=True)
def test_over_http_with_a_token(live_server, settings, enabled):
    settings.METRICS_TOKEN = TOKEN
    timed_run("succeeded", took=3)
    url = f"{live_server.url}/metrics"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=10)
    assert refused.value.code == 401
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        text = response.read().decode()
    runs = samples(text)["hookrunner_runs_kept"]
    key = ("hookrunner_runs_kept", ("pipeline", "test"), ("repository", "acme/webapp"))
    assert runs[(*key, ("status", "succeeded"))] == 1


@pytest.mark.django_db(transaction=True)
def test_over_http_from_loopback_without_a_token(live_server, enabled):
    with urllib.request.urlopen(f"{live_server.url}/metrics", timeout=10) as response:
        assert response.status == 200
        assert "hookrunner_queue_depth" in response.read().decode()
