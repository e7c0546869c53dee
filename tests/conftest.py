import contextlib
import json
import socket
import textwrap
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django_tasks_db.models import DBTaskResult

from runner.config.github import sign
from runner.config.pipelines_file import PipelinesError
from runner.config.store import pipelines_store
from runner.execution import worker
from runner.models import Run, Step
from runner.outgoing.queue import send_outgoing
from tests.worker_processes import WorkerProcesses

FIXTURES = Path(__file__).parent / "fixtures" / "github"
TEST_PIPELINES = Path(__file__).parent / "fixtures" / "pipelines.yaml"


@pytest.fixture(autouse=True)
def test_pipelines(settings):
    """Every test runs against tests/fixtures/pipelines.yaml unless it says otherwise."""
    settings.PIPELINES_FILE = TEST_PIPELINES
    settings.PIPELINES_CHECK_SECONDS = 0


def fixture_names() -> list[str]:
    return sorted(path.stem for path in FIXTURES.glob("*.json"))


def load_fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


@dataclass
class SignedDelivery:
    """A delivery as GitHub would send it; tests change one part to break it."""

    event: str
    body: bytes
    delivery_id: str
    content_type: str = "application/json"
    secret: str = ""

    @classmethod
    def of_fixture(cls, name: str, **changes) -> "SignedDelivery":
        body = (FIXTURES / f"{name}.json").read_bytes()
        return cls(event=name.split("__")[0], body=body, delivery_id=str(uuid.uuid4()), **changes)

    def headers(self) -> dict[str, str]:
        return {
            "Content-Type": self.content_type,
            "User-Agent": "GitHub-Hookshot/test",
            "X-GitHub-Event": self.event,
            "X-GitHub-Delivery": self.delivery_id,
            "X-GitHub-Hook-ID": "30",
            "X-Hub-Signature-256": sign(self.secret or settings.WEBHOOK_SECRET, self.body),
        }


@pytest.fixture
def webhook_url() -> str:
    return "/" + settings.WEBHOOK_PATH


@pytest.fixture
def post_delivery(client, webhook_url):
    """Send a delivery through Django's test client; extra headers override the signed ones.

    A test that edits pipelines.yaml between deliveries means the next one to see the
    edit: the receiver itself never waits for a reload, so this waits for it first."""

    def post(delivery: SignedDelivery, **header_changes):
        with contextlib.suppress(PipelinesError):
            pipelines_store().newest()
        headers = {**delivery.headers(), **header_changes}
        headers = {name: value for name, value in headers.items() if value is not None}
        content_type = headers.pop("Content-Type")
        return client.generic(
            "POST", webhook_url, delivery.body, content_type=content_type, headers=headers
        )

    return post


def alive(pid: int) -> bool:
    """Whether `pid` still runs a second from now (a kill takes effect asynchronously)."""
    deadline = time.monotonic() + 1
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().split()[2] == "Z":
                    return False
        except FileNotFoundError:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture
def pipelines(settings, tmp_path):
    """Write a pipelines file for acme/webapp from the pipelines' YAML text; its path."""
    settings.WORKSPACES_DIR = tmp_path / "workspaces"

    def write(pipelines_yaml: str) -> Path:
        # A folder of its own: the configuration's folder is hidden from steps, and
        # tests give steps paths elsewhere in tmp_path.
        path = tmp_path / "config" / "pipelines.yaml"
        path.parent.mkdir(exist_ok=True)
        body = textwrap.indent(textwrap.dedent(pipelines_yaml), "      ")
        path.write_text(f"repositories:\n  acme/webapp:\n    pipelines:\n{body}")
        settings.PIPELINES_FILE = path
        return path

    return write


@pytest.fixture
def queued(pipelines, post_delivery):
    """Queue `count` runs of a one-step pipeline through signed pushes, oldest first;
    nothing executes them."""
    pipelines("""\
        ci:
          on: {push: null}
          steps: [{name: build, run: echo built}]
        """)

    def queue(count: int = 1) -> list[Run]:
        ids = []
        for _ in range(count):
            ids += post_delivery(SignedDelivery.of_fixture("push__branch")).json()["runs"]
        return list(Run.objects.filter(pk__in=ids).order_by("pk"))

    return queue


@pytest.fixture
def worker_processes():
    """Start `manage.py worker` processes with `.start(env)`: after the test every one is
    stopped, and every step process group registered with `.register_group` SIGKILLed."""
    with WorkerProcesses() as processes:
        yield processes


def executed(run_id: int) -> Run:
    run = Run.objects.get(pk=run_id)
    worker.execute(run)
    run.refresh_from_db()
    return run


@pytest.fixture
def push(post_delivery):
    """Deliver a push to acme/webapp main and execute the runs it queued."""

    def deliver(fixture: str = "push__branch") -> list[Run]:
        response = post_delivery(SignedDelivery.of_fixture(fixture))
        return [executed(run_id) for run_id in response.json()["runs"]]

    return deliver


def output_of(step: Step) -> str:
    return "".join(step.chunks.values_list("text", flat=True))


def send_queued(timeout: float = 10) -> int:
    """Run the queued send_outgoing tasks, each once its run_after comes, as a worker
    would, until none is left; how many ran."""
    ran = 0
    deadline = time.monotonic() + timeout
    queued = DBTaskResult.objects.filter(task_path=send_outgoing.module_path)
    while queued.filter(status="READY").exists():
        assert time.monotonic() < deadline, "outgoing tasks still queued"
        ready = queued.ready().order_by("run_after", "enqueued_at").first()
        if ready is None:
            time.sleep(0.005)
            continue
        DBTaskResult.objects.filter(pk=ready.pk).update(status="SUCCESSFUL")
        send_outgoing.call(*ready.args_kwargs["args"], **ready.args_kwargs["kwargs"])
        ran += 1
    return ran


def executed_in_a_thread(run_id: int) -> None:
    try:
        executed(run_id)
    finally:
        # PostgreSQL cannot drop the test database while this thread's session is open.
        connection.close()


def start_in_a_thread(run_id: int) -> threading.Thread:
    execution = threading.Thread(target=executed_in_a_thread, args=(run_id,))
    execution.start()
    return execution


def wait_for_output(run_id: int, text: str) -> Step:
    deadline = time.monotonic() + 20
    while True:
        step = Step.objects.filter(run_id=run_id, status="running").first()
        if step and output_of(step) == text:
            return step
        assert time.monotonic() < deadline, f"never saw {text!r} stored while running"
        time.sleep(0.05)


@pytest.fixture
def silent_remote():
    """The URL of a git remote on loopback whose server takes connections and never
    answers: git waits on it until it is stopped."""
    with socket.create_server(("127.0.0.1", 0), backlog=16) as server:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/acme/webapp.git"
