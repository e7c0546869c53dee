"""The Makefile's two commands: what each installs (read from `make -n`, which prints
the commands it would run without running them)."""

import subprocess
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]


def planned_commands(target: str, tmp_path: Path, **variables: object) -> str:
    """What `make TARGET` would run, with a .venv that does not exist yet."""
    assigned = [f"{name}={value}" for name, value in variables.items()]
    result = subprocess.run(
        ["make", "-n", target, f"VENV={tmp_path / '.venv'}", *assigned],
        cwd=BASE_DIR, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return result.stdout


def planned_installs(target: str, tmp_path: Path) -> list[str]:
    """The pip commands `make TARGET` would run into a .venv that does not exist yet."""
    planned = planned_commands(target, tmp_path)
    return [line for line in planned.splitlines() if "pip install" in line]


def test_make_run_installs_what_hookrunner_runs_with_and_no_test_tools(tmp_path):
    (install,) = planned_installs("run", tmp_path)
    assert install.endswith("-c constraints.txt -e .")


def test_make_test_adds_the_test_and_lint_tools(tmp_path):
    runtime, dev = planned_installs("test", tmp_path)
    assert runtime.endswith("-e .")
    assert dev.endswith("-e '.[dev]'")


def test_make_run_and_make_test_install_bubblewrap_when_it_is_missing(tmp_path):
    for target in ("run", "test"):
        planned = planned_commands(target, tmp_path, BWRAP=tmp_path / "no-bwrap")
        assert "apt-get install -y --quiet --no-install-recommends bubblewrap" in planned
