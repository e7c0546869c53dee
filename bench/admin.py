"""Benchmark of the runs in admin at scale: the run list and a run page with a 10 MiB log.

The data: a SQLite file with 100,000 runs and 1,000,000 log chunks, one of them a single
step's 10 MiB log (BIG_RUN_ID), built and cached by bench/admin_data.py (its docstring says
what it holds and where it is kept); `--rebuild` builds it again.

What is measured: in this process, through Django's test Client logged in as a superuser
(`force_login`: the session and user lookups of every admin request are included), the
wall time of a GET from the request to the complete response content, as Django's
handler and middleware produce it for gunicorn (no socket, no gunicorn):

  * the run list's first page, `/admin/runner/run/`: plain, filtered by status (failed),
    and searched by the first 7 characters of a sha; median and p95 of 20 requests each
    after 3 unmeasured ones;
  * the page of the run with the 10 MiB log: median and p95 of 10 requests after 3;
  * the number of queries of each page, counted over one more request
    (CaptureQueriesContext), and the response size of the big run's page.

Then, in Debian's Chromium driven by Playwright (tests/browser.py's binary and flags),
the big run's page served by gunicorn (deploy/gunicorn.conf.py) on 127.0.0.1 from the
same database, the session cookie of that superuser set: 5 loads after 1 unmeasured, each
in a fresh browser context (cold cache), timing from navigation start to the moment the
step's last line first intersects the viewport (an IntersectionObserver's entry time),
and counting the bytes received (transferSize of the document and every resource) once
the network is idle, before any click.

Targets on SQLite (2-core machine): each page in under 300 ms (median), and a number of
queries that does not grow with the rows shown; in Chromium, the last line in view
within 1000 ms (median) and at most 1,100,000 bytes received. Once every page is measured, each page
that missed its target (every page with `--profile`) is looked into: the functions with
the most time of their own over 3 requests (cProfile), then each query of one request
with the line that issued it (hookrunner's, else Django admin's) and its time when run
again alone, execute and fetch.

Run from the project folder:

    .venv/bin/python bench/admin.py [--rebuild] [--profile]

The last line is one JSON object: run_list_ms, run_list_queries, run_page_ms,
run_page_queries (the medians of the plain list and of the big run's page),
run_page_browser_ms (the median in Chromium) and run_page_bytes (the most received).
"""

import argparse
import cProfile
import json
import math
import os
import pstats
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.admin_data import SUPERUSER, prepare_database  # noqa: E402
from bench.admin_plan import BIG_RUN_ID, RUNS  # noqa: E402
from bench.common import met, print_load  # noqa: E402
from bench.served import (  # noqa: E402
    Target,
    configure_own_server,
    start_gunicorn,
    stop,
    wait_until_listening,
)
from tests.browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

TARGET_MS = 300.0
WARMUP = 3
LIST_REQUESTS, PAGE_REQUESTS = 20, 10
PROFILE_LINES, SQL_SHOWN = 8, 150
BROWSER_TARGET_MS, BYTES_TARGET = 1000.0, 1_100_000
BROWSER_LOADS = 5
# Run in the page from its first byte: the time (from navigation start) when the line
# with id WATCHED first intersects the viewport, its pre's scrolling included.
WATCH_LINE = """(() => {
  const seen = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      if (entry.isIntersecting && window.benchLineSeen === undefined) {
        window.benchLineSeen = entry.time;
      }
    }
  });
  const watching = new MutationObserver(() => {
    const line = document.getElementById(WATCHED);
    if (line) { seen.observe(line); watching.disconnect(); }
  });
  watching.observe(document, { childList: true, subtree: true });
})();"""
# Every byte received for the page so far: the document's and each resource's.
BYTES_RECEIVED = """() => [
  ...performance.getEntriesByType("navigation"), ...performance.getEntriesByType("resource"),
].reduce((sum, entry) => sum + entry.transferSize, 0)"""


@dataclass
class Measured:
    label: str
    url: str
    times: list[float] = field(default_factory=list)
    queries: int = 0
    shown: str = ""
    size: int = 0

    def percentile_ms(self, fraction: float) -> float:
        ordered = sorted(self.times)
        return ordered[max(math.ceil(fraction * len(ordered)), 1) - 1] * 1000

    @property
    def median_ms(self) -> float:
        return statistics.median(self.times) * 1000


# --- measuring -----------------------------------------------------------------------------


def logged_in_client():
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client(HTTP_HOST="localhost")
    client.force_login(get_user_model().objects.get(username=SUPERUSER))
    return client


def get(client, url: str):
    response = client.get(url)
    if response.status_code != 200:
        raise RuntimeError(f"GET {url}: {response.status_code}")
    return response


def measure(client, label: str, url: str, requests: int) -> Measured:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    measured = Measured(label, url)
    for _ in range(WARMUP):
        get(client, url)
    for _ in range(requests):
        started = time.perf_counter()
        get(client, url)
        measured.times.append(time.perf_counter() - started)
    with CaptureQueriesContext(connection) as queries:
        content = get(client, url).content
    measured.queries = len(queries.captured_queries)
    measured.size = len(content)
    runs, steps = content.count(b'name="_selected_action"'), content.count(b'class="hr-step"')
    measured.shown = f"{runs} runs listed" if runs else f"{steps} step(s) shown"
    return measured


def describe(measured: Measured) -> None:
    median, p95 = measured.median_ms, measured.percentile_ms(0.95)
    print(f"{measured.label}: GET {measured.url}")
    print(
        f"  median {median:.1f} ms, p95 {p95:.1f} ms, min {min(measured.times) * 1000:.1f} "
        f"ms over {len(measured.times)} requests ({met(median < TARGET_MS)}: under "
        f"{TARGET_MS:.0f} ms)"
    )
    print(f"  {measured.queries} queries (session and user included), {measured.shown}")
    print(f"  response {measured.size} bytes ({measured.size / 2**20:.2f} MiB)", flush=True)


def profile(client, measured: Measured) -> None:
    """Where the page's time goes: the functions with the most time of their own over 3
    requests (cProfile), then each query of one request, what issued it, and its time when
    run again alone (execute and fetch: SQLite does most of its work while fetching)."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(3):
        get(client, measured.url)
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    top = sorted(stats.items(), key=lambda item: item[1][2], reverse=True)[:PROFILE_LINES]
    print(f"  profile of {measured.label}, ms per request, own and with callees:")
    for (filename, line, function), (_calls, _primitive, own, cumulative, _callers) in top:
        where = f"{short_path(filename)}:{line}({function})" if line else function
        print(f"    {own * 1000 / 3:7.1f} {cumulative * 1000 / 3:7.1f}  {where}")
    print(f"  queries of {measured.label}, each run again alone, slowest first:")
    timed = [
        (*time_query(sql, params), sql, where)
        for sql, params, where in queries_of(client, measured.url)
    ]
    for seconds, rows, sql, where in sorted(timed, reverse=True):
        print(f"    {seconds * 1000:7.1f} ms {rows:>4} rows  {where}\n{'':>24}{sql[:SQL_SHOWN]}")
    total = sum(seconds for seconds, *_rest in timed) * 1000
    print(
        f"    {total:7.1f} ms in all, of a median page of {measured.median_ms:.1f} ms", flush=True
    )


def queries_of(client, url: str) -> list[tuple[str, Any, str]]:
    """The SQL, parameters and origin of each query of one request of `url`."""
    from django.db import connection

    issued = []

    def record(execute, sql, params, many, context):
        issued.append((sql, params, origin(traceback.extract_stack())))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        get(client, url)
    return issued


def origin(stack: list[traceback.FrameSummary]) -> str:
    """The innermost frame of hookrunner's code, else of Django's contrib apps."""
    ours = [frame for frame in stack if frame.filename.startswith(str(ROOT / "runner"))]
    django = [frame for frame in stack if f"django{os.sep}contrib" in frame.filename]
    frame = (ours or django or stack)[-1]
    return f"{short_path(frame.filename)}:{frame.lineno}"


def time_query(sql: str, params: Any) -> tuple[float, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(sql, params)
        rows = len(cursor.fetchall())
        return time.perf_counter() - started, rows


def short_path(filename: str) -> str:
    for prefix in (f"site-packages{os.sep}", f"{ROOT}{os.sep}"):
        if prefix in filename:
            return filename.split(prefix, 1)[1]
    return filename


def sha_prefix_to_search() -> tuple[str, int]:
    """The first 7 characters of the sha of a run half-way through, and its runs."""
    from runner.models import Run as RunRow

    prefix = RunRow.objects.get(pk=RUNS // 2).sha[:7]
    return prefix, RunRow.objects.filter(sha__startswith=prefix).count()


def bench(always_profile: bool) -> dict:
    client = logged_in_client()
    prefix, found = sha_prefix_to_search()
    print(f"searching for sha {prefix}: {found} run(s) of {RUNS} match", flush=True)
    pages = (
        ("run list", "/admin/runner/run/", LIST_REQUESTS),
        ("run list, failed only", "/admin/runner/run/?status__exact=failed", LIST_REQUESTS),
        ("run list, sha search", f"/admin/runner/run/?q={prefix}", LIST_REQUESTS),
        ("10 MiB run page", f"/admin/runner/run/{BIG_RUN_ID}/change/", PAGE_REQUESTS),
    )
    results = []
    for label, url, requests in pages:
        results.append(measure(client, label, url, requests))
        describe(results[-1])
    for measured in results:  # once every page is measured, so as not to disturb them
        if always_profile or measured.median_ms >= TARGET_MS:
            profile(client, measured)
    plain, page = results[0], results[-1]
    return {
        "run_list_ms": round(plain.median_ms, 1),
        "run_list_queries": plain.queries,
        "run_page_ms": round(page.median_ms, 1),
        "run_page_queries": page.queries,
    }


# --- in a browser ---------------------------------------------------------------------------


@dataclass
class Loaded:
    seen_ms: list[float] = field(default_factory=list)
    received: list[int] = field(default_factory=list)


def browser_bench(target: Target, log: Path) -> dict:
    """The big run's page in Chromium, served by gunicorn: navigation start to its last
    line in view, and the bytes received until then and while the page settles."""
    session = logged_in_client().cookies["sessionid"].value
    line = f"step-1-L{last_line_of_big_run()}"
    url = f"http://{target.host}:{target.port}/admin/runner/run/{BIG_RUN_ID}/change/"
    server = start_gunicorn(log)
    try:
        wait_until_listening(server, target)
        loaded = load_in_chromium(url, session, line)
    finally:
        stop(server)
    median_ms, most = statistics.median(loaded.seen_ms), max(loaded.received)
    print(f"10 MiB run page in Chromium: GET {url}, {BROWSER_LOADS} loads after 1, cold cache")
    print(
        f"  #{line} in view after median {median_ms:.0f} ms, max {max(loaded.seen_ms):.0f} ms "
        f"({met(median_ms <= BROWSER_TARGET_MS)}: at most {BROWSER_TARGET_MS:.0f} ms)"
    )
    print(f"  {most} bytes received at most ({met(most <= BYTES_TARGET)}: at most "
          f"{BYTES_TARGET})", flush=True)  # fmt: skip
    return {"run_page_browser_ms": round(median_ms), "run_page_bytes": most}


def last_line_of_big_run() -> int:
    from runner.admin.log_lines import stored_logs
    from runner.models import Step

    step = Step.objects.get(run_id=BIG_RUN_ID, index=0)
    return stored_logs([step.pk])[step.pk].total


def load_in_chromium(url: str, session: str, line: str) -> Loaded:
    """Each load in a fresh context (no cache, no earlier page), the first not counted."""
    from playwright.sync_api import sync_playwright

    loaded = Loaded()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            for load in range(BROWSER_LOADS + 1):
                seen_ms, received = load_once(browser, url, session, line)
                if load:
                    loaded.seen_ms.append(seen_ms)
                    loaded.received.append(received)
        finally:
            browser.close()
    return loaded


def load_once(browser, url: str, session: str, line: str) -> tuple[float, int]:
    context = browser.new_context()
    try:
        context.add_cookies([{"name": "sessionid", "value": session, "url": url}])
        context.add_init_script(WATCH_LINE.replace("WATCHED", json.dumps(line)))
        page = context.new_page()
        page.goto(url)
        seen_ms = page.wait_for_function("() => window.benchLineSeen").json_value()
        page.wait_for_load_state("networkidle")  # what the page asks for by itself
        return seen_ms, page.evaluate(BYTES_RECEIVED)
    finally:
        context.close()


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rebuild", action="store_true", help="build the database again")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="profile every page, not only those that miss the target",
    )
    return parser.parse_args()


def main() -> int:
    arguments = parse_arguments()
    print_load("before")
    with tempfile.TemporaryDirectory(prefix="hookrunner-bench-admin-") as data_dir:
        target = configure_own_server(Path(data_dir), runs=0)
        seconds = prepare_database(Path(data_dir), arguments.rebuild)
        import django

        django.setup()
        figures = bench(arguments.profile)
        figures |= browser_bench(target, Path(data_dir) / "gunicorn.log")
        from django.db import connections

        connections.close_all()
    if seconds is not None:
        print(f"build time {seconds:.1f} s")
    print_load("after")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
