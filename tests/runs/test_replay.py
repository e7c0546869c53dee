import json

import pytest
from django.core.management import CommandError, call_command

from runner.models import Delivery, Run
from runner.runs.replay import replay
from tests.conftest import TEST_PIPELINES, SignedDelivery

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


def test_replay_queues_what_the_fixed_configuration_starts(ignored_push, capsys):
    ignored_push.write_text(TEST_PIPELINES.read_text().replace("branches_ignore: gh-pages", ""))
    call_command("replay", "gh")
    output = capsys.readouterr().out
    (run,) = Run.objects.all()
    assert "  test: starts" in output
    assert output.endswith(f"queued runs {run.pk}\n")
    assert (run.pipeline, run.ref, run.delivery.delivery_id) == (
        "test",
        "refs/heads/gh-pages",
        "gh",
    )
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.detail) == ("accepted", "replayed: started 1 run(s): test")


def test_replay_dry_run_shows_and_queues_nothing(ignored_push, capsys):
    ignored_push.write_text(TEST_PIPELINES.read_text().replace("branches_ignore: gh-pages", ""))
    call_command("replay", "gh", dry_run=True)
    assert capsys.readouterr().out.endswith("nothing queued (dry run)\n")
    assert not Run.objects.exists()


def test_a_dry_run_says_what_would_start(ignored_push):
    ignored_push.write_text(TEST_PIPELINES.read_text().replace("branches_ignore: gh-pages", ""))
    assert replay(Delivery.objects.get(), dry_run=True).summary() == "would start test"
    assert not Run.objects.exists()


def test_replay_with_nothing_matching_says_why(ignored_push, capsys):
    call_command("replay", "gh")
    output = capsys.readouterr().out
    assert "test: does not start: branch gh-pages matches branches_ignore" in output
    assert Delivery.objects.get().status == "ignored"


def test_replay_of_an_unknown_delivery_is_an_error():
    with pytest.raises(CommandError, match="no stored delivery nope"):
        call_command("replay", "nope")
