"""The receiver over real HTTP, on Django's live server."""

import json
import re
import socket
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import OperationalError
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from runner.models import Delivery, RejectedRequest, Run
from runner.outgoing.reconcile import Attempt, decide
from runner.receiver import intake, parsing, view
from runner.receiver import secrets as webhook_secrets
from runner.runs.processing import ABANDONED_AFTER, process_stranded
from tests.conftest import SignedDelivery

pytestmark = pytest.mark.django_db(transaction=True)


def post(url: str, delivery: SignedDelivery) -> tuple[int, bytes]:
    request = urllib.request.Request(url, delivery.body, delivery.headers(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.fixture
def hook_url(live_server) -> str:
    return f"{live_server.url}/{settings.WEBHOOK_PATH}"


def test_signed_push_over_http_is_committed(hook_url):
    delivery = SignedDelivery.of_fixture("push__branch")
    status, _ = post(hook_url, delivery)
    assert status == 202
    assert Delivery.objects.get(delivery_id=delivery.delivery_id).status == "accepted"


def test_signed_push_over_http_queues_its_runs_and_tasks_together(hook_url):
    delivery = SignedDelivery.of_fixture("push__branch")
    status, body = post(hook_url, delivery)
    assert status == 202
    runs = Run.objects.order_by("pk")
    assert json.loads(body)["runs"] == [run.pk for run in runs]
    assert [run.pipeline for run in runs] == ["test", "deploy"]
    tasks = DBTaskResult.objects.filter(id__in=[run.task_id for run in runs])
    assert sorted(task.queue_name for task in tasks) == ["default", "deploy"]


def test_forged_push_over_http_is_403_and_recorded(hook_url):
    delivery = SignedDelivery.of_fixture("push__branch", secret="guessed")
    status, body = post(hook_url, delivery)
    assert status == 403
    assert b"does not match" in body
    assert not Delivery.objects.exists()
    assert RejectedRequest.objects.get().delivery_id == delivery.delivery_id


def test_oversized_body_is_refused_before_it_is_sent(hook_url):
    address = urlsplit(hook_url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as connection:
        connection.sendall(
            f"POST {address.path} HTTP/1.1\r\nHost: {address.netloc}\r\n"
            "Content-Type: application/json\r\nX-GitHub-Event: push\r\n"
            f"Content-Length: {30 * 1024 * 1024}\r\n\r\n".encode()
        )
        status_line = connection.makefile("rb").readline()
    assert status_line.split()[1] == b"413"


def test_selftest_says_in_plain_words_how_fast_the_receiver_answered(hook_url, capsys):
    call_command("selftest", url=hook_url)
    signing, ping, answer, verdict = capsys.readouterr().out.splitlines()
    assert signing == "signing: matches GitHub's published test vector"
    assert re.fullmatch(rf"ping to {re.escape(hook_url)}: HTTP 200 in \d+ ms", ping)
    assert "pong: hook 0 reached hookrunner" in answer
    assert re.fullmatch(r"OK: the receiver answered in \d+ ms; GitHub waits up to 10 s", verdict)
    assert Delivery.objects.get().event == "ping"


def test_selftest_fails_when_the_receiver_refuses_the_ping(hook_url, monkeypatch):
    monkeypatch.setattr(
        webhook_secrets, "accepted_secrets", lambda config: ["the receiver's other secret"]
    )
    with pytest.raises(CommandError, match="the receiver answered 403, expected 200"):
        call_command("selftest", url=hook_url)


def test_selftest_names_an_unreachable_receiver():
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(CommandError, match=f"could not reach http://127.0.0.1:{port}/"):
        call_command("selftest", url=f"http://127.0.0.1:{port}/hooks/github/")


def test_same_delivery_sent_at_once_by_many_clients_starts_its_runs_once(hook_url):
    delivery = SignedDelivery.of_fixture("push__branch")
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: post(hook_url, delivery), range(8)))
    answered = sorted((json.loads(body)["status"], status) for status, body in answers)
    # Each repeat is answered a duplicate once the first is processed, and not a 2xx
    # (so GitHub shows it red and reconcile asks again) while it is still being processed.
    assert answered.count(("accepted", 202)) == 1
    assert set(answered) <= {("accepted", 202), ("duplicate", 202), ("processing", 409)}
    assert Run.objects.count() == 2
    assert DBTaskResult.objects.count() == 2
    assert Delivery.objects.originals().count() == 1
    assert Delivery.objects.filter(status="duplicate").count() == 7


def push_payload() -> dict:
    return json.loads(SignedDelivery.of_fixture("push__branch").body)


def pull_request_payload() -> dict:
    return json.loads(SignedDelivery.of_fixture("pull_request__opened").body)


def with_pr_number(number_text: str) -> bytes:
    body = json.dumps(pull_request_payload()).replace('"number": 42', f'"number": {number_text}')
    assert number_text in body
    return body.encode()


def hostile(event: str, body: dict | bytes) -> SignedDelivery:
    text = body if isinstance(body, bytes) else json.dumps(body).encode()
    return SignedDelivery(event=event, body=text, delivery_id=f"hostile-{uuid.uuid4()}")


def edited(payload: dict, edit) -> dict:
    edit(payload)
    return payload


SURROGATE = "lone surrogate"
PR_NUMBER = "pull_request payload field number is not a pull request number"
# Each body, and what the one-line reason of its 400 says.
HOSTILE_BODIES = {
    "lone surrogate in ref": (
        lambda: hostile(
            "push", edited(push_payload(), lambda p: p.update(ref="refs/heads/\udc80"))
        ),
        "field ref holds a lone surrogate (\\udc80)",
    ),
    "lone high surrogate ending the ref": (
        lambda: hostile(
            "push", edited(push_payload(), lambda p: p.update(ref="refs/heads/main\ud800"))
        ),
        SURROGATE,
    ),
    "lone surrogate in sender": (
        lambda: hostile(
            "push", edited(push_payload(), lambda p: p["sender"].update(login="oct\udc80cat"))
        ),
        "field sender.login holds a lone surrogate",
    ),
    "lone surrogate in repository": (
        lambda: hostile(
            "push",
            edited(push_payload(), lambda p: p["repository"].update(full_name="acme/\udc80")),
        ),
        "field repository.full_name holds a lone surrogate",
    ),
    "lone surrogate in a commit message": (
        lambda: hostile(
            "push",
            edited(push_payload(), lambda p: p["commits"][0].update(message="fix \udc80")),
        ),
        "field commits[0].message holds a lone surrogate",
    ),
    "lone surrogate in a key": (
        lambda: hostile("push", edited(push_payload(), lambda p: p.update({"\udc80": 1}))),
        SURROGATE,
    ),
    "lone surrogate in a star's sender": (
        lambda: hostile("star", {"action": "created", "sender": {"login": "\udc80"}}),
        SURROGATE,
    ),
    "5,000-digit integer": (
        lambda: hostile(
            "push",
            json.dumps(push_payload()).replace('"id": 1296269', '"id": ' + "7" * 5000).encode(),
        ),
        "a number has too many digits",
    ),
    "5,000-digit pull request number": (
        lambda: hostile("pull_request", with_pr_number("9" * 5000)),
        "a number has too many digits",
    ),
    "negative pull request number": (
        lambda: hostile("pull_request", with_pr_number("-1")),
        PR_NUMBER,
    ),
    "pull request number 0": (lambda: hostile("pull_request", with_pr_number("0")), PR_NUMBER),
    "pull request number past 2^31": (
        lambda: hostile("pull_request", with_pr_number(str(2**31))),
        PR_NUMBER,
    ),
    "pull request number past 2^63": (
        lambda: hostile("pull_request", with_pr_number(str(2**63))),
        PR_NUMBER,
    ),
    "pull request number past 2^64": (
        lambda: hostile("pull_request", with_pr_number(str(2**64))),
        PR_NUMBER,
    ),
    "number out of float range": (
        lambda: hostile(
            "push", json.dumps(push_payload()).replace('"size": 1834', '"size": 1e400').encode()
        ),
        "number 1e400 is out of range",
    ),
    "nesting deeper than the database stores": (
        lambda: hostile(
            "push",
            json.dumps(push_payload())
            .replace('"forced": false', '"forced": ' + "[" * 1500 + "]" * 1500)
            .encode(),
        ),
        "nested too deeply",
    ),
    "nesting deeper than Python reads": (
        lambda: hostile("push", b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
        "nested too deeply",
    ),
}


@pytest.mark.parametrize("name", list(HOSTILE_BODIES))
def test_hostile_signed_body_gets_a_json_400_with_a_one_line_reason(hook_url, name):
    build, reason = HOSTILE_BODIES[name]
    delivery = build()
    status, content_type, body = post_answer(hook_url, delivery)
    assert content_type == "application/json", body[:300]
    answer = json.loads(body)
    assert (status, answer["status"]) == (400, "rejected"), answer
    assert reason in answer["detail"]
    assert "\n" not in answer["detail"]
    assert len(answer["detail"]) < 300
    assert not Delivery.objects.filter(delivery_id=delivery.delivery_id).exists()
    assert RejectedRequest.objects.get().reason == answer["detail"]


def github_attempt(delivery: SignedDelivery, status_code: int) -> Attempt:
    return Attempt(
        id=1,
        guid=delivery.delivery_id,
        delivered_at=timezone.now(),
        redelivery=True,
        status_code=status_code,
        status="",
        event="push",
        action="",
    )


def test_stranded_delivery_is_not_answered_2xx_until_processed_then_processed(hook_url):
    delivery = SignedDelivery.of_fixture("push__branch")
    # Stored, then its web process died before processing it.
    intake._store(parsing.parse_event(delivery.headers(), delivery.body))

    status, body = post(hook_url, delivery)
    answer = json.loads(body)
    assert status == 409
    assert (answer["status"], answer["runs"]) == ("processing", [])
    assert not Run.objects.exists()
    # So reconcile asks GitHub for it again rather than skipping it as answered 2xx.
    (decision,) = decide(
        [github_attempt(delivery, status)], {delivery.delivery_id: "received"}, timezone.now()
    )
    assert decision.redeliver

    # Past the abandon limit a worker's upkeep processes it from its stored payload.
    Delivery.objects.originals().update(received_at=timezone.now() - 2 * ABANDONED_AFTER)
    (outcome,) = process_stranded()
    assert outcome.status == "accepted"

    status, body = post(hook_url, delivery)
    answer = json.loads(body)
    assert status == 202
    assert answer["status"] == "duplicate"
    assert (
        answer["runs"]
        == outcome.run_ids
        == list(Run.objects.order_by("pk").values_list("pk", flat=True))
    )
    assert len(answer["runs"]) == 2
    (decision,) = decide(
        [github_attempt(delivery, status)], {delivery.delivery_id: "accepted"}, timezone.now()
    )
    assert not decision.redeliver


def post_answer(url: str, delivery: SignedDelivery) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, delivery.body, delivery.headers(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def test_unexpected_error_in_the_receiver_is_a_logged_json_500(hook_url, monkeypatch, server_log):
    def explode(event, config):
        raise RuntimeError("intake exploded")

    monkeypatch.setattr(intake, "receive", explode)
    delivery = SignedDelivery.of_fixture("push__branch")
    status, content_type, body = post_answer(hook_url, delivery)
    assert (status, content_type) == (500, "application/json")
    answer = json.loads(body)
    assert (answer["delivery"], answer["status"], answer["runs"]) == (
        delivery.delivery_id,
        "error",
        [],
    )
    assert "RuntimeError" in answer["detail"]
    assert "intake exploded" not in answer["detail"]
    lines = server_log.getvalue().splitlines()
    (first,) = [n for n, line in enumerate(lines) if " webhook failed " in line]
    assert lines[first].endswith(
        f" ERROR runner.receiver.view webhook failed delivery={delivery.delivery_id}"
    )
    assert lines[first + 1] == "Traceback (most recent call last):"
    assert lines[-1] == "RuntimeError: intake exploded"
    # Logged once, by the receiver: not again by Django as "Internal Server Error".
    assert "Internal Server Error" not in server_log.getvalue()


def test_failing_to_record_a_refusal_is_a_logged_json_500(hook_url, monkeypatch, server_log):
    def database_gone(*args):
        raise OperationalError("the database is gone")

    monkeypatch.setattr(view, "record_rejection", database_gone)
    delivery = SignedDelivery.of_fixture("push__branch", secret="guessed")
    status, content_type, body = post_answer(hook_url, delivery)
    assert (status, content_type) == (500, "application/json")
    assert json.loads(body)["status"] == "error"
    assert f"webhook failed delivery={delivery.delivery_id}" in server_log.getvalue()
    assert "OperationalError: the database is gone" in server_log.getvalue()
