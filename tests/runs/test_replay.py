import json
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command

from runner.models import Delivery, Run
from runner.runs.replay import replay
from tests.conftest import TEST_PIPELINES, SignedDelivery
from tests.rows import make_delivery
from tests.worker_processes import BASE_DIR, worker_environment

pytestmark = pytest.mark.django_db


@pytest.fixture
def ignored_push(post_delivery, settings, tmp_path):
    """A push to a branch no pipeline listed, stored as ignored; the pipelines file."""
    path = tmp_path / "pipelines.yaml"
    path.write_text(TEST_PIPELINES.read_text())
    settings.PIPELINES_FILE = path
    payload = json.loads(SignedDelivery.of_fixture("push__branch").body)
    payload["ref"] = "refs/heads/gh-pages"
    delivery = SignedDelivery(event="push", body=json.dumps(payload).encode(), delivery_id="gh")
    assert post_delivery(delivery).json()["status"] == "ignored"
    return path


def fix(pipelines_file) -> None:
    """Let test start on gh-pages too."""
    pipelines_file.write_text(TEST_PIPELINES.read_text().replace("branches_ignore: gh-pages", ""))


DEPLOY_SAYS_NO = "deploy: does not start: branch gh-pages matches none of branches (main)"


def test_replay_queues_what_the_fixed_configuration_starts(ignored_push, capsys):
    fix(ignored_push)
    call_command("replay", "gh")
    (run,) = Run.objects.all()
    assert capsys.readouterr().out == (
        f"  test: starts\n  {DEPLOY_SAYS_NO}\ndelivery gh: started 1 run: test (run {run.pk})\n"
    )
    assert (run.pipeline, run.ref, run.delivery.delivery_id) == (
        "test",
        "refs/heads/gh-pages",
        "gh",
    )
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.detail) == ("accepted", "replayed: started 1 run(s): test")


def test_replay_dry_run_shows_and_queues_nothing(ignored_push, capsys):
    fix(ignored_push)
    call_command("replay", "gh", dry_run=True)
    assert capsys.readouterr().out.endswith(
        f"  {DEPLOY_SAYS_NO}\ndelivery gh: would start test (dry run: nothing queued)\n"
    )
    assert not Run.objects.exists()


def test_a_dry_run_says_what_would_start(ignored_push):
    fix(ignored_push)
    assert replay(Delivery.objects.get(), dry_run=True).summary() == "would start test"
    assert not Run.objects.exists()


def test_replay_with_nothing_matching_names_the_delivery_and_each_pipelines_reason(
    ignored_push, capsys
):
    call_command("replay", "gh")
    assert capsys.readouterr().out == (
        "delivery gh: nothing started: test: does not start: branch gh-pages matches "
        f"branches_ignore; {DEPLOY_SAYS_NO}\n"
    )
    assert Delivery.objects.get().status == "ignored"


def test_replay_of_a_repository_without_pipelines_says_so(post_delivery, capsys):
    payload = json.loads(SignedDelivery.of_fixture("push__branch").body)
    payload["repository"]["full_name"] = "acme/other"
    body = json.dumps(payload).encode()
    post_delivery(SignedDelivery(event="push", body=body, delivery_id="other"))
    call_command("replay", "other")
    assert capsys.readouterr().out == (
        f"delivery other: nothing started: no pipelines for acme/other in {TEST_PIPELINES}\n"
    )
    assert not Run.objects.exists()


def replay_process(delivery_id: str, pipelines_file, *options: str) -> subprocess.CompletedProcess:
    """`manage.py replay` run for real against the test database."""
    env = worker_environment(pipelines_file, pipelines_file.parent / "workspaces")
    return subprocess.run(
        [sys.executable, "manage.py", "replay", delivery_id, *options],
        cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_replay_writes_only_its_report_and_no_log_lines_by_default(ignored_push):
    fix(ignored_push)
    replayed = replay_process("gh", ignored_push)
    (run,) = Run.objects.all()
    assert (replayed.returncode, replayed.stderr) == (0, "")
    assert replayed.stdout == (
        f"  test: starts\n  {DEPLOY_SAYS_NO}\ndelivery gh: started 1 run: test (run {run.pk})\n"
    )


@pytest.mark.django_db(transaction=True)
def test_replay_writes_its_log_lines_to_stderr_when_asked_for_more(ignored_push):
    replayed = replay_process("gh", ignored_push, "--verbosity", "2")
    assert replayed.returncode == 0
    assert replayed.stdout.startswith("delivery gh: nothing started: ")
    assert f"INFO runner.config.store pipelines loaded from {ignored_push}" in replayed.stderr


def test_replay_of_an_unreadable_stored_payload_is_a_one_line_error():
    make_delivery(delivery_id="broken")
    with pytest.raises(CommandError) as error:
        call_command("replay", "broken")
    assert str(error.value) == (
        "delivery broken not replayed: push payload field repository.full_name is missing"
    )


def test_replay_of_an_unknown_delivery_is_an_error():
    with pytest.raises(CommandError, match="no stored delivery nope"):
        call_command("replay", "nope")
