"""GitHub's events read from their payloads: refs, commits, changed files, pull requests
from forks, and the fields each event must have."""

import json
import re

import pytest

from runner.config.github import (
    COMMITS_CAPPED,
    COMMITS_UNREADABLE,
    FILES_CAPPED,
    MAX_NAME_LENGTH,
    NO_COMMITS,
    BadDelivery,
    event_from_payload,
)
from runner.receiver.parsing import parse_event
from tests.conftest import FIXTURES, fixture_names

SECRET = "s3cret"


def github_headers(event: str, **extra: str) -> dict[str, str]:
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": "d-1",
        "Content-Type": "application/json",
        **extra,
    }


def parse_fixture(name: str):
    body = (FIXTURES / f"{name}.json").read_bytes()
    return parse_event(github_headers(name.split("__")[0], **{"X-GitHub-Hook-ID": "30"}), body)


@pytest.mark.parametrize("name", fixture_names())
def test_every_fixture_parses_with_its_repository_and_sender(name):
    event = parse_fixture(name)
    assert event.repository == "acme/webapp"
    assert event.sender in {"octocat", "mallory"}
    assert event.hook_id == "30"


@pytest.mark.parametrize(
    ("name", "ref", "sha", "deleted"),
    [
        ("push__branch", "refs/heads/main", "fdf0d9b48aca90fb0019f29d9611992528323408", False),
        ("push__tag", "refs/tags/v1.2.0", "d97cab235a72e7ca3257d2e1174fffb7708f739b", False),
        ("push__branch_deleted", "refs/heads/feature/old-login", "0" * 40, True),
    ],
)
def test_push_reads_ref_sha_and_deletion(name, ref, sha, deleted):
    event = parse_fixture(name)
    assert (event.ref, event.sha, event.deleted, event.is_acted_on) == (ref, sha, deleted, True)


@pytest.mark.parametrize(
    ("name", "action", "number", "head_repository", "head_ref"),
    [
        ("pull_request__opened", "opened", 42, "acme/webapp", "feature/login"),
        ("pull_request__synchronize", "synchronize", 42, "acme/webapp", "feature/login"),
        ("pull_request__closed", "closed", 42, "acme/webapp", "feature/login"),
        ("pull_request__from_fork", "opened", 43, "mallory/webapp", "patch-1"),
    ],
)
def test_pull_request_reads_action_number_and_head(name, action, number, head_repository, head_ref):
    event = parse_fixture(name)
    assert (event.action, event.pr_number, event.head_repository, event.head_ref) == (
        action,
        number,
        head_repository,
        head_ref,
    )
    assert event.base_ref == "main"
    assert event.ref == f"refs/pull/{number}/merge"


def test_push_lists_every_file_its_commits_add_modify_or_remove_once():
    payload = json.loads((FIXTURES / "push__branch.json").read_bytes())
    payload["commits"][1]["removed"] = ["webapp/old.py"]
    payload["commits"][1]["modified"].append("webapp/auth.py")
    event = parse_event(github_headers("push"), json.dumps(payload).encode())
    assert event.changed_files == (
        "tests/test_session.py",
        "webapp/auth.py",
        "webapp/old.py",
        "webapp/ratelimit.py",
    )
    assert event.changed_files_unknown == ""


def commit(added=(), modified=(), removed=()):
    return {
        "id": "a" * 40,
        "added": list(added),
        "modified": list(modified),
        "removed": list(removed),
    }


@pytest.mark.parametrize(
    ("commits", "files", "unknown"),
    [
        ([], None, NO_COMMITS),
        (None, None, NO_COMMITS),
        ([commit(), commit()], (), ""),
        ([commit(added=["a"])] * 2047, ("a",), ""),
        ([commit(added=["a"])] * 2048, None, COMMITS_CAPPED),
        (
            [commit(modified=[f"f{n}" for n in range(2999)])],
            tuple(sorted(f"f{n}" for n in range(2999))),
            "",
        ),
        ([commit(modified=[f"f{n}" for n in range(3000)])], None, FILES_CAPPED),
        ([commit(), commit(removed=[f"f{n}" for n in range(3000)])], None, FILES_CAPPED),
        ("not a list", None, COMMITS_UNREADABLE),
        (["not a commit"], None, COMMITS_UNREADABLE),
        ([{"added": "a.py"}], None, COMMITS_UNREADABLE),
        ([{"added": [7]}], None, COMMITS_UNREADABLE),
        ([{"id": "b" * 40}], (), ""),
    ],
)
def test_push_says_why_its_changed_files_are_unknown(commits, files, unknown):
    payload = json.loads((FIXTURES / "push__branch.json").read_bytes())
    if commits is None:
        del payload["commits"]
    else:
        payload["commits"] = commits
    event = parse_event(github_headers("push"), json.dumps(payload).encode())
    assert (event.changed_files, event.changed_files_unknown) == (files, unknown)


@pytest.mark.parametrize("name", ["push__tag", "push__new_branch", "push__branch_deleted"])
def test_pushes_that_list_no_commits_have_unknown_files(name):
    event = parse_fixture(name)
    assert (event.changed_files, event.changed_files_unknown) == (None, NO_COMMITS)


def test_pull_requests_carry_no_changed_files():
    event = parse_fixture("pull_request__synchronize")
    assert (event.changed_files, event.changed_files_unknown) == (None, "")


def test_pull_request_from_deleted_fork_has_no_head_repository():
    payload = json.loads((FIXTURES / "pull_request__from_fork.json").read_bytes())
    payload["pull_request"]["head"]["repo"] = None
    event = parse_event(github_headers("pull_request"), json.dumps(payload).encode())
    assert event.head_repository == ""


@pytest.mark.parametrize(
    ("name", "is_ping", "is_acted_on"),
    [("ping__default", True, False), ("star__created", False, False)],
)
def test_ping_and_other_events_are_not_acted_on(name, is_ping, is_acted_on):
    event = parse_fixture(name)
    assert (event.is_ping, event.is_acted_on) == (is_ping, is_acted_on)


@pytest.mark.parametrize(
    ("event", "remove", "reason"),
    [
        ("push", ("ref",), "push payload field ref is missing"),
        ("push", ("after",), "push payload field after is missing"),
        ("push", ("repository",), "push payload field repository.full_name is missing"),
        ("pull_request", ("number",), "pull_request payload field number is missing"),
        (
            "pull_request",
            ("pull_request", "head"),
            "pull_request payload field pull_request.head.ref is missing",
        ),
        (
            "pull_request",
            ("pull_request", "base"),
            "pull_request payload field pull_request.base.ref is missing",
        ),
    ],
)
def test_payload_missing_a_needed_field_is_refused(event, remove, reason):
    name = {"push": "push__branch", "pull_request": "pull_request__opened"}[event]
    payload = json.loads((FIXTURES / f"{name}.json").read_bytes())
    *parents, last = remove
    container = payload
    for key in parents:
        container = container[key]
    del container[last]
    with pytest.raises(BadDelivery, match=reason):
        parse_event(github_headers(event), json.dumps(payload).encode())


def test_field_of_wrong_type_is_refused():
    payload = json.loads((FIXTURES / "pull_request__opened.json").read_bytes())
    payload["number"] = "42"
    with pytest.raises(BadDelivery, match="field number is not a number"):
        parse_event(github_headers("pull_request"), json.dumps(payload).encode())


@pytest.mark.parametrize("number", [-1, 0, 2**31, 2**63, 2**64, 10**4000])
def test_pull_request_number_out_of_range_is_refused(number):
    payload = json.loads((FIXTURES / "pull_request__opened.json").read_bytes())
    payload["number"] = number
    reason = "pull_request payload field number is not a pull request number (1 to 2147483647)"
    with pytest.raises(BadDelivery, match=re.escape(reason)):
        event_from_payload("pull_request", payload)


@pytest.mark.parametrize("number", [1, 2**31 - 1])
def test_pull_request_numbers_up_to_the_largest_are_read(number):
    payload = json.loads((FIXTURES / "pull_request__opened.json").read_bytes())
    payload["number"] = number
    event = event_from_payload("pull_request", payload)
    assert (event.pr_number, event.ref) == (number, f"refs/pull/{number}/merge")


@pytest.mark.parametrize(
    ("event", "path"),
    [
        ("push", ("sender", "login")),
        ("push", ("repository", "full_name")),
        ("push", ("ref",)),
        ("pull_request", ("pull_request", "head", "ref")),
    ],
)
def test_a_name_longer_than_any_github_gives_is_refused(event, path):
    fixture = {"push": "push__branch", "pull_request": "pull_request__opened"}[event]
    payload = json.loads((FIXTURES / f"{fixture}.json").read_text())
    holder = payload
    for key in path[:-1]:
        holder = holder[key]
    holder[path[-1]] = "x" * (MAX_NAME_LENGTH + 1)
    with pytest.raises(BadDelivery, match=f"{path[-1]} is longer than {MAX_NAME_LENGTH}"):
        parse_event(github_headers(event), json.dumps(payload).encode())
