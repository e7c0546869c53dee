"""Benchmark of a newcomer's first command: `make run` in a fresh clone, cold.

The project (its last commit) is cloned into a temporary folder, which has no .venv, and
`make run` is started there as the README says, with only PORT set (a free one) and none
of hookrunner's settings in the environment. The figure is the time from starting it to
the first answer of GET /healthz, polled every 0.1 s; then the size of the .venv it made
(the bytes of its files, as `du -s --apparent-size` counts them). pip takes the packages
from its cache (~/.cache/pip), so run it twice: the first fills the cache.

Targets on a 2-core machine with a filled package cache: under 15 s, a .venv under 120 MB.
Run from the project folder:

    .venv/bin/python bench/first_hour.py

The last line is one JSON object: cold_start_s, venv_mb.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import met, output_log, print_load  # noqa: E402

START_TIMEOUT_SECONDS = 600
MB = 1_000_000
# hookrunner's settings a developer's shell may hold: a newcomer's has none of them.
SETTINGS_PREFIXES = ("DATABASE_URL", "DATA_DIR", "WEBHOOK_", "DJANGO_", "PIPELINES_", "HOST")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def newcomers_environment(port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(SETTINGS_PREFIXES)}
    # Not this project's .venv: the clone makes its own.
    env.pop("VIRTUAL_ENV", None)
    return {**env, "PORT": str(port)}


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # 503 is an answer too: the server is up
    except OSError:
        return False


def time_until_healthy(clone: Path, port: int, log: Path) -> float:
    """Seconds from starting `make run` in `clone` to /healthz answering; stops it then."""
    with log.open("ab") as output:
        started = time.monotonic()
        process = subprocess.Popen(
            ["make", "run"], cwd=clone, env=newcomers_environment(port),
            stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        while not answers(f"http://127.0.0.1:{port}/healthz"):
            if process.poll() is not None:
                raise SystemExit(f"make run exited with {process.returncode}; see {log}")
            if time.monotonic() - started > START_TIMEOUT_SECONDS:
                raise SystemExit(f"/healthz did not answer within {START_TIMEOUT_SECONDS} s")
            time.sleep(0.1)
        return time.monotonic() - started
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)


def apparent_size_mb(folder: Path) -> float:
    total = 0
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            total += path.stat().st_size
    return total / MB


def main() -> None:
    log = output_log("first-hour")
    print(f"make run's output: {log}", flush=True)
    print_load("before")
    with tempfile.TemporaryDirectory(prefix="hookrunner-bench-first-hour-") as folder:
        clone = Path(folder) / "hookrunner"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
        seconds = time_until_healthy(clone, free_port(), log)
        venv_mb = apparent_size_mb(clone / ".venv")
    print("make run in a fresh clone, cold (no .venv), to /healthz answering:")
    print(f"  {seconds:.1f} s ({met(seconds < 15)}: under 15 s with a filled package cache)")
    print(f"  .venv {venv_mb:.1f} MB ({met(venv_mb < 120)}: under 120 MB)")
    print(json.dumps({"cold_start_s": round(seconds, 1), "venv_mb": round(venv_mb, 1)}))


if __name__ == "__main__":
    main()
