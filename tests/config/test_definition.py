"""A run's definition travels typed and versioned: what is stored reads back the same,
rows stored before the version field still read, and a newer version is refused."""

import pytest

from runner.config.definition import RunDefinition, UnknownVersion
from runner.config.pipelines import Concurrency, Notify, Step

FULL = RunDefinition(
    name="deploy",
    steps=(Step("ship", "make ship", 60, {"A": "b"}, ("sh", "-c")),),
    env={"STAGE": "prod"},
    timeout=600,
    workdir="/srv/app",
    checkout=True,
    clone_url="file:///srv/git/{repository}",
    keep_workspace=True,
    secrets=("DEPLOY_TOKEN",),
    runs_on="deploy",
    needs=("test",),
    report_status=True,
    token_env="GITHUB_TOKEN",
    notify=(Notify("https://chat.example/hook", "failure", "HOOK_SECRET"),),
    concurrency=Concurrency("production", cancel_in_progress=True),
)


def test_what_is_stored_reads_back_the_same():
    assert RunDefinition.from_json(FULL.to_json()) == FULL


def test_it_is_stored_with_its_version():
    assert FULL.to_json()["version"] == 1


def test_a_row_stored_before_versions_reads_as_version_1():
    stored = FULL.to_json()
    del stored["version"]
    assert RunDefinition.from_json(stored) == FULL


def test_keys_a_row_lacks_take_their_defaults():
    assert RunDefinition.from_json({"name": "ci"}) == RunDefinition(name="ci")


def test_a_newer_version_is_refused_not_guessed():
    with pytest.raises(UnknownVersion, match="version 2 is newer than 1"):
        RunDefinition.from_json({**FULL.to_json(), "version": 2})


def test_a_notification_finds_its_signing_secret_by_its_url():
    assert FULL.notify_secret_env("https://chat.example/hook") == "HOOK_SECRET"
    assert FULL.notify_secret_env("https://elsewhere.example/") == ""
