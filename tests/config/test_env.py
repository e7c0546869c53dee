"""Settings read from the environment: an empty value is no value, and a malformed one
stops start-up with one line naming its variable. Start-up itself is tried for real, as
`manage.py check` and gunicorn with deploy/gunicorn.conf.py, each in a subprocess."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from runner.config.env import env_bool, env_float, env_int, env_list, env_secret, env_str
from runner.management.commands import selftest
from tests.conftest import TEST_PIPELINES

BASE_DIR = Path(__file__).resolve().parent.parent.parent
NAME = "HOOKRUNNER_TEST_SETTING"


@pytest.mark.parametrize("value", ["", "  "], ids=["empty", "blank"])
@pytest.mark.parametrize(
    ("read", "default"),
    [(env_str, "x"), (env_int, 3), (env_float, 1.5), (env_bool, True), (env_list, ["a"])],
    ids=["str", "int", "float", "bool", "list"],
)
def test_an_empty_value_is_unset_so_the_default_applies(monkeypatch, read, default, value):
    monkeypatch.setenv(NAME, value)
    assert read(NAME, default) == default


def test_an_empty_secret_is_unset_so_its_file_is_read(monkeypatch, tmp_path):
    (tmp_path / "secret").write_text("from the file\n")
    monkeypatch.setenv(NAME, "")
    monkeypatch.setenv(f"{NAME}_FILE", "")
    assert env_secret(NAME, tmp_path / "secret") == "from the file"


@pytest.mark.parametrize(
    ("read", "value", "message"),
    [
        (env_int, "ten", f"{NAME}='ten' is not an integer"),
        (env_float, "fast", f"{NAME}='fast' is not a number"),
        (env_bool, "maybe", f"{NAME}='maybe' is not a boolean (use 1/0, true/false)"),
    ],
    ids=["int", "float", "bool"],
)
def test_a_malformed_value_is_one_line_naming_its_variable(monkeypatch, read, value, message):
    monkeypatch.setenv(NAME, value)
    with pytest.raises(ImproperlyConfigured) as error:
        read(NAME, None)
    assert str(error.value) == message


def manage_check(tmp_path: Path, **settings: str) -> subprocess.CompletedProcess:
    """`manage.py check` with the tests' environment and `settings`, its data in
    `tmp_path`."""
    env = {**os.environ, "DATA_DIR": str(tmp_path), "PIPELINES_FILE": str(TEST_PIPELINES)}
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=BASE_DIR, env={**env, **settings}, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip


CHECKED = "System check identified no issues (0 silenced).\n"


def test_an_empty_database_url_is_the_default_database(tmp_path):
    checked = manage_check(tmp_path, DATABASE_URL="")
    assert (checked.returncode, checked.stdout, checked.stderr) == (0, CHECKED, "")


def settings_read() -> set[str]:
    """Every variable runner/settings.py reads, with the _FILE of each secret."""
    text = (BASE_DIR / "runner" / "settings.py").read_text()
    names = set(re.findall(r"\benv_\w+\(\s*\"([A-Z][A-Z0-9_]*)\"", text))
    return names | {f"{name}_FILE" for name in re.findall(r"\benv_secret\(\s*\"(\w+)\"", text)}


def test_every_setting_empty_at_once_starts_as_if_none_were_set(tmp_path):
    # Kept: DATA_DIR, as its default is the checkout's var/; PIPELINES_FILE, as the
    # checkout has none. The secrets' defaults are these files in DATA_DIR.
    (tmp_path / "django-secret-key").write_text("key from the file")
    (tmp_path / "webhook-secret").write_text("secret from the file")
    emptied = {name: "" for name in settings_read() - {"DATA_DIR", "PIPELINES_FILE"}}
    assert {"DATABASE_URL", "LOG_LEVEL", "WEBHOOK_SECRET", "DEBUG"} <= set(emptied)
    checked = manage_check(tmp_path, **emptied)
    assert (checked.returncode, checked.stdout, checked.stderr) == (0, CHECKED, "")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DEBUG", "maybe", "DEBUG='maybe' is not a boolean (use 1/0, true/false)"),
        ("STEP_OUTPUT_LIMIT", "10MB", "STEP_OUTPUT_LIMIT='10MB' is not an integer"),
        ("LOG_LEVEL", "loud", "LOG_LEVEL='loud' is not a log level (DEBUG, INFO, WARNING, ERROR)"),
        (
            "DATABASE_URL",
            "postgres://hookrunner:pass#word@db:5432/hookrunner",
            "DATABASE_URL is not a database URL: use postgres://USER:PASSWORD@HOST:PORT/NAME "
            "(with the password's special characters %-quoted) or sqlite:////PATH",
        ),
        (
            "DATABASE_URL",
            "postgress://hookrunner:secret@db/hookrunner",
            "DATABASE_URL is not a database URL: use postgres://USER:PASSWORD@HOST:PORT/NAME "
            "(with the password's special characters %-quoted) or sqlite:////PATH",
        ),
    ],
    ids=["boolean", "integer", "log level", "database URL", "database scheme"],
)
def test_a_malformed_setting_stops_start_up_naming_it(tmp_path, name, value, message):
    checked = manage_check(tmp_path, **{name: value})
    assert (checked.returncode, checked.stderr) == (1, f"hookrunner: {message}\n")
    # A database URL's password is never shown.
    assert "word@" not in checked.stderr and "secret" not in checked.stderr


def test_lower_case_log_levels_are_log_levels(tmp_path):
    checked = manage_check(tmp_path, LOG_LEVEL="warning")
    assert (checked.returncode, checked.stdout, checked.stderr) == (0, CHECKED, "")


def gunicorn_config(**settings: str) -> subprocess.CompletedProcess:
    """gunicorn's configuration from deploy/gunicorn.conf.py with `settings`, as it prints
    it (--print-config, which also loads the application, and exits)."""
    return subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "--print-config"],
        cwd=BASE_DIR, env={**os.environ, **settings}, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip


def printed(config: str, name: str) -> str:
    (value,) = re.findall(rf"^{name} +=\s(.*)$", config, re.MULTILINE)
    return value


def test_empty_gunicorn_settings_are_unset_so_it_listens_on_loopback_only():
    config = gunicorn_config(HOST="", PORT="", WEB_WORKERS="", WEB_THREADS="", ACCESS_LOG="")
    assert config.returncode == 0, config.stderr
    shown = {name: printed(config.stdout, name) for name in ("bind", "workers", "threads")}
    assert shown == {"bind": "['127.0.0.1:8000']", "workers": "2", "threads": "4"}
    assert printed(config.stdout, "accesslog") == "None"


def test_a_malformed_gunicorn_setting_stops_it_with_one_line_naming_it():
    config = gunicorn_config(WEB_WORKERS="many")
    assert (config.returncode, config.stderr) == (1, "WEB_WORKERS='many' is not an integer\n")


def test_selftests_default_url_takes_empty_host_and_port_for_unset(monkeypatch):
    monkeypatch.setenv("HOST", "")
    monkeypatch.setenv("PORT", "")
    parser = selftest.Command().create_parser("manage.py", "selftest")
    assert parser.get_default("url") == f"http://127.0.0.1:8000/{settings.WEBHOOK_PATH}"
