"""A worker process records that it is alive, for /healthz and admin's list of workers."""

import socket

import pytest
from django.urls import reverse

from runner.models import WorkerSeen
from tests.worker_processes import wait_for, worker_environment

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_running_worker_is_seen_with_its_queues_and_keeps_being_seen(
    worker_processes, settings, tmp_path
):
    env = worker_environment(settings.PIPELINES_FILE, tmp_path / "workspaces")
    worker = worker_processes.start({**env, "WORKER_BEAT_SECONDS": "0.2"})
    name = f"{socket.gethostname()}:{worker.pid}"
    first = wait_for(lambda: WorkerSeen.objects.filter(name=name).first(), "worker seen", 30)
    assert first.queues == "*"
    wait_for(
        lambda: WorkerSeen.objects.filter(name=name, seen_at__gt=first.seen_at).exists(),
        "seen again",
    )


def test_admin_lists_workers(admin_client):
    WorkerSeen.beat("box:12", "deploy")
    response = admin_client.get(reverse("admin:runner_workerseen_changelist"))
    assert b"box:12" in response.content
    assert b"deploy" in response.content
