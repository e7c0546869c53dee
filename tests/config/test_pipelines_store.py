"""The configuration in force follows the file: valid edits are picked up, broken ones are
not, and a change is loaded in the background: no caller waits for a reload but the first."""

import logging
import os
import threading

import pytest
from django.urls import reverse

from runner.config import store as store_module
from runner.config.pipelines_file import PipelinesError, load_pipelines
from runner.config.store import PipelinesStore, current_pipelines, pipelines_store

PIPELINE = (
    "repositories:\n  acme/webapp:\n    pipelines:\n"
    "      {name}: {{on: {{push: null}}, steps: [{{name: s, run: echo}}]}}\n"
)
DEEP = "repositories: " + "[" * 10_000 + "]" * 10_000 + "\n"


def write(path, text: str) -> None:
    path.write_text(text)
    # Make each write a visibly new version even within one clock tick.
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))


def pipeline_names(store: PipelinesStore) -> list[str]:
    return [p.name for p in store.current().repositories[0].pipelines]


def reloaded(store: PipelinesStore) -> PipelinesStore:
    """The store once the change a call now sees is loaded, as a later request finds it."""
    store.current()
    assert store.wait_for_reload(timeout=60)
    return store


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "pipelines.yaml"
    write(path, PIPELINE.format(name="first"))
    return path


class HeldLoads:
    """Stands in for load_pipelines: each load after the first waits until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.threads: list[threading.Thread] = []
        self.started = threading.Semaphore(0)

    def __call__(self, path, environ):
        self.threads.append(threading.current_thread())
        if len(self.threads) > 1:
            self.started.release()
            assert self.release.wait(timeout=60)
        return load_pipelines(path, environ)


@pytest.fixture
def held_loads(monkeypatch):
    held = HeldLoads()
    monkeypatch.setattr(store_module, "load_pipelines", held)
    yield held
    held.release.set()


def test_valid_edit_is_picked_up_without_restart(config_file):
    store = PipelinesStore(config_file, check_interval=0)
    assert pipeline_names(store) == ["first"]
    write(config_file, PIPELINE.format(name="second"))
    assert pipeline_names(reloaded(store)) == ["second"]


def test_broken_edit_keeps_the_last_valid_configuration_and_exposes_the_error(config_file, caplog):
    store = PipelinesStore(config_file, check_interval=0)
    assert pipeline_names(store) == ["first"]
    write(config_file, PIPELINE.format(name="second").replace("steps:", "stepz:"))
    with caplog.at_level(logging.ERROR, logger="runner.config.store"):
        assert pipeline_names(reloaded(store)) == ["first"]
    assert "unknown key 'stepz'" in store.error
    assert "keeping the last valid one" in caplog.text
    write(config_file, PIPELINE.format(name="third"))
    assert pipeline_names(reloaded(store)) == ["third"]
    assert store.error == ""


def test_file_is_not_looked_at_again_within_the_check_interval(config_file):
    store = PipelinesStore(config_file, check_interval=3600)
    assert pipeline_names(store) == ["first"]
    write(config_file, PIPELINE.format(name="second"))
    assert pipeline_names(reloaded(store)) == ["first"]


def test_invalid_file_with_no_earlier_valid_one_raises(tmp_path):
    path = tmp_path / "pipelines.yaml"
    write(path, "repositories: {}\n")
    with pytest.raises(PipelinesError, match="lists no repository"):
        PipelinesStore(path, check_interval=0).current()


def test_deleted_file_keeps_the_last_valid_configuration(config_file):
    store = PipelinesStore(config_file, check_interval=0)
    assert pipeline_names(store) == ["first"]
    config_file.unlink()
    assert pipeline_names(reloaded(store)) == ["first"]
    assert "cannot be read" in store.error


def test_process_store_follows_the_pipelines_file_setting(settings, config_file):
    settings.PIPELINES_FILE = config_file
    assert pipelines_store().path == config_file
    assert pipelines_store() is pipelines_store()


def test_a_caller_never_waits_for_a_reload_and_gets_the_last_valid_config(config_file, held_loads):
    store = PipelinesStore(config_file, check_interval=0)
    assert pipeline_names(store) == ["first"]
    write(config_file, PIPELINE.format(name="second"))
    assert pipeline_names(store) == ["first"]  # returns while the reload is held
    assert held_loads.started.acquire(timeout=60)
    assert not store.wait_for_reload(timeout=0)
    assert pipeline_names(store) == ["first"]
    held_loads.release.set()
    assert store.wait_for_reload(timeout=60)
    assert pipeline_names(store) == ["second"]
    first, reload = held_loads.threads
    assert first is threading.current_thread()
    assert reload is not threading.current_thread()


def test_one_reload_at_a_time_and_the_newest_version_wins(config_file, held_loads):
    store = PipelinesStore(config_file, check_interval=0)
    pipeline_names(store)
    write(config_file, PIPELINE.format(name="second"))
    store.current()
    assert held_loads.started.acquire(timeout=60)
    write(config_file, PIPELINE.format(name="third"))
    for _ in range(5):
        assert pipeline_names(store) == ["first"]
    assert len(held_loads.threads) == 2  # the first load, and the one reload under way
    held_loads.release.set()
    assert store.wait_for_reload(timeout=60)
    assert pipeline_names(reloaded(store)) == ["third"]
    assert len(held_loads.threads) == 3


def test_the_first_load_happens_in_the_callers_thread(config_file, held_loads):
    assert pipeline_names(PipelinesStore(config_file, check_interval=0)) == ["first"]
    assert held_loads.threads == [threading.current_thread()]


def test_newest_looks_at_once_and_waits_for_the_load(config_file):
    store = PipelinesStore(config_file, check_interval=3600)
    assert pipeline_names(store) == ["first"]
    write(config_file, PIPELINE.format(name="second"))
    assert [p.name for p in store.newest().repositories[0].pipelines] == ["second"]
    write(config_file, PIPELINE.format(name="third").replace("steps:", "stepz:"))
    assert [p.name for p in store.newest().repositories[0].pipelines] == ["second"]
    assert "unknown key 'stepz'" in store.error


def test_current_pipelines_sees_the_newest_file(settings, config_file):
    settings.PIPELINES_FILE = config_file
    assert [p.name for p in current_pipelines().repositories[0].pipelines] == ["first"]
    write(config_file, PIPELINE.format(name="second"))
    assert [p.name for p in current_pipelines().repositories[0].pipelines] == ["second"]


def test_deep_nesting_keeps_the_last_valid_configuration_with_the_line(config_file, caplog):
    store = PipelinesStore(config_file, check_interval=0)
    assert pipeline_names(store) == ["first"]
    write(config_file, DEEP)
    with caplog.at_level(logging.ERROR, logger="runner.config.store"):
        assert pipeline_names(reloaded(store)) == ["first"]
    assert store.error == (
        f"{config_file}:1: file: nests deeper than 100 levels, the most a pipelines file may have"
    )
    assert "keeping the last valid one" in caplog.text
    assert pipeline_names(store) == ["first"]
    assert store.error  # still current: the broken version is not taken as loaded


def test_a_merge_key_bomb_keeps_the_last_valid_configuration(config_file):
    store = PipelinesStore(config_file, check_interval=0)
    assert pipeline_names(store) == ["first"]
    lines = ["a0: &a0 {" + ", ".join(f"k{i}: v" for i in range(10)) + "}"]
    lines += [f"a{n}: &a{n} {{<<: [{', '.join([f'*a{n - 1}'] * 150)}]}}" for n in range(1, 7)]
    write(config_file, "\n".join([*lines, "<<: *a6"]) + "\n")
    assert pipeline_names(reloaded(store)) == ["first"]
    assert store.error.startswith(f"{config_file}:3: file: alias *a1 takes the file past")


def test_a_file_over_the_size_limit_keeps_the_last_valid_configuration(config_file):
    store = PipelinesStore(config_file, check_interval=0)
    assert pipeline_names(store) == ["first"]
    write(config_file, PIPELINE.format(name="second") + "#" * 2**20 + "\n")
    assert pipeline_names(reloaded(store)) == ["first"]
    assert "a pipelines file may have at most 1,048,576 (1 MiB)" in store.error


def test_an_unexpected_error_while_loading_is_a_problem_too(config_file, monkeypatch, caplog):
    store = PipelinesStore(config_file, check_interval=0)
    assert pipeline_names(store) == ["first"]

    def broken(path, environ):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(store_module, "load_pipelines", broken)
    write(config_file, PIPELINE.format(name="second"))
    with caplog.at_level(logging.ERROR, logger="runner.config.store"):
        assert pipeline_names(reloaded(store)) == ["first"]
    assert store.error == (
        f"{config_file}:0: file: could not be loaded: "
        "RecursionError: maximum recursion depth exceeded"
    )
    assert "Traceback" in caplog.text


def test_an_unexpected_error_at_the_first_load_raises_the_problem(config_file, monkeypatch):
    def broken(path, environ):
        raise MemoryError

    monkeypatch.setattr(store_module, "load_pipelines", broken)
    with pytest.raises(PipelinesError, match="could not be loaded: MemoryError"):
        PipelinesStore(config_file, check_interval=0).current()


@pytest.mark.django_db
def test_healthz_is_not_ok_about_a_deeply_nested_file(client, settings, config_file):
    settings.PIPELINES_FILE = config_file
    assert client.get(reverse("healthz")).json()["pipelines"] == "ok"
    write(config_file, DEEP)
    client.get(reverse("healthz"))
    assert pipelines_store().wait_for_reload(timeout=60)
    body = client.get(reverse("healthz")).json()
    assert body["pipelines"] == (
        f"invalid: {config_file}:1: file: nests deeper than 100 levels, "
        "the most a pipelines file may have"
    )
    assert "pipelines.yaml is invalid" in body["problems"]


def test_the_problems_kept_are_capped_with_a_count_of_the_rest(config_file):
    store = PipelinesStore(config_file, check_interval=0)
    assert pipeline_names(store) == ["first"]
    keys = "".join(f"    unknown{index}: 1\n" for index in range(250))
    write(
        config_file,
        PIPELINE.format(name="second").replace("    pipelines:", keys + "    pipelines:"),
    )
    assert pipeline_names(reloaded(store)) == ["first"]
    shown = store.error.splitlines()
    assert len(shown) == store_module.KEPT_PROBLEMS + 1
    assert shown[0].startswith(f"{config_file}:3: repositories.acme/webapp: unknown key 'unknown0'")
    assert shown[-1] == (
        f"{config_file}:0: file: and {250 - store_module.KEPT_PROBLEMS} more problems "
        "(manage.py check_pipelines lists them all)"
    )
