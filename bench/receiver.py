"""Load benchmark of the webhook receiver: throughput, latency and durability of deliveries.

What it measures: signed GitHub `push` deliveries (the ~7 KB tests/fixtures/github/
push__branch.json body, each with its own X-GitHub-Delivery id) are sent to
`POST /hooks/github/` at several concurrency levels (default 1, 8 and 32 clients, each on
its own keep-alive HTTP/1.1 connection). For every level it prints the deliveries answered
202 per second, the p50/p95/p99 latency and the errors (any answer other than 202, or a
broken connection). At the end it counts the stored Delivery rows of this run and compares
them with the deliveries that were answered 202: every acknowledged delivery must be
committed.

Targets, on a 2-core machine with SQLite (client and server sharing those cores):
  * p99 latency under 50 ms at concurrency 8;
  * at least 500 deliveries per second at concurrency 32;
  * no errors, and every delivery answered 202 committed.

By default it starts its own receiver: a temporary DATA_DIR with a SQLite database (or the
database named by DATABASE_URL when that is set), random secrets, a free port on
127.0.0.1, `manage.py migrate`, then gunicorn with deploy/gunicorn.conf.py (WEB_WORKERS
and WEB_THREADS apply). Its output goes to a log file whose path is printed. With
`--url URL --secret S` it targets a receiver already running on a loopback address and
counts committed deliveries through the database of the current environment's settings
(committed is -1 when that database cannot be read).

Run it from the project folder:

    .venv/bin/python bench/receiver.py [--requests N] [--concurrency 1,8,32]
    .venv/bin/python bench/receiver.py --url http://127.0.0.1:8000/hooks/github/ --secret S

The last line of output is one JSON object (rps_c1, rps_c8, rps_c32, p99_ms_c8, errors,
committed, ...). The exit status is 1 when there were errors or uncommitted deliveries.
"""

import argparse
import asyncio
import contextlib
import ipaddress
import json
import math
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from runner.config.github import sign

ROOT = Path(__file__).resolve().parent.parent
PAYLOAD_FILE = ROOT / "tests" / "fixtures" / "github" / "push__branch.json"
GUNICORN_CONFIG = ROOT / "deploy" / "gunicorn.conf.py"
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 20.0
HEAD_END = b"\r\n\r\n"


@dataclass(frozen=True)
class Target:
    """Where deliveries go and what signs them."""

    host: str
    port: int
    path: str
    secret: str


@dataclass
class LevelResult:
    concurrency: int
    requests: int = 0
    accepted: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0

    def percentile_ms(self, fraction: float) -> float:
        """Nearest-rank percentile of the measured latencies, in milliseconds."""
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        rank = max(math.ceil(fraction * len(ordered)), 1)
        return ordered[rank - 1] * 1000


class ProtocolError(Exception):
    """An answer that is not a well-formed HTTP/1.1 response."""


# --- the receiver under test -------------------------------------------------------------


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
            raise RuntimeError(f"gunicorn exited with {server.returncode} while starting")
        with contextlib.suppress(OSError), socket.create_connection((target.host, target.port), 1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not listen on port {target.port} within 30 s")


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


# --- the client --------------------------------------------------------------------------


def build_requests(target: Target, body: bytes, delivery_ids: list[str]) -> list[bytes]:
    """Complete request bytes, one per delivery id, signed and ready to write."""
    signature = sign(target.secret, body)
    host = target.host if ":" not in target.host else f"[{target.host}]"
    return [
        (
            f"POST {target.path} HTTP/1.1\r\n"
            f"Host: {host}:{target.port}\r\n"
            "User-Agent: GitHub-Hookshot/bench\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            "X-GitHub-Event: push\r\n"
            f"X-GitHub-Delivery: {delivery_id}\r\n"
            f"X-Hub-Signature-256: {signature}\r\n"
            "\r\n"
        ).encode()
        + body
        for delivery_id in delivery_ids
    ]


class Connection:
    """One keep-alive HTTP/1.1 connection, reopened when the server closes it."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.target.host, self.target.port)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def send(self, request: bytes) -> int:
        """The status code of the answer to `request`; raises on a broken connection."""
        if self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        self.writer.write(request)
        await self.writer.drain()
        status, headers = parse_head(await self.reader.readuntil(HEAD_END))
        await read_body(self.reader, headers)
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    version, _, rest = status_line.partition(" ")
    if not version.startswith("HTTP/1.") or not rest[:3].isdigit():
        raise ProtocolError(f"bad status line {status_line!r}")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    return int(rest[:3]), headers


async def read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return await read_chunked(reader)
    if "content-length" not in headers:
        raise ProtocolError("answer has neither Content-Length nor chunked encoding")
    return await reader.readexactly(int(headers["content-length"]))


async def read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks = []
    while size := int((await reader.readline()).split(b";")[0], 16):
        chunks.append(await reader.readexactly(size))
        await reader.readline()
    await reader.readuntil(b"\r\n")  # the empty line after the last chunk (no trailers)
    return b"".join(chunks)


async def client(
    connection: Connection, requests: Iterator[bytes], result: LevelResult | None
) -> int:
    """Send requests from the shared iterator until it is empty; the 202s it got."""
    accepted = 0
    for request in requests:
        started = time.perf_counter()
        try:
            status = await connection.send(request)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ProtocolError):
            connection.close()
            status = 0
        elapsed = time.perf_counter() - started
        accepted += status == 202
        if result is not None:
            result.requests += 1
            result.latencies.append(elapsed)
            result.errors += status != 202
    return accepted


async def run_level(
    target: Target, concurrency: int, warmup: list[bytes], measured: list[bytes]
) -> tuple[LevelResult, int]:
    """The measured result of one level, and the 202s of warm-up and measured requests."""
    connections = [Connection(target) for _ in range(concurrency)]
    await asyncio.gather(*(connection.open() for connection in connections))
    try:
        warm = iter(warmup)
        warm_accepted = await asyncio.gather(*(client(c, warm, None) for c in connections))
        result = LevelResult(concurrency)
        pending = iter(measured)
        started = time.perf_counter()
        accepted = await asyncio.gather(*(client(c, pending, result) for c in connections))
        result.seconds = time.perf_counter() - started
        result.accepted = sum(accepted)
    finally:
        for connection in connections:
            connection.close()
    return result, result.accepted + sum(warm_accepted)


# --- results -----------------------------------------------------------------------------


def count_committed(prefix: str) -> tuple[int, int]:
    """Stored deliveries whose id starts with `prefix`, and their runs; -1 if unreadable."""
    try:
        import django

        django.setup()
        from runner.models import Delivery, Run

        deliveries = Delivery.objects.filter(delivery_id__startswith=prefix).count()
        runs = Run.objects.filter(delivery__delivery_id__startswith=prefix).count()
        return deliveries, runs
    except Exception as error:
        print(f"cannot count committed deliveries: {type(error).__name__}: {error}")
        return -1, -1


def describe(result: LevelResult) -> str:
    return (
        f"concurrency {result.concurrency:>3}: {result.requests} requests in "
        f"{result.seconds:.2f} s = {result.rps:.1f}/s, latency p50 "
        f"{result.percentile_ms(0.50):.1f} ms p95 {result.percentile_ms(0.95):.1f} ms "
        f"p99 {result.percentile_ms(0.99):.1f} ms, errors {result.errors}"
    )


def summary(
    results: list[LevelResult], sent: int, committed: int, runs: int
) -> dict[str, float | int]:
    numbers: dict[str, float | int] = {"runs_per_delivery": runs}
    for result in results:
        level = result.concurrency
        numbers[f"rps_c{level}"] = round(result.rps, 1)
        for name, fraction in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99)):
            numbers[f"{name}_ms_c{level}"] = round(result.percentile_ms(fraction), 1)
    numbers["errors"] = sum(result.errors for result in results)
    numbers["sent"] = sent
    numbers["committed"] = committed
    return numbers


async def run_levels(
    target: Target, prefix: str, levels: list[int], requests: int, warmup: int
) -> tuple[list[LevelResult], int]:
    body = PAYLOAD_FILE.read_bytes()
    results, sent = [], 0
    for level in levels:
        warm = build_requests(target, body, [f"{prefix}c{level}-w{i}" for i in range(warmup)])
        measured = build_requests(target, body, [f"{prefix}c{level}-{i}" for i in range(requests)])
        result, accepted = await run_level(target, level, warm, measured)
        print(describe(result), flush=True)
        results.append(result)
        sent += accepted
    return results, sent


def bench(target: Target, levels: list[int], requests: int, warmup: int) -> dict:
    prefix = f"bench-{time.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(3)}-"
    print(f"target http://{target.host}:{target.port}{target.path}, delivery ids {prefix}*")
    results, sent = asyncio.run(run_levels(target, prefix, levels, requests, warmup))
    committed, runs = count_committed(prefix)
    print(f"committed {committed} of the {sent} deliveries answered 202", flush=True)
    runs_per_delivery = round(runs / committed, 2) if committed > 0 else 0
    print(f"with {runs} queued runs, {runs_per_delivery} per delivery", flush=True)
    return summary(results, sent, committed, runs_per_delivery)


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="measured per level")
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured, per level")
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated levels")
    parser.add_argument("--url", help="a running receiver (loopback only) instead of our own")
    parser.add_argument("--secret", default=os.environ.get("WEBHOOK_SECRET"))
    parser.add_argument(
        "--runs", type=int, default=0, help="pipelines each push starts (own server only)"
    )
    arguments = parser.parse_args()
    arguments.levels = [int(level) for level in arguments.concurrency.split(",")]
    if arguments.url and not arguments.secret:
        parser.error("--url needs --secret (or WEBHOOK_SECRET in the environment)")
    return arguments


def main() -> int:
    arguments = parse_arguments()
    run = (arguments.levels, arguments.requests, arguments.warmup)
    if arguments.url:
        numbers = bench(given_server(arguments.url, arguments.secret), *run)
    else:
        descriptor, name = tempfile.mkstemp(prefix="hookrunner-bench-server-", suffix=".log")
        os.close(descriptor)
        log = Path(name)
        print(f"server output: {log}", flush=True)
        with own_server(log, arguments.runs) as target:
            numbers = bench(target, *run)
        print(f"server log: {server_log_summary(log)}")
    print(json.dumps(numbers))
    return int(bool(numbers["errors"]) or numbers["committed"] != numbers["sent"])


if __name__ == "__main__":
    sys.exit(main())
