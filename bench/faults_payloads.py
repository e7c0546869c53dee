"""The hostile bodies bench/faults.py signs and sends (issue 12, item 7): targeted cases
for each field a delivery is read by, encodings, sizes, nesting, and seeded mutations of
the stored fixtures."""

import copy
import json
import random
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "github"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


@dataclass(frozen=True)
class Case:
    kind: str
    event: str
    body: bytes
    content_type: str | None = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    what: str = ""  # where the hostile value is, shown when something goes wrong

    def describe(self) -> str:
        return f"{self.kind} {self.event}" + (f" {self.what}" if self.what else "")


MARKER = "\x00@raw@\x00"


def set_at(payload: Any, path: tuple, value: Any) -> Any:
    """A copy of `payload` with `value` at `path` (missing mappings made on the way)."""
    result = copy.deepcopy(payload)
    if not path:
        return value
    here = result
    for key in path[:-1]:
        here = here.setdefault(key, {}) if isinstance(here, dict) else here[key]
    here[path[-1]] = value
    return result


def with_raw(payload: Any, path: tuple, raw: str) -> bytes:
    """`payload` as JSON with the raw JSON text `raw` at `path`: what json.dumps cannot
    write (5,000-digit numbers, NaN where it is refused, lone surrogates, broken JSON)."""
    text = json.dumps(set_at(payload, path, MARKER))
    return text.replace(json.dumps(MARKER), raw, 1).encode()


SURROGATES = [
    r'"\udc80"',
    r'"refs/heads/\udc80"',
    r'"\ud800"',
    r'"a\udfffb"',
    r'"\ude00\ud83d"',
    r'"\ud83d\ude00"',  # a valid pair: an emoji
    r'"\udc80\u0000"',
    r'{"\udc80": 1}',
]
NUMBERS = [
    "9" * 5000,
    "-" + "9" * 5000,
    "9" * 4300,
    "9" * 4301,
    "1" + "0" * 5000 + ".5",
    "1e400",
    "-1e400",
    "1e-400",
    "1.5",
    "-0",
]
PR_NUMBERS = [
    "-1",
    "0",
    "1",
    str(2**31 - 1),
    str(2**31),
    str(2**63 - 1),
    str(2**63),
    str(2**64),
    str(-(2**63) - 1),
    str(10**30),
    "1.0",
    '"7"',
    "true",
    "null",
    "[]",
]
CONSTANTS = ["NaN", "Infinity", "-Infinity"]
WRONG_TYPES = ["42", "[]", "{}", "null", "true", '""', '"x"', "[1, 2]", "-1", "1e3"]
CONTROLS = [
    '"refs/heads/a\\nFORGED 2026-01-01 ERROR runner outcome=accepted"',
    '"refs/heads/\\u0000main"',
    '"refs/heads/\\r\\u001b[31mred"',
    '"refs/heads/\\u202e\\u2028x"',
    '"refs/heads/$(rm -rf ~)`id`"',
    '"refs/heads/' + "\\u0007" * 50 + '"',
]
PUSH_FIELDS = [
    ("ref",),
    ("sender", "login"),
    ("repository", "full_name"),
    ("after",),
    ("head_commit", "message"),
    ("commits", 0, "added", 0),
    ("repository", "id"),
    ("x",),
]
PR_FIELDS = [
    ("pull_request", "head", "ref"),
    ("pull_request", "base", "ref"),
    ("sender", "login"),
    ("repository", "full_name"),
    ("pull_request", "head", "repo", "full_name"),
    ("action",),
    ("pull_request", "head", "sha"),
]
SHAPE_FIELDS = {
    "push": [
        ("ref",),
        ("repository",),
        ("repository", "full_name"),
        ("sender",),
        ("sender", "login"),
        ("commits",),
        ("commits", 0),
        ("commits", 0, "added"),
        ("deleted",),
        ("after",),
    ],
    "pull_request": [
        ("pull_request",),
        ("pull_request", "head"),
        ("pull_request", "head", "repo"),
        ("pull_request", "base"),
        ("action",),
        ("number",),
        ("repository",),
    ],
}


def raw_at(kind: str, event: str, payload: dict, path: tuple, raw: str) -> Case:
    shown = raw if len(raw) <= 24 else f"{raw[:16]}... ({len(raw):,} chars)"
    where = ".".join(str(key) for key in path)
    return Case(kind, event, with_raw(payload, path, raw), what=f"{where}={shown}")


def targeted_cases() -> list[Case]:
    """The hostile bodies of item 7 and their kin, each placed where it hurts."""
    push, pr = fixture("push__branch"), fixture("pull_request__opened")
    cases = []
    for raw in SURROGATES:
        cases += [raw_at("surrogate", "push", push, path, raw) for path in PUSH_FIELDS]
        cases += [raw_at("surrogate", "pull_request", pr, path, raw) for path in PR_FIELDS]
    for raw in NUMBERS:
        for path in [("x",), ("repository", "id"), ("commits", 0, "timestamp"), ("ref",)]:
            cases.append(raw_at("big number", "push", push, path, raw))
        for path in [("number",), ("pull_request", "number")]:
            cases.append(raw_at("big number", "pull_request", pr, path, raw))
    for raw in PR_NUMBERS:
        for path in [("number",), ("pull_request", "number")]:
            cases.append(raw_at("pr number", "pull_request", pr, path, raw))
    for raw in CONSTANTS:
        for path in [("ref",), ("repository", "id"), ("x",)]:
            cases.append(raw_at("nan", "push", push, path, raw))
        cases.append(raw_at("nan", "pull_request", pr, ("number",), raw))
    for raw in CONTROLS:
        cases.append(raw_at("controls", "push", push, ("ref",), raw))
        cases.append(raw_at("controls", "push", push, ("sender", "login"), raw))
        cases.append(raw_at("controls", "pull_request", pr, PR_FIELDS[0], raw))
    for event, fields in SHAPE_FIELDS.items():
        payload = push if event == "push" else pr
        for path in fields:
            cases += [raw_at("wrong type", event, payload, path, raw) for raw in WRONG_TYPES]
    return cases + nesting_cases(push, pr) + encoding_cases(push) + size_cases(push, pr)


def changed(payload: Any, path: tuple, value: Any) -> bytes:
    return json.dumps(set_at(payload, path, value)).encode()


def nesting_cases(push: dict, pr: dict) -> list[Case]:
    deep_object = '{"a":' * 3000 + "1" + "}" * 3000
    return [
        Case("nesting", "push", b"[" * 100_000),
        Case("nesting", "push", b'{"a":' * 50_000 + b"1" + b"}" * 50_000),
        Case("nesting", "push", with_raw(push, ("x",), "[" * 1000 + "]" * 1000)),
        Case("nesting", "push", with_raw(push, ("x",), "[" * 199 + "]" * 199)),
        Case("nesting", "push", with_raw(push, ("x",), "[" * 250 + "]" * 250)),
        Case("nesting", "push", with_raw(push, ("ref",), "[" * 100_000)),
        Case("nesting", "push", with_raw(push, ("commits",), "[" * 5000 + "]" * 5000)),
        Case("nesting", "pull_request", with_raw(pr, ("pull_request",), deep_object)),
        Case("nesting", "push", with_raw(push, ("x",), "[" * 10_000 + "]" * 10_000)),
    ]


# Bytes no UTF-8 text holds: a stray byte, a broken pair, an encoded surrogate, an overlong
# form, a code point past U+10FFFF, a sequence cut short.
INVALID_UTF8 = [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80", b"\xe2"]
NOT_OBJECTS = [b"", b" ", b"not json", b'{"a":1', b"{}", b"[]", b'"push"', b"42", b"null"]
EVENT_NAMES = ["PUSH", "ping", "issues", "pull_request", "a" * 64, "a" * 65, "x\ty", "../.."]
FORM = "application/x-www-form-urlencoded"


def encoding_cases(push: dict) -> list[Case]:
    body = json.dumps(push).encode()
    ref = json.dumps(push["ref"]).encode()
    surrogate_ref = with_raw(push, ("ref",), r'"\udc80"')
    cases = [
        Case("utf-8", "push", body.replace(ref, ref[:-1] + bad + b'"', 1)) for bad in INVALID_UTF8
    ]
    cases += [
        Case("utf-8", "push", b"\xef\xbb\xbf" + body),
        Case("utf-8", "push", json.dumps(push).encode("utf-16")),
        Case("utf-8", "push", body.replace(b"octocat", "octocat\u00e9".encode("latin-1"), 1)),
        Case("utf-8", "push", changed(push, ("ref",), "refs/heads/\u00e9")[:-1]),
        Case("form", "push", b"payload=" + urllib.parse.quote(body).encode(), FORM),
        Case("form", "push", b"payload=" + urllib.parse.quote(surrogate_ref).encode(), FORM),
        Case("form", "push", b"payload=%ff%fe%fd", FORM),
        Case("form", "push", b"payload=\xff" + body, FORM),
        Case("form", "push", b"foo=bar", FORM),
        Case("form", "push", b"payload=" + b"%5B" * 20_000, FORM),
        Case("form", "push", b"payload=1&payload=2", FORM),
        Case("content type", "push", body, "text/plain"),
        Case("content type", "push", body, "application/json; charset=utf-16"),
        Case("content type", "push", body, "multipart/form-data; boundary=x"),
        Case("content type", "push", body, None),
        Case("content type", "push", body, "application/json" + "; x=y" * 1000),
    ]
    cases += [Case("not an object", "push", raw) for raw in NOT_OBJECTS]
    cases.append(Case("not an object", "push", b'{"ref": 1, "ref": "refs/heads/main"}'))
    cases += [Case("event header", event, body) for event in EVENT_NAMES]
    cases.append(Case("headers", "push", body, headers=(("X-GitHub-Hook-ID", "9" * 40),)))
    cases.append(Case("headers", "push", body, headers=(("X-GitHub-Hook-ID", "1\u00e9\u00ff"),)))
    return cases


def huge(event: str, payload: dict, path: tuple, value: Any, what: str) -> Case:
    where = ".".join(str(key) for key in path)
    return Case("huge", event, changed(payload, path, value), what=f"{where}: {what}")


def size_cases(push: dict, pr: dict) -> list[Case]:
    mb = 1024 * 1024
    many_commits = [push["commits"][0]] * 3000
    files = [f"src/file{i}.py" for i in range(5000)]
    keys = {f"k{i}": i for i in range(100_000)}
    return [
        huge("push", push, ("ref",), "refs/heads/" + "a" * mb, "1 MiB"),
        huge("push", push, ("sender", "login"), "s" * mb, "1 MiB"),
        huge("push", push, ("repository", "full_name"), "acme/" + "w" * mb, "1 MiB"),
        huge("push", push, ("head_commit", "message"), "m" * 5 * mb, "5 MiB"),
        huge("push", push, ("x",), "x" * 20 * mb, "20 MiB"),
        huge("push", push, ("commits",), many_commits, "3,000 commits"),
        huge("push", push, ("commits", 0, "added"), files, "5,000 files"),
        huge("push", push, ("x",), keys, "100,000 keys"),
        huge("pull_request", pr, ("pull_request", "head", "ref"), "h" * mb, "1 MiB"),
        huge("push", push, ("after",), "f" * mb, "1 MiB"),
    ]


HOSTILE_VALUES = [
    *SURROGATES,
    "9" * 5000,
    "-1",
    str(2**63),
    *CONSTANTS,
    "[" * 300 + "]" * 300,
    *WRONG_TYPES,
    *CONTROLS,
    '"' + "z" * 100_000 + '"',
    "1e400",
]


def paths_of(value: Any, path: tuple = ()) -> list[tuple]:
    paths = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            paths += paths_of(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            paths += paths_of(item, (*path, index))
    return paths


def mutated_cases(count: int, rng: random.Random) -> list[Case]:
    """Random mutations of the stored fixtures: bytes flipped, cut, repeated or inserted,
    or a random field given a hostile value or taken away."""
    fixtures = sorted(FIXTURES.glob("*.json"))
    cases = []
    for _ in range(count):
        chosen = rng.choice(fixtures)
        event = chosen.stem.split("__")[0]
        payload = json.loads(chosen.read_text())
        body = bytearray(json.dumps(payload).encode())
        how = rng.choice(["flip", "cut", "repeat", "insert", "truncate", "value", "value", "drop"])
        if how == "flip":
            for _ in range(rng.randint(1, 8)):
                body[rng.randrange(len(body))] = rng.randrange(256)
        elif how == "cut":
            start = rng.randrange(len(body))
            del body[start : start + rng.randint(1, 200)]
        elif how == "repeat":
            start = rng.randrange(len(body))
            body[start:start] = body[start : start + rng.randint(1, 500)] * rng.randint(2, 50)
        elif how == "insert":
            body[rng.randrange(len(body)) : 0] = rng.randbytes(rng.randint(1, 64))
        elif how == "truncate":
            del body[rng.randrange(len(body)) :]
        elif how == "value":
            path = rng.choice(paths_of(payload)[1:])
            body = bytearray(with_raw(payload, path, rng.choice(HOSTILE_VALUES)))
        else:
            path = rng.choice(paths_of(payload)[1:])
            parent = payload
            for key in path[:-1]:
                parent = parent[key]
            del parent[path[-1]]
            body = bytearray(json.dumps(payload).encode())
        cases.append(Case(f"mutation {how}", event, bytes(body)))
    return cases
