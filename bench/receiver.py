"""Load benchmark of the webhook receiver: throughput, latency and durability of deliveries.

What it measures: signed GitHub `push` deliveries (the ~7 KB tests/fixtures/github/
push__branch.json body, each with its own X-GitHub-Delivery id) are sent to
`POST /hooks/github/` at several concurrency levels (default 1, 8 and 32 clients, each on
its own keep-alive HTTP/1.1 connection). For every level it prints the deliveries answered
202 per second, the p50/p95/p99 latency, the errors (any answer other than 202, or a
broken connection) and how many of its connections each server process held: a keep-alive
connection stays with the process that accepted it, so a level where one process took
them all measures that one process (spread_cN, e.g. "22/10"). At the end it counts the
stored Delivery rows of this run and compares them with the deliveries that were answered
202: every acknowledged delivery must be committed.

Targets, on a 2-core machine with SQLite (client and server sharing those cores):
  * p99 latency at most 25 ms at concurrency 8 (p99_ms_c8);
  * at least 2,000 deliveries per second at concurrency 32 (rps_c32);
  * no errors, and every delivery answered 202 committed.

In the same run, for comparison, adnanh/webhook (Debian's `webhook` package, bench/peer.py)
receives the same signed deliveries at concurrency 32 on a loopback port, with a hook
that checks X-Hub-Signature-256 and runs `true`: peer_rps_c32, and ratio_c32 =
rps_c32 / peer_rps_c32. Without `webhook` installed both are null and the script says how
to install it; `--no-peer` skips it.

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
committed, peer_rps_c32, ratio_c32, ...). The exit status is 1 when there were errors or
uncommitted deliveries.
"""

import argparse
import asyncio
import json
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.peer import INSTALL_HINT, peer_binary, peer_server  # noqa: E402
from bench.receiver_client import LevelResult, build_requests, run_level  # noqa: E402
from bench.served import (  # noqa: E402
    PAYLOAD_FILE,
    Target,
    given_server,
    own_server,
    server_log_summary,
)

# The level adnanh/webhook is measured at, and compared with hookrunner's.
PEER_CONCURRENCY = 32
NO_PEER = {"peer_rps_c32": None, "ratio_c32": None}


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
        f"p99 {result.percentile_ms(0.99):.1f} ms, errors {result.errors}, "
        f"connections per server process {'/'.join(map(str, result.spread)) or '?'}"
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
        numbers[f"spread_c{level}"] = "/".join(map(str, result.spread))
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


def peer_figures(numbers: dict, log: Path, requests: int, warmup: int) -> dict:
    """peer_rps_c32 and ratio_c32: adnanh/webhook at concurrency 32, as hookrunner was
    measured (null when it is not installed)."""
    binary = peer_binary()
    if binary is None:
        print(f"adnanh/webhook is not installed, no peer figures: {INSTALL_HINT}")
        return NO_PEER
    with peer_server(binary, secrets.token_urlsafe(32), log) as target:
        print(f"peer: adnanh/webhook at http://{target.host}:{target.port}{target.path}")
        results, _ = asyncio.run(run_levels(target, "peer-", [PEER_CONCURRENCY], requests, warmup))
    peer_rps = round(results[0].rps, 1)
    own_rps = numbers.get(f"rps_c{PEER_CONCURRENCY}")
    ratio = round(own_rps / peer_rps, 2) if own_rps is not None and peer_rps else None
    return {"peer_rps_c32": peer_rps, "ratio_c32": ratio}


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
    parser.add_argument("--no-peer", action="store_true", help="do not measure adnanh/webhook")
    arguments = parser.parse_args()
    arguments.levels = [int(level) for level in arguments.concurrency.split(",")]
    if arguments.url and not arguments.secret:
        parser.error("--url needs --secret (or WEBHOOK_SECRET in the environment)")
    return arguments


def main() -> int:
    arguments = parse_arguments()
    run = (arguments.levels, arguments.requests, arguments.warmup)
    descriptor, name = tempfile.mkstemp(prefix="hookrunner-bench-server-", suffix=".log")
    os.close(descriptor)
    log = Path(name)
    print(f"servers' output: {log}", flush=True)
    if arguments.url:
        numbers = bench(given_server(arguments.url, arguments.secret), *run)
    else:
        with own_server(log, arguments.runs) as target:
            numbers = bench(target, *run)
        print(f"server log: {server_log_summary(log)}")
    if arguments.no_peer:
        numbers |= NO_PEER
    else:
        numbers |= peer_figures(numbers, log, arguments.requests, arguments.warmup)
    print(json.dumps(numbers))
    return int(bool(numbers["errors"]) or numbers["committed"] != numbers["sent"])


if __name__ == "__main__":
    sys.exit(main())
