"""check_pipelines, match, and the start-up check of pipelines.yaml."""

import pytest
from django.core.management import CommandError, call_command
from django.core.management.base import SystemCheckError

from tests.conftest import FIXTURES, TEST_PIPELINES

BROKEN = """\
repositories:
  acme/webapp:
    pipelines:
      test:
        on: {push: {branches: "[x"}}
        steps: []
"""


@pytest.fixture
def broken_file(tmp_path):
    path = tmp_path / "pipelines.yaml"
    path.write_text(BROKEN)
    return path


def test_check_pipelines_summarises_a_valid_file(capsys):
    call_command("check_pipelines", str(TEST_PIPELINES))
    output = capsys.readouterr().out
    assert f"{TEST_PIPELINES}: valid, 1 repository, 2 pipelines" in output
    assert "  acme/webapp (WEBHOOK_SECRET)" in output
    assert "    deploy: push (branches main); 1 step; timeout 3600s; queue deploy" in output


def test_check_pipelines_warns_of_each_pipeline_without_a_sandbox(tmp_path, capsys):
    path = tmp_path / "pipelines.yaml"
    path.write_text(
        TEST_PIPELINES.read_text().replace(
            "      deploy:\n", "      deploy:\n        sandbox: off\n"
        )
    )
    call_command("check_pipelines", str(path))
    captured = capsys.readouterr()
    assert "    deploy: push (branches main); 1 step; timeout 3600s; queue deploy" in captured.out
    assert "; sandbox off" in captured.out
    assert captured.err.splitlines() == [
        "warning: acme/webapp deploy: sandbox: off: its steps run outside a sandbox, where "
        "they can read hookrunner's secrets, database and configuration, other runs' "
        "workspaces and every mirror, and leave processes running (docs/sandbox.md)"
    ]


def test_check_pipelines_lists_every_problem_and_exits_1(broken_file, capsys):
    with pytest.raises(SystemExit) as exited:
        call_command("check_pipelines", str(broken_file))
    assert exited.value.code == 1
    errors = capsys.readouterr().err.splitlines()
    assert errors == [
        f"{broken_file}:5: repositories.acme/webapp.pipelines.test.on.push.branches: "
        "bad pattern '[x': '[' at position 1 is never closed",
        f"{broken_file}:6: repositories.acme/webapp.pipelines.test.steps: "
        "is empty; a pipeline needs at least one step",
        f"2 problems in {broken_file}",
    ]


def test_check_pipelines_defaults_to_the_configured_file(settings, broken_file):
    settings.PIPELINES_FILE = broken_file
    with pytest.raises(SystemExit):
        call_command("check_pipelines")


def test_match_shows_what_starts_and_what_said_no(capsys):
    call_command("match", "push", str(FIXTURES / "push__tag.json"))
    assert capsys.readouterr().out.splitlines() == [
        "push to acme/webapp refs/tags/v1.2.0, via acme/webapp:",
        "  test: does not start: tag v1.2.0: the push trigger lists only branches",
        "  deploy: does not start: tag v1.2.0: the push trigger lists only branches",
    ]


def test_match_names_a_fork(capsys):
    call_command("match", "pull_request", str(FIXTURES / "pull_request__from_fork.json"))
    output = capsys.readouterr().out
    assert output.startswith("pull_request from a fork to acme/webapp")
    assert "test: does not start: the pull request comes from mallory/webapp" in output


def test_match_takes_another_pipelines_file(tmp_path, capsys):
    other = tmp_path / "other.yaml"
    other.write_text(
        "repositories:\n  acme/*:\n    pipelines:\n"
        "      tags: {on: {push: {tags: 'v*'}}, steps: [{name: s, run: echo}]}\n"
    )
    call_command("match", "push", str(FIXTURES / "push__tag.json"), pipelines=str(other))
    assert "  tags: starts" in capsys.readouterr().out


def test_match_says_when_no_entry_covers_the_repository(tmp_path, capsys):
    payload = tmp_path / "push.json"
    payload.write_text('{"ref": "refs/heads/x", "after": "a", "repository": {"full_name": "x/y"}}')
    call_command("match", "push", str(payload))
    assert capsys.readouterr().out == f"no entry in {TEST_PIPELINES} covers x/y\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [("[1]", "payload is a JSON list"), ("{}", "push payload field repository.full_name")],
)
def test_match_refuses_an_unusable_payload(tmp_path, content, message):
    payload = tmp_path / "push.json"
    payload.write_text(content)
    with pytest.raises(CommandError, match=message):
        call_command("match", "push", str(payload))


@pytest.mark.django_db
def test_invalid_pipelines_file_fails_the_system_check(settings, broken_file):
    settings.PIPELINES_FILE = broken_file
    with pytest.raises(SystemCheckError, match=r"hookrunner\.E002") as raised:
        call_command("check")
    assert "bad pattern '[x'" in str(raised.value)


ORGANISATION = """\
repositories:
  acme/*:
    secret_env: ACME_HOOK_SECRET
    pipelines:
      lint: {on: push, steps: [{name: s, run: make lint}]}
  acme/webapp:
    pipelines:
      test: {on: push, steps: [{name: s, run: make test}]}
  "*/webapp":
    pipelines:
      audit: {on: push, steps: [{name: s, run: make audit}]}
"""


@pytest.fixture
def organisation_file(tmp_path):
    path = tmp_path / "pipelines.yaml"
    path.write_text(ORGANISATION)
    return path


def test_check_pipelines_shows_which_other_entries_add_to_each(
    organisation_file, monkeypatch, capsys
):
    monkeypatch.setenv("ACME_HOOK_SECRET", "s")
    call_command("check_pipelines", pipelines=str(organisation_file))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{organisation_file}: valid, 3 repositories, 3 pipelines"
    assert [line for line in lines if not line.startswith("    ") or "+" in line] == [
        lines[0],
        "  acme/* (secret from ACME_HOOK_SECRET)",
        "    + acme/webapp (line 6) adds test to acme/webapp",
        "    + */webapp (line 9) adds audit to those both cover, such as acme/webapp",
        "  acme/webapp (secret from ACME_HOOK_SECRET, named by acme/*)",
        "    + acme/* (line 2) adds lint",
        "    + */webapp (line 9) adds audit",
        "  */webapp (WEBHOOK_SECRET)",
        "    + acme/* (line 2) adds lint to those both cover, such as acme/webapp",
        "    + acme/webapp (line 6) adds test to acme/webapp",
    ]


def test_check_pipelines_takes_pipelines_file_as_match_and_trigger_do(broken_file, capsys):
    with pytest.raises(SystemExit):
        call_command("check_pipelines", pipelines=str(broken_file))
    assert capsys.readouterr().err.endswith(f"2 problems in {broken_file}\n")


def test_check_pipelines_refuses_two_different_files(broken_file, tmp_path):
    with pytest.raises(CommandError, match="two files to check"):
        call_command("check_pipelines", str(broken_file), pipelines=str(tmp_path / "other.yaml"))


def test_match_warns_of_an_unset_secret_variable_and_matches_all_the_same(
    organisation_file, capsys
):
    call_command(
        "match", "push", str(FIXTURES / "push__branch.json"), pipelines=str(organisation_file)
    )
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f"warning: {organisation_file}:3: repositories.acme/*.secret_env: "
        "names ACME_HOOK_SECRET, which is not set in hookrunner's environment"
    ]
    assert captured.out.splitlines() == [
        "push to acme/webapp refs/heads/main, via acme/*, acme/webapp, */webapp:",
        "  lint: starts",
        "  test: starts",
        "  audit: starts",
    ]


def test_check_pipelines_still_refuses_an_unset_secret_variable(organisation_file, capsys):
    with pytest.raises(SystemExit):
        call_command("check_pipelines", pipelines=str(organisation_file))
    assert "names ACME_HOOK_SECRET, which is not set" in capsys.readouterr().err
