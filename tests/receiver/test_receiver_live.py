"""The receiver over real HTTP, on Django's live server."""

import json
import socket
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django_tasks_db.models import DBTaskResult

from runner.models import Delivery, RejectedRequest, Run
from runner.receiver import secrets as webhook_secrets
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


def test_selftest_reports_status_and_time_against_githubs_limit(hook_url, capsys):
    call_command("selftest", url=hook_url)
    output = capsys.readouterr().out
    assert "signing: matches GitHub's published test vector" in output
    assert f"ping to {hook_url}: HTTP 200 in" in output
    assert "inside GitHub's 10 s limit" in output
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
    assert {status for status, _ in answers} == {202}
    statuses = sorted(json.loads(body)["status"] for _, body in answers)
    assert statuses == ["accepted"] + ["duplicate"] * 7
    assert Run.objects.count() == 2
    assert DBTaskResult.objects.count() == 2
    assert Delivery.objects.originals().count() == 1
    assert Delivery.objects.filter(status="duplicate").count() == 7
