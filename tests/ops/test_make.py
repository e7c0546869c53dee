"""The Makefile's two commands: what each installs (read from `make -n`, which prints
the commands it would run without running them)."""

import subprocess
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]


def planned_installs(target: str, tmp_path: Path) -> list[str]:
    """The pip commands `make TARGET` would run into a .venv that does not exist yet."""
    result = subprocess.run(
        ["make", "-n", target, f"VENV={tmp_path / '.venv'}"],
        cwd=BASE_DIR, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return [line for line in result.stdout.splitlines() if "pip install" in line]


def test_make_run_installs_what_hookrunner_runs_with_and_no_test_tools(tmp_path):
    (install,) = planned_installs("run", tmp_path)
    assert install.endswith("-c constraints.txt -e .")


def test_make_test_adds_the_test_and_lint_tools(tmp_path):
    runtime, dev = planned_installs("test", tmp_path)
    assert runtime.endswith("-e .")
    assert dev.endswith("-e '.[dev]'")
