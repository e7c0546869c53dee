import os
import socket
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from runner.models import Delivery
from runner.outgoing.reconcile import Attempt, decide, latest_hook_id
from tests.fake_github import Answer, FakeGitHub

pytestmark = pytest.mark.django_db

TOKEN = "github_pat_reconcile_test_token_0123456789"
REPOSITORY = "acme/webapp"
HOOK_ID = 30
DELIVERIES_PATH = f"/repos/{REPOSITORY}/hooks/{HOOK_ID}/deliveries"
STATUS_TEXT = {
    200: "OK",
    202: "Accepted",
    403: "Invalid HTTP Response: 403",
    500: "Invalid HTTP Response: 500",
    502: "Invalid HTTP Response: 502",
}


class Hook:
    """A repository webhook's deliveries as GitHub lists them, served by the fake GitHub
    page after page (Link header, cursor), and the redeliveries asked of it."""

    def __init__(self, github: FakeGitHub) -> None:
        self.github = github
        self.items: list[dict] = []
        self.next_id = 1000
        self.listing: Answer | None = None  # answers every listing instead, when set
        self.failing_first: list[Answer] = []  # answers before the listing's pages
        self.redelivery_answer = 202

    def add(
        self, guid: str, ago: timedelta, status_code: int, redelivery: bool = False, status=""
    ) -> int:
        self.next_id += 1
        self.items.append(
            {
                "id": self.next_id,
                "guid": guid,
                "delivered_at": (datetime.now(UTC) - ago).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "redelivery": redelivery,
                "duration": 0.2,
                "status": status or STATUS_TEXT[status_code],
                "status_code": status_code,
                "event": "push",
                "action": None,
                "installation_id": None,
                "repository_id": 1296269,
                "throttled_at": None,
            }
        )
        return self.next_id

    def script(self, per_page: int = 100) -> None:
        newest_first = sorted(self.items, key=lambda item: item["delivered_at"], reverse=True)
        pages = [newest_first[i : i + per_page] for i in range(0, len(newest_first), per_page)]
        answers = []
        for number, page in enumerate(pages or [[]], start=1):
            following = f"{self.github.url}{DELIVERIES_PATH}?per_page={per_page}&cursor=c{number}"
            link = {"Link": f'<{following}>; rel="next"'} if number < len(pages) else {}
            answers.append(Answer(200, page, link))
        pages = [self.listing] if self.listing else answers
        self.github.hook_deliveries(*self.failing_first, *pages)
        self.github.redeliveries(self.redelivery_answer)

    @property
    def redelivered(self) -> list[int]:
        attempts = self.github.requests_to(f"{DELIVERIES_PATH}/\\d+/attempts", "POST")
        return [int(request.path.split("/")[-2]) for request in attempts]

    @property
    def listings(self) -> list[str]:
        return [
            "&".join(f"{k}={v[0]}" for k, v in request.query.items())
            for request in self.github.requests_to(DELIVERIES_PATH, "GET")
        ]


@pytest.fixture
def github(settings, monkeypatch):
    settings.OUTGOING_RETRY_SECONDS = 0.01
    with FakeGitHub() as fake:
        settings.GITHUB_API_URL = fake.url
        monkeypatch.setenv("ACME_TOKEN", TOKEN)
        yield Hook(fake)


def stored(guid: str, status: str, hook_id: str = str(HOOK_ID)) -> Delivery:
    return Delivery.objects.create(
        delivery_id=guid,
        event="push",
        hook_id=hook_id,
        repository=REPOSITORY,
        payload={},
        status=status,
    )


def reconcile(capsys, hook: Hook | None = None, **options) -> str:
    if hook is not None:
        hook.script()
    call_command("reconcile", REPOSITORY, token_env="ACME_TOKEN", **options)
    captured = capsys.readouterr()
    assert TOKEN not in captured.out + captured.err
    if hook is not None:
        for request in hook.github.requests:
            assert request.header("Authorization") == f"Bearer {TOKEN}"
    return captured.out


def guid() -> str:
    return str(uuid.uuid4())


def test_a_delivery_hookrunner_failed_is_redelivered(github, capsys):
    failed = guid()
    stored(failed, "failed")
    attempt = github.add(failed, timedelta(hours=2), 500)
    output = reconcile(capsys, github)
    assert github.redelivered == [attempt]
    line = f"{failed}  push  GitHub: 500 Invalid HTTP Response: 500  hookrunner: failed"
    assert f"{line}  -> redelivered\n" in output
    assert output.endswith("1 delivery in the last 3 days: 1 redelivered, 0 skipped\n")


def test_a_delivery_that_never_reached_hookrunner_is_redelivered(github, capsys):
    lost = guid()
    stored(guid(), "accepted")  # gives the hook id
    attempt = github.add(lost, timedelta(hours=1), 502)
    output = reconcile(capsys, github)
    assert github.redelivered == [attempt]
    assert "hookrunner: none  -> redelivered" in output


def test_one_hookrunner_processed_is_skipped(github, capsys):
    processed, timed_out = guid(), guid()
    stored(processed, "accepted")
    stored(timed_out, "ignored")
    github.add(processed, timedelta(hours=3), 202)
    # GitHub gave up waiting, but hookrunner had committed: sending it again is pointless.
    github.add(timed_out, timedelta(hours=2), 0, status="timed out")
    output = reconcile(capsys, github)
    assert github.redelivered == []
    answered = f"{processed}  push  GitHub: 202 Accepted  hookrunner: accepted"
    committed = f"{timed_out}  push  GitHub: - timed out  hookrunner: ignored"
    assert f"{answered}  -> skip: hookrunner answered it with a 2xx" in output.splitlines()
    assert f"{committed}  -> skip: hookrunner processed it" in output.splitlines()
    assert output.endswith("2 deliveries in the last 3 days: 0 redelivered, 2 skipped\n")


def test_a_delivery_redelivered_successfully_since_is_skipped(github, capsys):
    recovered = guid()
    github.add(recovered, timedelta(hours=5), 502)
    github.add(recovered, timedelta(hours=4), 202, redelivery=True)
    output = reconcile(capsys, github, hook_id=str(HOOK_ID))
    assert github.redelivered == []
    assert f"{recovered}  push  GitHub: 202 Accepted (2 attempts)" in output


def test_deliveries_older_than_three_days_are_skipped(github, capsys):
    recent, old = guid(), guid()
    stored(guid(), "accepted")
    attempt = github.add(recent, timedelta(days=2, hours=23), 502)
    github.add(old, timedelta(days=3, hours=1), 502)
    output = reconcile(capsys, github)
    assert github.redelivered == [attempt]
    assert old not in output


def test_pages_are_followed_and_redeliveries_go_oldest_first(github, capsys):
    stored(guid(), "accepted")
    lost = [guid() for _ in range(150)]
    attempts = [github.add(g, timedelta(minutes=10 + i), 502) for i, g in enumerate(lost)]
    output = reconcile(capsys, github, limit=200)
    assert sorted(github.redelivered) == sorted(attempts)
    assert github.redelivered == list(reversed(attempts))  # oldest first
    assert github.listings == ["per_page=100", "per_page=100&cursor=c1"]
    assert output.endswith("150 deliveries in the last 3 days: 150 redelivered, 0 skipped\n")


def test_no_page_is_fetched_past_the_window(github, capsys):
    stored(guid(), "accepted")
    for hours in range(200):
        github.add(guid(), timedelta(days=3, hours=1 + hours), 202)
    reconcile(capsys, github)
    assert github.listings == ["per_page=100"]


def test_the_number_of_redeliveries_per_run_is_capped(github, capsys):
    stored(guid(), "accepted")
    for minutes in range(5):
        github.add(guid(), timedelta(minutes=10 + minutes), 502)
    output = reconcile(capsys, github, limit=3)
    assert len(github.redelivered) == 3
    assert output.count("-> later: over this run's limit of 3 redeliveries") == 2
    assert output.endswith("3 redelivered, 0 skipped, 2 left for the next run\n")


def test_dry_run_redelivers_nothing(github, capsys):
    stored(guid(), "accepted")
    github.add(guid(), timedelta(hours=1), 502)
    output = reconcile(capsys, github, dry_run=True)
    assert github.redelivered == []
    assert "-> would redeliver (dry run)" in output
    assert output.endswith("1 delivery in the last 3 days: 1 would redeliver, 0 skipped\n")


def test_a_401_from_github_is_a_clear_error(github, capsys):
    stored(guid(), "accepted")
    github.listing = Answer(401, {"message": "Bad credentials"})
    with pytest.raises(CommandError) as raised:
        reconcile(capsys, github)
    message = str(raised.value)
    assert message == (
        "listing the deliveries of hook 30 failed: GitHub answered HTTP 401: Bad credentials "
        "(the token is not valid (expired or revoked?))"
    )
    assert TOKEN not in message


def test_a_401_through_manage_py_has_no_traceback(github):
    """The command-line path: one line on stderr, exit status 1, no traceback, no token."""
    github.listing = Answer(401, {"message": "Bad credentials"})
    github.script()
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "reconcile",
            REPOSITORY,
            "--hook-id",
            "30",
            "--token-env",
            "ACME_TOKEN",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "GITHUB_API_URL": github.github.url, "ACME_TOKEN": TOKEN},
        cwd=settings.BASE_DIR,
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr == (
        "CommandError: listing the deliveries of hook 30 failed: GitHub answered HTTP 401: "
        "Bad credentials (the token is not valid (expired or revoked?))\n"
    )
    assert TOKEN not in result.stdout
    (request,) = github.github.requests
    assert request.header("Authorization") == f"Bearer {TOKEN}"


def test_an_api_that_does_not_answer_is_a_clear_error(capsys, settings, monkeypatch):
    settings.OUTGOING_RETRY_SECONDS = 0.01
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        settings.GITHUB_API_URL = f"http://127.0.0.1:{unused.getsockname()[1]}"
    monkeypatch.setenv("ACME_TOKEN", TOKEN)
    with pytest.raises(CommandError) as raised:
        reconcile(capsys, hook_id="30")
    assert str(raised.value).startswith(
        f"listing the deliveries of hook 30 failed: GitHub's API ({settings.GITHUB_API_URL}) "
        "did not answer: could not connect: "
    )


@pytest.mark.parametrize("failure", [Answer(502), Answer(200, [], delay=2)], ids=["502", "timeout"])
def test_a_502_or_a_timeout_is_tried_again(github, capsys, settings, failure):
    settings.OUTGOING_TIMEOUT_SECONDS = 0.5
    stored(guid(), "accepted")
    github.add(guid(), timedelta(hours=1), 502)
    github.failing_first = [failure]
    output = reconcile(capsys, github)
    assert len(github.listings) == 2
    assert len(github.redelivered) == 1
    assert output.endswith("1 delivery in the last 3 days: 1 redelivered, 0 skipped\n")


def test_a_refused_redelivery_is_reported_and_the_rest_go_on(github, capsys):
    stored(guid(), "accepted")
    github.add(guid(), timedelta(hours=2), 502)
    github.add(guid(), timedelta(hours=1), 502)
    github.redelivery_answer = 422
    with pytest.raises(CommandError, match=r"GitHub refused 2 redelivery request\(s\)"):
        reconcile(capsys, github)
    assert len(github.redelivered) == 2


def test_the_hook_id_comes_from_the_newest_stored_delivery(github):
    stored(guid(), "accepted", hook_id="11")
    stored(guid(), "accepted", hook_id="30")
    stored(guid(), "accepted", hook_id="local")
    stored(guid(), "accepted", hook_id="")
    assert latest_hook_id("ACME/webapp") == "30"


def test_without_a_stored_delivery_the_hook_id_must_be_given(github):
    with pytest.raises(CommandError, match="no delivery from acme/webapp with a hook id"):
        call_command("reconcile", REPOSITORY, token_env="ACME_TOKEN")


def test_the_token_is_the_one_the_repository_token_env_names(github, capsys, tmp_path, settings):
    path = tmp_path / "pipelines.yaml"
    path.write_text(
        "repositories:\n  acme/*:\n    token_env: ACME_TOKEN\n    pipelines:\n"
        "      test:\n        on: {push: {}}\n        steps: [{name: t, run: make test}]\n"
    )
    settings.PIPELINES_FILE = path
    stored(guid(), "accepted")
    github.add(guid(), timedelta(hours=1), 502)
    github.script()
    call_command("reconcile", REPOSITORY)
    assert "1 redelivered" in capsys.readouterr().out
    assert {request.header("Authorization") for request in github.github.requests} == {
        f"Bearer {TOKEN}"
    }


def test_without_a_token_it_says_where_to_put_one(github, monkeypatch):
    stored(guid(), "accepted")
    with pytest.raises(CommandError, match="no token for acme/webapp: set token_env"):
        call_command("reconcile", REPOSITORY)
    monkeypatch.delenv("ACME_TOKEN")
    with pytest.raises(CommandError, match="ACME_TOKEN, which should hold the GitHub token"):
        call_command("reconcile", REPOSITORY, token_env="ACME_TOKEN")


def attempt(guid: str, hours: float, status_code: int, id: int = 1) -> Attempt:
    return Attempt(
        id=id,
        guid=guid,
        delivered_at=NOW - timedelta(hours=hours),
        redelivery=False,
        status_code=status_code,
        status="",
        event="push",
        action="",
    )


NOW = datetime(2025, 6, 10, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status_codes", "hookrunner", "action"),
    [
        ([500], "failed", "redeliver"),
        ([502], "", "redeliver"),
        ([403], "", "redeliver"),  # refused (a wrong secret, say): worth it once fixed
        ([0], "received", "redeliver"),  # cut off mid-processing
        ([202], "accepted", "skip: hookrunner answered it with a 2xx"),
        ([202], "", "skip: hookrunner answered it with a 2xx"),  # purged since
        ([502, 202], "", "skip: hookrunner answered it with a 2xx"),
        ([0], "ignored", "skip: hookrunner processed it"),
        ([202, 500], "failed", "redeliver"),
    ],
)
def test_decide(status_codes, hookrunner, action):
    attempts = [attempt("g", 2 - i, code, id=i) for i, code in enumerate(status_codes)]
    (decision,) = decide(attempts, {"g": hookrunner} if hookrunner else {}, NOW)
    assert decision.text == action
    assert decision.latest.id == len(status_codes) - 1
    assert decision.attempts == len(status_codes)


def test_decide_leaves_what_github_cannot_redeliver():
    (decision,) = decide([attempt("g", 73, 502)], {}, NOW)
    assert decision.text == "skip: older than GitHub's 3-day redelivery window"


def test_attempts_read_github_items():
    item = {
        "id": 12345678,
        "guid": "0b989ba4-242f-11e5-81e1-c7b6966d2516",
        "delivered_at": "2019-06-03T00:57:16Z",
        "redelivery": False,
        "duration": 0.27,
        "status": "OK",
        "status_code": 200,
        "event": "issues",
        "action": "opened",
    }
    read = Attempt.from_api(item)
    assert read.delivered_at == datetime(2019, 6, 3, 0, 57, 16, tzinfo=UTC)
    assert (read.id, read.succeeded, read.github_status) == (12345678, True, "200 OK")
