"""A delivery's signature, body and headers: what is accepted and the one-line reason for
what is not."""

import pytest

from runner.config.github import BadDelivery, sign
from runner.receiver.parsing import (
    MAX_JSON_DEPTH,
    decode_payload,
    parse_event,
    signature_format_problem,
    signing_secret,
)

SECRET = "s3cret"


def test_signature_matches_githubs_published_vector():
    assert sign("It's a Secret to Everybody", b"Hello, World!") == (
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    )


def test_correct_signature_names_its_secret():
    assert signing_secret([SECRET], b"{}", sign(SECRET, b"{}")) == SECRET


def test_signature_with_uppercase_hex_is_accepted():
    header = "sha256=" + sign(SECRET, b"{}").removeprefix("sha256=").upper()
    assert signing_secret([SECRET], b"{}", header) == SECRET


def test_signature_made_with_any_configured_secret_is_accepted():
    assert signing_secret(["other", SECRET], b"{}", sign(SECRET, b"{}")) == SECRET


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        (None, "missing X-Hub-Signature-256"),
        ("", "missing X-Hub-Signature-256"),
        ("sha1=" + "a" * 40, "malformed"),
        ("a" * 64, "malformed"),
        ("sha256=" + "a" * 63, "malformed"),
        ("sha256=" + "g" * 64, "malformed"),
    ],
)
def test_bad_signature_header_is_named(header, problem):
    assert problem in signature_format_problem(header)


def test_well_formed_signature_header_has_no_format_problem():
    assert signature_format_problem("sha256=" + "a" * 64) is None


def test_signature_of_another_body_matches_no_secret():
    assert signing_secret([SECRET], b"{}", sign(SECRET, b"[]")) is None


def test_wrong_secret_matches_no_secret():
    assert signing_secret([SECRET], b"{}", "sha256=" + "a" * 64) is None


def test_empty_secret_never_verifies_anything():
    assert signing_secret([""], b"{}", sign("", b"{}")) is None


def test_form_encoded_body_carries_payload_field():
    body = b"payload=%7B%22zen%22%3A+%22hi%22%7D"
    assert decode_payload("application/x-www-form-urlencoded", body) == {"zen": "hi"}


@pytest.mark.parametrize(
    ("content_type", "body", "reason"),
    [
        ("application/json", b"{not json", "body is not valid JSON: Expecting property name"),
        ("application/json", b"[1, 2]", "payload is a JSON list, not an object"),
        ("application/json", b'"text"', "payload is a JSON str, not an object"),
        ("application/json", b"\xff\xfe", "body is not UTF-8"),
        ("application/x-www-form-urlencoded", b"other=1", "form-encoded body has no payload"),
        ("application/x-www-form-urlencoded", b"payload=%7B", "body is not valid JSON"),
        ("text/plain", b"{}", "unsupported content type 'text/plain'"),
    ],
)
def test_undecodable_body_names_its_problem(content_type, body, reason):
    with pytest.raises(BadDelivery, match=reason):
        decode_payload(content_type, body)


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"X-GitHub-Delivery": "d-1"}, "missing X-GitHub-Event header"),
        ({"X-GitHub-Event": "push"}, "missing X-GitHub-Delivery header"),
        ({"X-GitHub-Event": "push", "X-GitHub-Delivery": "x" * 101}, "not a delivery id"),
    ],
)
def test_missing_github_headers_are_refused(headers, reason):
    with pytest.raises(BadDelivery, match=reason):
        parse_event(headers, b"{}")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"a": NaN}', "NaN is not a JSON value"),
        (b'{"a": -Infinity}', "-Infinity is not a JSON value"),
        (b"[" * 100_000, "nested too deeply"),
    ],
)
def test_json_that_python_would_stretch_to_accept_is_refused(body, reason):
    with pytest.raises(BadDelivery, match=reason):
        decode_payload("application/json", body)


def test_nul_characters_are_replaced_so_any_database_can_store_the_payload():
    payload = decode_payload("application/json", b'{"message\\u0000": ["fix\\u0000"]}')
    assert payload == {"message\ufffd": ["fix\ufffd"]}


def test_overlong_event_header_is_refused():
    with pytest.raises(BadDelivery, match="X-GitHub-Event is not an event name"):
        parse_event({"X-GitHub-Event": "x" * 65, "X-GitHub-Delivery": "d-1"}, b"{}")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"ref": "refs/heads/\\udc80"}', "field ref holds a lone surrogate (\\udc80)"),
        (b'{"a": {"b": ["x\\ud800"]}}', "field a.b[0] holds a lone surrogate (\\ud800)"),
        (b'{"a": "\\ude00\\ud83d"}', "field a holds a lone surrogate (\\ude00)"),
        (b'{"\\udc80": 1}', "a field name holds a lone surrogate (\\udc80)"),
        (b'{"n": ' + b"7" * 5000 + b"}", "a number has too many digits"),
        (b'{"n": -' + b"7" * 5000 + b"}", "a number has too many digits"),
        (b'{"n": 1e400}', "number 1e400 is out of range"),
        (b'{"n": -1e400}', "number -1e400 is out of range"),
        (b'{"a": ' + b"[" * 300 + b"]" * 300 + b"}", "nested too deeply"),
        (b'{"a": ' + b'{"a": ' * 300 + b"1" + b"}" * 300 + b"}", "nested too deeply"),
    ],
)
def test_json_a_database_cannot_store_is_refused_with_its_reason(body, reason):
    with pytest.raises(BadDelivery) as refused:
        decode_payload("application/json", body)
    assert reason in str(refused.value)
    assert "\n" not in str(refused.value)


def test_escaped_surrogate_pairs_and_backslashes_that_only_look_like_escapes_are_read():
    body = b'{"a": "\\ud83d\\ude80", "b": "\\\\udc80"}'
    assert decode_payload("application/json", body) == {"a": "\U0001f680", "b": "\\udc80"}


def test_payload_nested_as_deep_as_allowed_is_read_and_one_level_more_refused():
    depth = MAX_JSON_DEPTH - 1  # the payload's own object is the first level
    body = b'{"a": ' + b"[" * depth + b"]" * depth + b"}"
    innermost = decode_payload("application/json", body)["a"]
    for _ in range(depth - 1):
        (innermost,) = innermost
    assert innermost == []
    deeper = b'{"a": ' + b"[" * (depth + 1) + b"]" * (depth + 1) + b"}"
    with pytest.raises(BadDelivery, match=rf"nested too deeply \(over {MAX_JSON_DEPTH} levels\)"):
        decode_payload("application/json", deeper)


@pytest.mark.parametrize("hook_id", ["30\x00", "\x1b[2K", "3" * 33])
def test_hook_id_header_that_is_no_hook_id_is_refused(hook_id):
    headers = {"X-GitHub-Event": "ping", "X-GitHub-Delivery": "d-1", "X-GitHub-Hook-ID": hook_id}
    with pytest.raises(BadDelivery, match="X-GitHub-Hook-ID is not a hook id"):
        parse_event(headers, b"{}")
