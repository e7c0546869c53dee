"""The server log as settings.LOGGING writes it: one line per record whatever a delivery
carries (control characters escaped), and every request error with its delivery id and
traceback, the receiver's or any other view's."""

import json
import logging
import re

import pytest
from django.test import Client

from runner.admin import badge
from tests.conftest import SignedDelivery

pytestmark = pytest.mark.django_db

RECORD_START = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ \S+ ")
FORGED = "2026-01-01 00:00:00,000 INFO runner.receiver.intake delivery=forged outcome=accepted"


def only_main(pipelines) -> None:
    pipelines("""\
        ci:
          on: {push: {branches: main}}
          steps: [{name: build, run: echo built}]
        """)


def test_a_forged_ref_yields_one_log_line(post_delivery, pipelines, server_log):
    only_main(pipelines)
    payload = json.loads(SignedDelivery.of_fixture("push__branch").body)
    payload["ref"] = f"refs/heads/x\n{FORGED}\r\x1b[2K\x85\x9b"
    delivery = SignedDelivery(event="push", body=json.dumps(payload).encode(), delivery_id="f1")
    answer = post_delivery(delivery).json()
    assert answer["status"] == "ignored"
    assert "\n" in answer["detail"]  # the answer is JSON: GitHub shows the ref as it is
    lines = server_log.getvalue().splitlines()
    assert all(RECORD_START.match(line) for line in lines), lines
    (line,) = [line for line in lines if " runner.receiver.intake " in line]
    assert "delivery=f1 event=push repository=acme/webapp outcome=ignored" in line
    assert f"x\\n{FORGED}\\r\\x1b[2K\\x85\\x9b" in line


def test_forged_values_in_a_refused_requests_headers_are_escaped(client, webhook_url, server_log):
    client.post(
        webhook_url,
        b"{}",
        content_type="application/json",
        headers={"X-GitHub-Delivery": f"d\n{FORGED}", "X-GitHub-Event": "push\rx"},
    )
    (line,) = server_log.getvalue().splitlines()
    assert f"rejected delivery=d\\n{FORGED} event=push\\rx" in line


def test_control_characters_are_escaped_in_every_kind_of_argument(server_log):
    logger = logging.getLogger("runner.test")

    class Shown:
        def __str__(self):
            return "str\none"

        def __repr__(self):
            return "repr\none"

    logger.warning("%s %r %s %d %.1f %s", "a\nb", "c\nd", Shown(), 7, 1.5, None)
    logger.warning("%(value)s and %(other)r", {"value": "e\x00f", "other": Shown()})
    logger.warning("literal\ttab %s", "\u2028\ud800")
    lines = server_log.getvalue().splitlines()
    first, second, third = (line.split(" WARNING runner.test ", 1)[1] for line in lines)
    assert first == "a\\nb 'c\\nd' str\\none 7 1.5 None"
    assert second == "e\\x00f and repr\\none"
    assert third == "literal\ttab \\u2028\\ud800"


def test_a_traceback_keeps_its_lines_and_escapes_its_messages(server_log):
    logger = logging.getLogger("runner.test")
    try:
        try:
            raise KeyError(f"refs/heads/x\n{FORGED}")
        except KeyError as error:
            raise RuntimeError(f"processing failed: y\n{FORGED}") from error
    except RuntimeError:
        logger.exception("processing failed delivery=%s", "d\n1")
    lines = server_log.getvalue().splitlines()
    assert RECORD_START.match(lines[0])
    assert lines[0].endswith("processing failed delivery=d\\n1")
    assert lines[1] == "Traceback (most recent call last):"
    assert any(line.startswith('  File "') for line in lines)
    assert f"RuntimeError: processing failed: y\\n{FORGED}" in lines
    assert f"KeyError: 'refs/heads/x\\n{FORGED}'" in lines
    assert not any(line.startswith(FORGED) for line in lines)
    assert [line for line in lines if RECORD_START.match(line)] == [lines[0]]


def test_a_500_outside_the_receiver_is_logged_with_delivery_id_and_traceback(
    monkeypatch, server_log
):
    def explode(*args):
        raise RuntimeError("badge exploded")

    monkeypatch.setattr(badge, "last_finished_status", explode)
    client = Client(raise_request_exception=False)
    response = client.get(
        "/badge/acme/webapp/ci.svg", headers={"X-GitHub-Delivery": "d-500\nforged"}
    )
    assert response.status_code == 500
    lines = server_log.getvalue().splitlines()
    assert RECORD_START.match(lines[0])
    assert " ERROR django.request Internal Server Error: /badge/acme/webapp/ci.svg" in lines[0]
    assert lines[0].endswith("delivery=d-500\\nforged")
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[-1] == "RuntimeError: badge exploded"
    assert [line for line in lines if RECORD_START.match(line)] == [lines[0]]


def test_a_500_without_a_delivery_id_is_logged_with_a_dash(monkeypatch, server_log):
    monkeypatch.setattr(badge, "last_finished_status", lambda *args: 1 / 0)
    Client(raise_request_exception=False).get("/badge/acme/webapp/ci.svg")
    first = server_log.getvalue().splitlines()[0]
    assert first.endswith("Internal Server Error: /badge/acme/webapp/ci.svg delivery=-")


def test_client_errors_of_other_views_are_not_logged(client, server_log):
    assert client.get("/no/such/page").status_code == 404
    assert server_log.getvalue() == ""


def test_an_exception_message_of_a_bare_newline_leaves_the_traceback_lines_be(server_log):
    logger = logging.getLogger("runner.test")
    try:
        error = ValueError("\n")
        error.add_note(f"note\n{FORGED}")
        raise error
    except ValueError:
        logger.exception("failed")
    lines = server_log.getvalue().splitlines()
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[2].startswith('  File "')
    assert lines[-2:] == ["ValueError: \\n", f"note\\n{FORGED}"]
