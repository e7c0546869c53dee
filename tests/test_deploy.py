"""The production assets: install script, systemd units, environment example."""

import os
import shutil
import subprocess
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def test_install_script_stages_units_with_real_paths_and_a_private_env_file(tmp_path):
    env = {**os.environ, "DESTDIR": str(tmp_path), "APP_DIR": "/srv/hookrunner"}
    subprocess.run([BASE_DIR / "deploy" / "install.sh"], env=env, check=True, capture_output=True)
    unit = (tmp_path / "etc/systemd/system/hookrunner-web.service").read_text()
    assert "ExecStart=/srv/hookrunner/.venv/bin/python -m gunicorn" in unit
    assert "EnvironmentFile=/etc/hookrunner/hookrunner.env" in unit
    assert "@" not in unit.replace("@.service", "")
    worker = (tmp_path / "etc/systemd/system/hookrunner-worker.service").read_text()
    assert "ExecStart=/srv/hookrunner/.venv/bin/python manage.py worker --queues" in worker
    timer = (tmp_path / "etc/systemd/system/hookrunner-purge.timer").read_text()
    assert "OnCalendar=daily" in timer
    purge = (tmp_path / "etc/systemd/system/hookrunner-purge.service").read_text()
    assert "ExecStart=/srv/hookrunner/.venv/bin/python manage.py purge" in purge
    env_file = tmp_path / "etc/hookrunner/hookrunner.env"
    assert env_file.stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "etc/hookrunner/pipelines.yaml").exists()
    assert (tmp_path / "srv/hookrunner/manage.py").exists()
    assert not (tmp_path / "srv/hookrunner/.venv").exists()


def test_install_script_keeps_an_existing_env_file(tmp_path):
    env_file = tmp_path / "etc/hookrunner/hookrunner.env"
    env_file.parent.mkdir(parents=True)
    env_file.write_text("WEBHOOK_SECRET=kept\n")
    env = {**os.environ, "DESTDIR": str(tmp_path)}
    subprocess.run([BASE_DIR / "deploy" / "install.sh"], env=env, check=True, capture_output=True)
    assert env_file.read_text() == "WEBHOOK_SECRET=kept\n"


def test_env_example_names_every_required_setting():
    example = (BASE_DIR / "deploy" / "hookrunner.env.example").read_text()
    for name in ("DJANGO_SECRET_KEY=", "WEBHOOK_SECRET=", "ALLOWED_HOSTS=", "DATA_DIR="):
        assert name in example


def test_make_says_what_to_install_when_no_python_3_12_is_found(tmp_path):
    for name in ("Makefile", "pyproject.toml", "constraints.txt"):
        shutil.copy(BASE_DIR / name, tmp_path / name)
    result = subprocess.run(
        ["make", "PYTHON=", "test"], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "hookrunner needs Python 3.12 or newer, and none was found." in result.stdout
    assert "make PYTHON=/path/to/python3.12" in result.stdout
    assert not (tmp_path / ".venv").exists()
