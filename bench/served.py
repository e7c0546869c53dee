"""A hookrunner served for a bench: a temporary DATA_DIR (SQLite, or the database named by
DATABASE_URL), random secrets, a free port on 127.0.0.1, `manage.py migrate`, then
gunicorn with deploy/gunicorn.conf.py; or a receiver already running, named by URL.
Every bench that needs a receiver starts it from here."""

import contextlib
import ipaddress
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
PAYLOAD_FILE = ROOT / "tests" / "fixtures" / "github" / "push__branch.json"
GUNICORN_CONFIG = ROOT / "deploy" / "gunicorn.conf.py"
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 20.0


@dataclass(frozen=True)
class Target:
    """Where deliveries go and what signs them."""

    host: str
    port: int
    path: str
    secret: str


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_pipelines(data_dir: Path, runs: int) -> Path:
    """A pipelines file whose push to acme/webapp main starts `runs` pipelines.

    With none, one tags-only pipeline is still matched against each push, and said no to.
    """
    step = "steps: [{name: s, run: 'true'}]"
    pipelines = [f"      run{i}: {{on: {{push: {{branches: main}}}}, {step}}}" for i in range(runs)]
    pipelines = pipelines or [f"      tags: {{on: {{push: {{tags: 'v*'}}}}, {step}}}"]
    path = data_dir / "pipelines.yaml"
    path.write_text("repositories:\n  acme/webapp:\n    pipelines:\n" + "\n".join(pipelines) + "\n")
    return path


def configure_own_server(data_dir: Path, runs: int) -> Target:
    """Point this process's environment (inherited by the server) at a fresh setup."""
    port = free_loopback_port()
    secret = secrets.token_urlsafe(32)
    os.environ.update(
        {
            "DATA_DIR": str(data_dir),
            "DATABASE_URL": os.environ.get("DATABASE_URL")
            or f"sqlite:///{data_dir / 'hookrunner.sqlite3'}",
            "WEBHOOK_SECRET": secret,
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "DJANGO_SETTINGS_MODULE": "runner.settings",
            "PIPELINES_FILE": str(write_pipelines(data_dir, runs)),
        }
    )
    os.environ.pop("WEBHOOK_SECRET_FILE", None)
    os.environ.pop("DJANGO_SECRET_KEY_FILE", None)
    (data_dir / "static").mkdir(parents=True, exist_ok=True)
    path = "/" + os.environ.get("WEBHOOK_PATH", "hooks/github/").strip("/") + "/"
    return Target("127.0.0.1", port, path, secret)


def migrate(log: Path) -> None:
    with log.open("ab") as output:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input"],
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            check=True,
        )


def start_gunicorn(log: Path) -> subprocess.Popen:
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONFIG)],
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def wait_until_listening(server: subprocess.Popen, target: Target) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"{server.args[0]} exited with {server.returncode} while starting")
        with contextlib.suppress(OSError), socket.create_connection((target.host, target.port), 1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{server.args[0]} did not listen on port {target.port} within 30 s")


def stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


@contextlib.contextmanager
def own_server(log: Path, runs: int) -> Iterator[Target]:
    """A migrated receiver in a temporary data folder, stopped on the way out."""
    with tempfile.TemporaryDirectory(prefix="hookrunner-bench-") as data_dir:
        target = configure_own_server(Path(data_dir), runs)
        migrate(log)
        server = start_gunicorn(log)
        try:
            wait_until_listening(server, target)
            yield target
        finally:
            stop(server)


def given_server(url: str, secret: str) -> Target:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme != "http" or not is_loopback(host):
        raise SystemExit(f"--url must be http:// on a loopback address, not {url}")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "runner.settings")
    return Target(host, parts.port or 80, parts.path or "/", secret)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def server_log_summary(log: Path) -> str:
    lines = log.read_text(errors="replace").splitlines()
    flagged = [line for line in lines if any(word in line for word in ("ERROR", "WARNING"))]
    tracebacks = sum("Traceback" in line for line in lines)
    return f"{len(lines)} lines, {len(flagged)} WARNING/ERROR, {tracebacks} tracebacks"
