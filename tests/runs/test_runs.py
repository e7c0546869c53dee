"""Deliveries that start pipelines: Run rows and their tasks, committed together."""

import json

import pytest
from django_tasks_db.models import DBTaskResult

from runner.config.github import sign
from runner.models import Delivery, Run
from runner.runs import processing
from tests.conftest import TEST_PIPELINES, SignedDelivery

pytestmark = pytest.mark.django_db


def answer_of(response) -> dict:
    return response.json()


def test_push_to_main_queues_one_run_per_matching_pipeline(post_delivery):
    response = post_delivery(SignedDelivery.of_fixture("push__branch"))
    assert response.status_code == 202
    runs = list(Run.objects.order_by("pk"))
    assert answer_of(response)["runs"] == [run.pk for run in runs]
    assert [(run.pipeline, run.queue, run.status) for run in runs] == [
        ("test", "default", "queued"),
        ("deploy", "deploy", "queued"),
    ]
    test_run = runs[0]
    assert (test_run.repository, test_run.event, test_run.ref, test_run.sha) == (
        "acme/webapp",
        "push",
        "refs/heads/main",
        "fdf0d9b48aca90fb0019f29d9611992528323408",
    )
    assert test_run.delivery == Delivery.objects.get()
    assert test_run.definition.to_json()["steps"] == [
        {
            "name": "test",
            "run": "make test",
            "timeout": 3600,
            "env": {},
            "shell": ["bash", "-e", "-o", "pipefail", "-c"],
        }
    ]


def test_each_run_has_its_task_queued_on_the_pipelines_queue(post_delivery):
    post_delivery(SignedDelivery.of_fixture("push__branch"))
    for run in Run.objects.all():
        task = DBTaskResult.objects.get(id=run.task_id)
        assert task.task_path == "runner.execution.tasks.execute_run"
        assert task.queue_name == run.queue
        assert task.args_kwargs == {"args": [], "kwargs": {}}
        assert task.status == "READY"


def test_push_to_unlisted_branch_starts_no_run_and_says_why(post_delivery):
    payload = json.loads(SignedDelivery.of_fixture("push__branch").body)
    payload["ref"] = "refs/heads/gh-pages"
    delivery = SignedDelivery(event="push", body=json.dumps(payload).encode(), delivery_id="g")
    response = post_delivery(delivery)
    assert response.status_code == 202
    assert answer_of(response) == {
        "delivery": "g",
        "status": "ignored",
        "runs": [],
        "detail": "no pipeline matched: test: branch gh-pages matches branches_ignore; "
        "deploy: branch gh-pages matches none of branches (main)",
    }
    assert not Run.objects.exists()
    assert not DBTaskResult.objects.exists()


def test_repository_without_pipelines_is_ignored_with_reason(post_delivery):
    payload = json.loads(SignedDelivery.of_fixture("push__branch").body)
    payload["repository"]["full_name"] = "acme/other"
    delivery = SignedDelivery(event="push", body=json.dumps(payload).encode(), delivery_id="o")
    answer = answer_of(post_delivery(delivery))
    assert answer["status"] == "ignored"
    assert answer["detail"].startswith("no pipelines for acme/other in ")


def test_pull_request_queues_a_run_for_its_head_commit(post_delivery):
    post_delivery(SignedDelivery.of_fixture("pull_request__opened"))
    run = Run.objects.get()
    assert (run.pipeline, run.pr_number, run.ref, run.sha, run.from_fork) == (
        "test",
        42,
        "refs/pull/42/merge",
        "28c7b3c4807057aac190c47af0e74a93a8dc777e",
        False,
    )


@pytest.mark.parametrize("fixture", ["pull_request__from_fork", "push__branch_deleted"])
def test_forks_and_deletions_start_nothing_by_default(post_delivery, fixture):
    answer = answer_of(post_delivery(SignedDelivery.of_fixture(fixture)))
    assert answer["status"] == "ignored"
    assert not Run.objects.exists()


def test_failure_after_runs_are_created_leaves_no_runs_and_no_tasks(post_delivery, monkeypatch):
    created = []

    def start_then_fail(*args):
        created.extend(real_create_runs(*args))
        raise RuntimeError("database went away")

    real_create_runs = processing.create_runs
    monkeypatch.setattr(processing, "create_runs", start_then_fail)
    response = post_delivery(SignedDelivery.of_fixture("push__branch"))
    assert len(created) == 2
    assert response.status_code == 500
    assert answer_of(response)["runs"] == []
    assert not Run.objects.exists()
    assert not DBTaskResult.objects.exists()
    assert Delivery.objects.get().status == Delivery.Status.FAILED


def test_repeat_of_a_delivery_answers_with_its_original_runs(post_delivery):
    delivery = SignedDelivery.of_fixture("push__branch")
    first = answer_of(post_delivery(delivery))
    repeat = answer_of(post_delivery(delivery))
    assert repeat["runs"] == first["runs"]
    assert len(first["runs"]) == 2
    assert Run.objects.count() == 2
    assert DBTaskResult.objects.count() == 2


@pytest.fixture
def per_repository_secret(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("WEBAPP_HOOK_SECRET", "webapp's own")
    config = tmp_path / "pipelines.yaml"
    config.write_text(
        "repositories:\n"
        "  acme/webapp:\n"
        "    secret_env: WEBAPP_HOOK_SECRET\n"
        "    pipelines: {ci: {on: {push: null}, steps: [{name: s, run: echo}]}}\n"
        "  acme/*:\n"
        "    pipelines: {lint: {on: {push: null}, steps: [{name: s, run: echo}]}}\n"
    )
    settings.PIPELINES_FILE = config
    return "webapp's own"


def test_repository_with_its_own_secret_accepts_it(post_delivery, per_repository_secret):
    delivery = SignedDelivery.of_fixture("push__branch", secret=per_repository_secret)
    assert post_delivery(delivery).status_code == 202


def test_repository_with_its_own_secret_refuses_the_global_one(
    post_delivery, per_repository_secret
):
    response = post_delivery(SignedDelivery.of_fixture("push__branch"))
    assert response.status_code == 403
    assert answer_of(response)["detail"] == "signed with a secret that is not acme/webapp's"


def test_one_repositorys_secret_does_not_open_another(post_delivery, per_repository_secret):
    payload = json.loads(SignedDelivery.of_fixture("push__branch").body)
    payload["repository"]["full_name"] = "acme/api"
    delivery = SignedDelivery(
        event="push",
        body=json.dumps(payload).encode(),
        delivery_id="x",
        secret=per_repository_secret,
    )
    assert post_delivery(delivery).status_code == 403
    delivery.secret = ""
    assert post_delivery(delivery).status_code == 202


def test_organization_ping_may_use_a_repository_secret(post_delivery, per_repository_secret):
    payload = {"zen": "Hi.", "hook_id": 1, "organization": {"login": "acme"}}
    body = json.dumps(payload).encode()
    delivery = SignedDelivery(
        event="ping", body=body, delivery_id="p", secret=per_repository_secret
    )
    assert sign(per_repository_secret, body) == delivery.headers()["X-Hub-Signature-256"]
    assert post_delivery(delivery).status_code == 200


def test_broken_pipelines_file_at_first_use_fails_the_delivery_but_keeps_it(
    post_delivery, settings, tmp_path
):
    broken = tmp_path / "pipelines.yaml"
    broken.write_text("repositories: [\n")
    settings.PIPELINES_FILE = broken
    response = post_delivery(SignedDelivery.of_fixture("push__branch"))
    assert response.status_code == 500
    stored = Delivery.objects.get()
    assert stored.status == Delivery.Status.FAILED
    assert "InvalidPipelines" in stored.detail
    assert "YAML syntax" in stored.detail


def test_an_edited_pipelines_file_applies_once_reloaded_and_a_broken_one_keeps_the_last(
    post_delivery, settings, tmp_path
):
    path = tmp_path / "pipelines.yaml"
    path.write_text(TEST_PIPELINES.read_text())
    settings.PIPELINES_FILE = path
    post_delivery(SignedDelivery.of_fixture("push__branch"))
    path.write_text(TEST_PIPELINES.read_text().replace("deploy:", "release:"))
    post_delivery(SignedDelivery.of_fixture("push__branch"))
    path.write_text("repositories: broken")
    post_delivery(SignedDelivery.of_fixture("push__branch"))
    pipelines = list(Run.objects.order_by("pk").values_list("pipeline", flat=True))
    assert pipelines == ["test", "deploy", "test", "release", "test", "release"]
