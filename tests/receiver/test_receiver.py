import io
import json
import logging
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from runner.config.github import sign
from runner.models import Delivery, DroppedRejections, RejectedRequest
from runner.receiver.view import receive_github
from runner.runs import processing
from tests.conftest import SignedDelivery

pytestmark = pytest.mark.django_db


def answer_of(response) -> dict:
    assert response["Content-Type"] == "application/json"
    return response.json()


def test_signed_push_is_accepted_and_stored(post_delivery):
    delivery = SignedDelivery.of_fixture("push__branch")
    response = post_delivery(delivery)
    assert response.status_code == 202
    stored = Delivery.objects.get()
    assert answer_of(response) == {
        "delivery": delivery.delivery_id,
        "status": "accepted",
        "runs": list(stored.runs.order_by("pk").values_list("pk", flat=True)),
        "detail": "started 2 runs: test, deploy",
    }
    assert (stored.delivery_id, stored.event, stored.repository, stored.sender, stored.ref) == (
        delivery.delivery_id,
        "push",
        "acme/webapp",
        "octocat",
        "refs/heads/main",
    )
    assert stored.hook_id == "30"
    assert stored.status == Delivery.Status.ACCEPTED
    assert stored.payload == json.loads(delivery.body)


def test_pull_request_is_stored_with_its_action(post_delivery):
    response = post_delivery(SignedDelivery.of_fixture("pull_request__synchronize"))
    assert response.status_code == 202
    stored = Delivery.objects.get()
    assert (stored.event, stored.action, stored.ref) == (
        "pull_request",
        "synchronize",
        "refs/pull/42/merge",
    )


def test_form_encoded_delivery_is_accepted(post_delivery):
    from urllib.parse import urlencode

    payload = SignedDelivery.of_fixture("push__tag").body.decode()
    delivery = SignedDelivery.of_fixture(
        "push__tag", content_type="application/x-www-form-urlencoded"
    )
    delivery.body = urlencode({"payload": payload}).encode()
    response = post_delivery(delivery)
    assert response.status_code == 202
    assert Delivery.objects.get().ref == "refs/tags/v1.2.0"


def test_json_with_charset_parameter_is_accepted(post_delivery):
    delivery = SignedDelivery.of_fixture(
        "push__branch", content_type="application/json; charset=utf-8"
    )
    assert post_delivery(delivery).status_code == 202


def test_csrf_enforcing_client_can_deliver(webhook_url):
    delivery = SignedDelivery.of_fixture("push__branch")
    headers = delivery.headers()
    content_type = headers.pop("Content-Type")
    client = Client(enforce_csrf_checks=True)
    response = client.post(webhook_url, delivery.body, content_type=content_type, headers=headers)
    assert response.status_code == 202


def test_a_delivery_to_the_path_without_its_slash_is_received_not_redirected(client, webhook_url):
    # smee-client drops the slash of its target; a redirect would turn the POST into a GET.
    delivery = SignedDelivery.of_fixture("push__branch")
    headers = delivery.headers()
    content_type = headers.pop("Content-Type")
    url = webhook_url.rstrip("/")
    response = client.post(url, delivery.body, content_type=content_type, headers=headers)
    assert response.status_code == 202
    assert Delivery.objects.get().delivery_id == delivery.delivery_id


def test_ping_is_answered_200_and_stored(post_delivery):
    response = post_delivery(SignedDelivery.of_fixture("ping__default"))
    assert response.status_code == 200
    assert answer_of(response)["detail"] == "pong: hook 30 reached hookrunner"
    assert Delivery.objects.get().event == "ping"


def ping_naming(**hook_ids) -> SignedDelivery:
    """GitHub's ping with its payload's `hook_id` and `hook` replaced (None: left out)."""
    payload = json.loads(SignedDelivery.of_fixture("ping__default").body)
    for name, value in hook_ids.items():
        payload.pop(name)
        if value is not None:
            payload[name] = value
    return SignedDelivery(event="ping", body=json.dumps(payload).encode(), delivery_id="ping")


@pytest.mark.parametrize(
    ("hook_ids", "hook_named"),
    [
        ({"hook_id": 31, "hook": {"id": 31}}, "31"),
        ({"hook_id": None, "hook": {"id": 32}}, "32"),
        ({"hook_id": None, "hook": None}, "?"),
        ({"hook_id": "31; drop", "hook": {"id": True}}, "?"),
    ],
    ids=["hook_id", "hook.id only", "neither", "not numbers"],
)
def test_pong_names_the_hook_the_ping_payload_names(post_delivery, hook_ids, hook_named):
    response = post_delivery(ping_naming(**hook_ids), **{"X-GitHub-Hook-ID": None})
    assert answer_of(response)["detail"] == f"pong: hook {hook_named} reached hookrunner"


def test_pong_names_the_payloads_hook_over_the_hook_id_header(post_delivery):
    response = post_delivery(ping_naming(hook_id=31), **{"X-GitHub-Hook-ID": "30"})
    assert answer_of(response)["detail"] == "pong: hook 31 reached hookrunner"


def test_event_hookrunner_does_not_act_on_is_202_ignored_with_reason(post_delivery):
    response = post_delivery(SignedDelivery.of_fixture("star__created"))
    assert response.status_code == 202
    answer = answer_of(response)
    assert (answer["status"], answer["detail"]) == (
        "ignored",
        "hookrunner does not act on star events",
    )
    assert Delivery.objects.get().status == Delivery.Status.IGNORED


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
def test_anything_but_post_is_405(client, webhook_url, method):
    response = client.generic(method, webhook_url)
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert not Delivery.objects.exists()


def test_missing_signature_is_403_and_runs_nothing(post_delivery):
    response = post_delivery(
        SignedDelivery.of_fixture("push__branch"), **{"X-Hub-Signature-256": None}
    )
    assert response.status_code == 403
    assert "missing X-Hub-Signature-256" in answer_of(response)["detail"]
    assert not Delivery.objects.exists()


def test_sha1_signature_alone_is_refused(post_delivery):
    delivery = SignedDelivery.of_fixture("push__branch")
    sha1 = "sha1=" + "0" * 40
    response = post_delivery(delivery, **{"X-Hub-Signature-256": None, "X-Hub-Signature": sha1})
    assert response.status_code == 403
    assert "sha1 X-Hub-Signature alone is not accepted" in answer_of(response)["detail"]


@pytest.mark.parametrize(
    "signature",
    ["sha256=nothex", "sha256=" + "0" * 64, sign("another secret", b"{}")],
)
def test_malformed_or_wrong_signature_is_403(post_delivery, signature):
    response = post_delivery(
        SignedDelivery.of_fixture("push__branch"), **{"X-Hub-Signature-256": signature}
    )
    assert response.status_code == 403
    assert not Delivery.objects.exists()


def test_signature_over_a_different_body_is_403(post_delivery):
    delivery = SignedDelivery.of_fixture("push__branch")
    signature = delivery.headers()["X-Hub-Signature-256"]
    delivery.body = delivery.body.replace(b"refs/heads/main", b"refs/heads/evil")
    response = post_delivery(delivery, **{"X-Hub-Signature-256": signature})
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("fixture", "body", "content_type", "reason"),
    [
        ("push__branch", b"{broken", "application/json", "body is not valid JSON"),
        ("push__branch", b"[]", "application/json", "payload is a JSON list, not an object"),
        ("push__branch", b"other=1", "application/x-www-form-urlencoded", "no payload field"),
        ("push__branch", b"{}", "application/json", "field repository.full_name is missing"),
        (
            "pull_request__opened",
            b'{"number": 1, "action": "opened", "repository": {"full_name": "a/b"}}',
            "application/json",
            "pull_request payload field pull_request.head.ref is missing",
        ),
    ],
)
def test_unusable_body_is_400_with_one_line_reason(
    post_delivery, fixture, body, content_type, reason
):
    delivery = SignedDelivery.of_fixture(fixture, content_type=content_type)
    delivery.body = body
    response = post_delivery(delivery)
    assert response.status_code == 400
    detail = answer_of(response)["detail"]
    assert reason in detail
    assert "\n" not in detail
    assert not Delivery.objects.exists()


@pytest.mark.parametrize("header", ["X-GitHub-Event", "X-GitHub-Delivery"])
def test_missing_github_header_is_400(post_delivery, header):
    response = post_delivery(SignedDelivery.of_fixture("push__branch"), **{header: None})
    assert response.status_code == 400
    assert answer_of(response)["detail"] == f"missing {header} header"


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("push", {"ref": None, "after": 1, "repository": {"full_name": "a/b"}}),
        ("push", {"ref": "refs/heads/x", "after": "abc", "repository": "a/b"}),
        ("push", {"ref": ["x"], "after": "abc", "repository": {"full_name": "a/b"}}),
        ("pull_request", {"number": True, "pull_request": [], "repository": {}}),
        ("pull_request", {"number": 1, "action": "opened", "pull_request": {"head": "x"}}),
        ("pull_request", {"number": 1, "action": 5, "repository": {"full_name": 5}}),
        ("star", {"repository": ["not", "an", "object"], "sender": 3, "action": {}}),
        ("ping", {"hook": None}),
    ],
)
def test_oddly_shaped_payload_never_causes_a_500(post_delivery, event, payload):
    delivery = SignedDelivery(event=event, body=json.dumps(payload).encode(), delivery_id="odd-1")
    response = post_delivery(delivery)
    assert response.status_code in (200, 202, 400)


def test_crash_while_processing_keeps_the_delivery_with_its_error(post_delivery, monkeypatch):
    def crash(event, config):
        raise RuntimeError("matcher exploded")

    monkeypatch.setattr(processing, "decide", crash)
    response = post_delivery(SignedDelivery.of_fixture("push__branch"))
    assert response.status_code == 500
    assert answer_of(response)["status"] == "failed"
    stored = Delivery.objects.get()
    assert stored.status == Delivery.Status.FAILED
    assert "RuntimeError: matcher exploded" in stored.detail


def test_failed_delivery_is_processed_when_github_redelivers_it(post_delivery, monkeypatch):
    delivery = SignedDelivery.of_fixture("push__branch")
    with monkeypatch.context() as patch:
        patch.setattr(processing, "decide", lambda event, config: 1 / 0)
        assert post_delivery(delivery).status_code == 500
    response = post_delivery(delivery)
    assert response.status_code == 202
    assert answer_of(response)["status"] == "accepted"
    stored = Delivery.objects.get()
    assert (stored.status, stored.attempts) == (Delivery.Status.ACCEPTED, 2)


def test_repeat_of_a_processed_delivery_returns_the_first_answer_and_does_nothing(post_delivery):
    delivery = SignedDelivery.of_fixture("push__branch")
    first = post_delivery(delivery)
    repeat = post_delivery(delivery)
    assert repeat.status_code == first.status_code == 202
    assert answer_of(repeat) == {
        "delivery": delivery.delivery_id,
        "status": "duplicate",
        "runs": answer_of(first)["runs"],
        "detail": "delivery was already accepted: started 2 runs: test, deploy",
    }
    original = Delivery.objects.originals().get()
    assert original.attempts == 1
    logged_repeat = original.repeats.get()
    assert logged_repeat.status == Delivery.Status.DUPLICATE


def test_repeat_of_an_ignored_delivery_answers_as_the_first_did(post_delivery):
    delivery = SignedDelivery.of_fixture("star__created")
    post_delivery(delivery)
    repeat = post_delivery(delivery)
    assert repeat.status_code == 202
    assert answer_of(repeat)["detail"].startswith("delivery was already ignored")


def test_delivery_abandoned_mid_processing_is_processed_on_redelivery(post_delivery):
    delivery = SignedDelivery.of_fixture("push__branch")
    Delivery.objects.create(
        delivery_id=delivery.delivery_id, event="push", payload={}, status="received"
    )
    Delivery.objects.update(received_at=timezone.now() - timedelta(minutes=5))
    response = post_delivery(delivery)
    assert answer_of(response)["status"] == "accepted"
    assert Delivery.objects.get().attempts == 2


def test_repeat_while_first_is_still_processing_starts_nothing_and_is_not_a_2xx(
    post_delivery,
):
    delivery = SignedDelivery.of_fixture("push__branch")
    Delivery.objects.create(
        delivery_id=delivery.delivery_id, event="push", payload={}, status="received"
    )
    response = post_delivery(delivery)
    # Not a 2xx: GitHub shows it red and reconcile asks for it again until it is processed.
    assert response.status_code == 409
    answer = answer_of(response)
    assert (answer["status"], answer["runs"]) == ("processing", [])
    assert answer["detail"].startswith("delivery is still being processed")
    original = Delivery.objects.originals().get()
    assert (original.status, original.attempts) == (Delivery.Status.RECEIVED, 1)
    assert original.repeats.get().status == Delivery.Status.DUPLICATE


def test_repeat_that_loses_the_claim_to_another_redelivery_is_answered_processing(
    post_delivery, monkeypatch
):
    delivery = SignedDelivery.of_fixture("push__branch")
    with monkeypatch.context() as patch:
        patch.setattr(processing, "decide", lambda event, config: 1 / 0)
        assert post_delivery(delivery).status_code == 500
    original = Delivery.objects.get()
    # Another redelivery claimed the failed delivery between this one's read and claim.
    real_claim = processing.claim

    def claimed_by_another_first(row):
        assert real_claim(Delivery.objects.get(pk=row.pk))
        return real_claim(row)

    monkeypatch.setattr(processing, "claim", claimed_by_another_first)
    response = post_delivery(delivery)
    assert response.status_code == 409
    assert answer_of(response)["status"] == "processing"
    original.refresh_from_db()
    assert (original.status, original.attempts) == (Delivery.Status.RECEIVED, 2)


def test_each_delivery_is_logged_on_one_line(post_delivery, caplog):
    delivery = SignedDelivery.of_fixture("push__branch")
    with caplog.at_level(logging.INFO, logger="runner"):
        post_delivery(delivery)
    lines = [
        record.getMessage() for record in caplog.records if record.name == "runner.receiver.intake"
    ]
    assert lines == [
        f"delivery={delivery.delivery_id} event=push repository=acme/webapp "
        "outcome=accepted detail=started 2 runs: test, deploy"
    ]


def test_rejection_is_recorded_with_reason_headers_and_body_hash_but_no_body(post_delivery):
    delivery = SignedDelivery.of_fixture("push__branch", secret="what GitHub has")
    post_delivery(delivery, HTTP_COOKIE="sessionid=abc")
    rejected = RejectedRequest.objects.get()
    assert rejected.http_status == 403
    assert "does not match" in rejected.reason
    assert (rejected.delivery_id, rejected.event, rejected.remote_addr) == (
        delivery.delivery_id,
        "push",
        "127.0.0.1",
    )
    assert rejected.headers["X-Github-Event"] == "push"
    assert rejected.headers["X-Hub-Signature-256"].startswith("sha256=")
    import hashlib

    assert rejected.body_sha256 == hashlib.sha256(delivery.body).hexdigest()
    assert rejected.body_bytes == len(delivery.body)
    assert "refs/heads/main" not in json.dumps(rejected.headers)


def test_cookies_are_not_kept_in_the_rejection_log(client, webhook_url):
    client.post(
        webhook_url, b"{}", content_type="application/json", headers={"Cookie": "sessionid=abc"}
    )
    assert RejectedRequest.objects.get().headers["Cookie"] == "[redacted]"


def test_rejections_past_the_per_minute_bound_are_counted_not_stored(post_delivery, settings):
    settings.REJECTIONS_STORED_PER_MINUTE = 3
    for _ in range(5):
        post_delivery(SignedDelivery.of_fixture("push__branch"), **{"X-Hub-Signature-256": None})
    assert RejectedRequest.objects.count() == 3
    assert DroppedRejections.objects.get().count == 2


def test_only_the_newest_rejections_are_kept(post_delivery, settings):
    settings.REJECTIONS_KEPT = 3
    ids = [f"flood-{n}" for n in range(6)]
    for delivery_id in ids:
        delivery = SignedDelivery.of_fixture("push__branch", secret="stale")
        delivery.delivery_id = delivery_id
        post_delivery(delivery)
    kept = RejectedRequest.objects.order_by("pk").values_list("delivery_id", flat=True)
    assert list(kept) == ids[3:]


def test_rejection_flood_does_not_block_good_deliveries_from_the_same_address(
    post_delivery, settings
):
    settings.REJECTIONS_STORED_PER_MINUTE = 1
    for _ in range(3):
        post_delivery(SignedDelivery.of_fixture("push__branch", secret="stale secret"))
    assert post_delivery(SignedDelivery.of_fixture("push__branch")).status_code == 202


class UnreadableStream(io.RawIOBase):
    def read(self, size=-1):
        raise AssertionError("the body was read")


def test_body_declared_above_the_limit_is_413_without_being_read(
    rf: RequestFactory, webhook_url, settings
):
    request = rf.post(webhook_url, b"{}", content_type="application/json")
    request.META["CONTENT_LENGTH"] = str(settings.WEBHOOK_MAX_BODY_BYTES + 1)
    request._stream = UnreadableStream()
    response = receive_github(request)
    assert response.status_code == 413
    assert RejectedRequest.objects.get().body_bytes == settings.WEBHOOK_MAX_BODY_BYTES + 1


class CountingStream(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.remaining = size
        self.served = 0

    def read(self, size=-1):
        size = self.remaining if size < 0 else min(size, self.remaining)
        self.remaining -= size
        self.served += size
        return b" " * size


def test_body_growing_past_the_limit_while_read_is_413_and_read_no_further(
    rf, webhook_url, settings
):
    settings.WEBHOOK_MAX_BODY_BYTES = 200_000
    stream = CountingStream(10_000_000)
    request = rf.post(webhook_url, b"", content_type="application/json")
    request.META.pop("CONTENT_LENGTH", None)
    request._stream = stream
    response = receive_github(request)
    assert response.status_code == 413
    assert stream.served <= 200_000 + 64 * 1024


def test_default_body_limit_is_githubs_25_mb(settings):
    assert settings.WEBHOOK_MAX_BODY_BYTES == 25 * 1024 * 1024


def test_delivery_id_is_unique_among_originals():
    from django.db import IntegrityError, transaction

    Delivery.objects.create(delivery_id="same", event="push", payload={})
    with pytest.raises(IntegrityError), transaction.atomic():
        Delivery.objects.create(delivery_id="same", event="push", payload={})


def test_commit_message_with_nul_character_is_stored(post_delivery):
    payload = json.loads(SignedDelivery.of_fixture("push__branch").body)
    payload["head_commit"]["message"] = "fix\u0000"
    delivery = SignedDelivery(event="push", body=json.dumps(payload).encode(), delivery_id="nul")
    assert post_delivery(delivery).status_code == 202
    assert Delivery.objects.get().payload["head_commit"]["message"] == "fix\ufffd"


def test_overlong_values_are_truncated_to_fit_their_columns(post_delivery):
    payload = json.loads(SignedDelivery.of_fixture("push__branch").body)
    payload["ref"] = "refs/heads/" + "b" * 400
    payload["sender"]["login"] = "s" * 300
    delivery = SignedDelivery(event="push", body=json.dumps(payload).encode(), delivery_id="long")
    assert post_delivery(delivery).status_code == 202
    stored = Delivery.objects.get()
    assert (len(stored.ref), len(stored.sender)) == (255, 100)


def test_escaped_surrogate_pairs_and_big_numbers_are_stored_and_processed(post_delivery):
    payload = json.loads(SignedDelivery.of_fixture("push__branch").body)
    payload["head_commit"]["message"] = "ship it \U0001f680"
    payload["repository"]["id"] = 2**70
    payload["repository"]["size"] = 1.5e300
    # json.dumps escapes the emoji as the pair \ud83d\ude80.
    body = json.dumps(payload).encode()
    assert b"\\ud83d\\ude80" in body
    response = post_delivery(SignedDelivery(event="push", body=body, delivery_id="pair"))
    assert response.status_code == 202
    stored = Delivery.objects.get().payload
    assert stored["head_commit"]["message"] == "ship it \U0001f680"
    assert stored["repository"]["id"] == 2**70
    # PostgreSQL's jsonb gives it back as the integer it equals.
    assert float(stored["repository"]["size"]) == 1.5e300


@pytest.mark.parametrize("hook_id", ["30\x00", "30\n31", "3" * 40])
def test_hook_id_that_is_no_hook_id_is_400(post_delivery, hook_id):
    response = post_delivery(
        SignedDelivery.of_fixture("push__branch"), **{"X-GitHub-Hook-ID": hook_id}
    )
    assert response.status_code == 400
    assert answer_of(response)["detail"] == "X-GitHub-Hook-ID is not a hook id"
    assert not Delivery.objects.exists()


def test_refused_request_with_nul_characters_is_recorded(client, webhook_url):
    response = client.post(
        webhook_url,
        b"{}",
        content_type="application/json",
        headers={"X-GitHub-Delivery": "d\x00", "X-GitHub-Event": "push\x00", "X-Other": "\x00"},
    )
    assert response.status_code == 403
    assert answer_of(response)["status"] == "rejected"
    rejected = RejectedRequest.objects.get()
    assert (rejected.delivery_id, rejected.event) == ("d\ufffd", "push\ufffd")
    assert rejected.headers["X-Other"] == "\ufffd"


def writes_of(queries) -> list[str]:
    return [
        q["sql"].split()[0]
        for q in queries
        if not q["sql"].startswith(("SELECT", "SAVEPOINT", "RELEASE"))
    ]


@pytest.mark.parametrize("fixture", ["star__created", "ping__default"])
def test_a_delivery_that_starts_nothing_is_stored_with_its_outcome_at_once(post_delivery, fixture):
    with CaptureQueriesContext(connection) as queries:
        response = post_delivery(SignedDelivery.of_fixture(fixture))
    assert answer_of(response)["status"] in ("ignored", "accepted")
    stored = Delivery.objects.get()
    assert (stored.status, stored.detail) == (
        answer_of(response)["status"],
        answer_of(response)["detail"],
    )
    assert writes_of(queries.captured_queries) == ["INSERT"]


def test_a_delivery_that_starts_runs_is_stored_first_then_given_its_runs(post_delivery):
    with CaptureQueriesContext(connection) as queries:
        response = post_delivery(SignedDelivery.of_fixture("push__branch"))
    assert len(answer_of(response)["runs"]) == 2
    writes = writes_of(queries.captured_queries)
    assert writes[0] == "INSERT" and writes[-1] == "UPDATE"


def test_a_repeat_of_a_delivery_that_started_nothing_starts_nothing(post_delivery):
    delivery = SignedDelivery.of_fixture("star__created")
    post_delivery(delivery)
    response = post_delivery(delivery)
    assert answer_of(response)["status"] == "duplicate"
    assert Delivery.objects.filter(status=Delivery.Status.IGNORED).count() == 1


def test_a_delivery_that_cannot_be_decided_is_stored_then_failed(post_delivery, monkeypatch):
    monkeypatch.setattr(processing, "decide", lambda event, config: 1 / 0)
    response = post_delivery(SignedDelivery.of_fixture("star__created"))
    assert response.status_code == 500
    assert "ZeroDivisionError" in Delivery.objects.get(status=Delivery.Status.FAILED).detail
