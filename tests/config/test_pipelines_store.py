"""The configuration in force follows the file: valid edits are picked up, broken ones are not."""

import logging
import os

import pytest

from runner.config.pipelines_file import PipelinesError
from runner.config.store import PipelinesStore, pipelines_store

PIPELINE = (
    "repositories:\n  acme/webapp:\n    pipelines:\n"
    "      {name}: {{on: {{push: null}}, steps: [{{name: s, run: echo}}]}}\n"
)


def write(path, text: str) -> None:
    path.write_text(text)
    # Make each write a visibly new version even within one clock tick.
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))


def pipeline_names(store: PipelinesStore) -> list[str]:
    return [p.name for p in store.current().repositories[0].pipelines]


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "pipelines.yaml"
    write(path, PIPELINE.format(name="first"))
    return path


def test_valid_edit_is_picked_up_without_restart(config_file):
    store = PipelinesStore(config_file, check_interval=0)
    assert pipeline_names(store) == ["first"]
    write(config_file, PIPELINE.format(name="second"))
    assert pipeline_names(store) == ["second"]


def test_broken_edit_keeps_the_last_valid_configuration_and_exposes_the_error(config_file, caplog):
    store = PipelinesStore(config_file, check_interval=0)
    assert pipeline_names(store) == ["first"]
    write(config_file, PIPELINE.format(name="second").replace("steps:", "stepz:"))
    with caplog.at_level(logging.ERROR, logger="runner.config.store"):
        assert pipeline_names(store) == ["first"]
    assert "unknown key 'stepz'" in store.error
    assert "keeping the last valid one" in caplog.text
    write(config_file, PIPELINE.format(name="third"))
    assert pipeline_names(store) == ["third"]
    assert store.error == ""


def test_file_is_not_looked_at_again_within_the_check_interval(config_file):
    store = PipelinesStore(config_file, check_interval=3600)
    assert pipeline_names(store) == ["first"]
    write(config_file, PIPELINE.format(name="second"))
    assert pipeline_names(store) == ["first"]


def test_invalid_file_with_no_earlier_valid_one_raises(tmp_path):
    path = tmp_path / "pipelines.yaml"
    write(path, "repositories: {}\n")
    with pytest.raises(PipelinesError, match="lists no repository"):
        PipelinesStore(path, check_interval=0).current()


def test_deleted_file_keeps_the_last_valid_configuration(config_file):
    store = PipelinesStore(config_file, check_interval=0)
    assert pipeline_names(store) == ["first"]
    config_file.unlink()
    assert pipeline_names(store) == ["first"]
    assert "cannot be read" in store.error


def test_process_store_follows_the_pipelines_file_setting(settings, config_file):
    settings.PIPELINES_FILE = config_file
    assert pipelines_store().path == config_file
    assert pipelines_store() is pipelines_store()
