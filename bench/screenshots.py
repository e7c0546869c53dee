"""The screenshots in docs/admin.md: a small demo database served by gunicorn, and a real
headless Chromium that logs in and saves the run page of a failed run, the runs list,
the index and the environments page as PNGs into docs/images/ at 1440x900.

    .venv/bin/python bench/screenshots.py [--chromium /usr/bin/chromium]

The instance is bench/served.py's (a temporary DATA_DIR, gunicorn on a free port of
127.0.0.1), always on SQLite. The demo data is made up here, with times relative to now:
three repositories, a few pipelines each with a history of runs, one run running, one
queued, and a failed run whose test step's output is coloured as pytest colours it;
acme/webapp's deploy pipeline deploys to production.
"""

import argparse
import os
import random
import secrets
import sys
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import output_log  # noqa: E402
from bench.served import Target, own_server  # noqa: E402
from tests.browser import CHROMIUM_ARGS  # noqa: E402

IMAGES = ROOT / "docs" / "images"
VIEWPORT = {"width": 1440, "height": 900}
USERNAME = "admin"
# Each repository's pipelines and their steps.
PIPELINES = {
    "acme/webapp": {"test": ("checkout", "install", "test"), "deploy": ("build", "deploy")},
    "acme/api": {"test": ("install", "test"), "lint": ("ruff",)},
    "acme/docs": {"build": ("build", "publish")},
}
# The pipelines that deploy: to which environment, seen where.
DEPLOYS_TO = {"deploy": ("production", "https://shop.acme.example")}
MESSAGES = [
    "Fix flaky session test by freezing the clock",
    "Add rate limiting to the login endpoint",
    "Bump django from 6.0.1 to 6.0.2",
    "Cache the pricing table for five minutes",
    "Describe the deploy in the README",
    "Retry webhooks that time out",
]
# pytest's colours: green passes, red failures, bold headings.
B, R, G, C, X = "\x1b[1m", "\x1b[31m", "\x1b[32m", "\x1b[36m", "\x1b[0m"
RULE = "=" * 29
FAILED_TEST_LOG = (
    f"{B}{RULE} test session starts {RULE}{X}\n"
    "platform linux -- Python 3.13.1, pytest-8.3.4, pluggy-1.5.0\n"
    "rootdir: /work/webapp\n"
    "collected 214 items\n\n"
    f"tests/test_billing.py {G}{'.' * 26}{X}{G}          [ 12%]{X}\n"
    f"tests/test_login.py {G}{'.' * 35}{X}{G}  [ 28%]{X}\n"
    f"tests/test_session.py {G}.......{X}{R}F{X}{G}.......{X}{R}                    [ 35%]{X}\n"
    f"tests/test_views.py {G}{'.' * 46}{X}{R} [100%]{X}\n\n"
    f"{'=' * 35} FAILURES {'=' * 35}\n"
    f"{R}{B}{'_' * 28} test_session_expires {'_' * 28}{X}\n\n"
    "    def test_session_expires(client, clock):\n"
    "        client.login(username='ada', password='secret')\n"
    "        clock.advance(minutes=31)\n"
    ">       assert client.get('/account/').status_code == 302\n"
    f"{B}{R}E       assert 200 == 302{X}\n"
    f"{B}{R}E        +  where 200 = <HttpResponse status_code=200>.status_code{X}\n\n"
    f"{B}{R}tests/test_session.py{X}:42: AssertionError\n"
    f"{C}{B}{'=' * 27} short test summary info {'=' * 28}{X}\n"
    f"{R}FAILED{X} tests/test_session.py::{B}test_session_expires{X} - assert 200 == 302\n"
    f"{R}{'=' * 24} {B}1 failed{X}, {G}213 passed{X}{R} in 12.41s {'=' * 25}{X}\n"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM") or "/usr/bin/chromium")
    options = parser.parse_args()
    # The demo is made in this process, so it must be the server's SQLite file.
    os.environ.pop("DATABASE_URL", None)
    log = output_log("screenshots")
    password = secrets.token_urlsafe(16)
    with own_server(log, runs=0) as target:
        failed_run_id = build_demo(password)
        IMAGES.mkdir(parents=True, exist_ok=True)
        for saved in photograph(target, password, failed_run_id, options.chromium):
            print(f"saved {saved.relative_to(ROOT)}")
    print(f"server output: {log}")


def build_demo(password: str) -> int:
    """The demo database, and the id of the failed run to show."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    get_user_model().objects.create_superuser(USERNAME, "admin@example.com", password)
    with transaction.atomic():
        rng = random.Random(15)  # noqa: S311 (made-up history, the same every time)
        for repository, pipelines in PIPELINES.items():
            for pipeline, steps in pipelines.items():
                history(rng, repository, pipeline, steps)
        failed = failed_run()
        now_going_on()
    # Playwright keeps an event loop in this thread, and Django refuses queries there.
    connection.close()
    return failed


def new_delivery(repository: str, message: str, ago: timedelta, sha: str):
    from django.utils import timezone

    from runner.models import Delivery

    payload = {
        "ref": "refs/heads/main",
        "after": sha,
        "head_commit": {"id": sha, "message": message},
        "repository": {"full_name": repository, "html_url": f"https://github.com/{repository}"},
        "sender": {"login": "ada"},
    }
    return Delivery.objects.create(
        delivery_id=secrets.token_hex(16),
        event="push",
        repository=repository,
        sender="ada",
        ref="refs/heads/main",
        received_at=timezone.now() - ago,
        payload=payload,
        status=Delivery.Status.ACCEPTED,
    )


def new_run(repository: str, pipeline: str, steps: tuple[str, ...], ago: timedelta, **fields):
    """A run of a push to main `ago` ago, with a commit message of the demo's."""
    from django.utils import timezone

    from runner.config.definition import RunDefinition
    from runner.config.pipelines import Environment, Step
    from runner.models import Run

    sha = secrets.token_hex(20)
    message = MESSAGES[int(sha[:6], 16) % len(MESSAGES)]
    environment = Environment(*DEPLOYS_TO[pipeline]) if pipeline in DEPLOYS_TO else None
    definition = RunDefinition(
        name=pipeline,
        steps=tuple(Step(name, f"make {name}", 600) for name in steps),
        environment=environment,
    )
    return Run.objects.create(
        environment=environment.name if environment else "",
        delivery=new_delivery(repository, message, ago, sha),
        repository=repository,
        pipeline=pipeline,
        event="push",
        sha=sha,
        ref="refs/heads/main",
        definition=definition,
        task_id=secrets.token_hex(16),
        created_at=timezone.now() - ago,
        **fields,
    )


def history(rng: random.Random, repository: str, pipeline: str, steps: tuple[str, ...]) -> None:
    """Twenty ended runs, an hour apart, mostly successful, taking a minute or two."""
    from django.utils import timezone

    for hours in range(20, 0, -1):
        status = rng.choices(["succeeded", "failed", "cancelled"], weights=[17, 2, 1])[0]
        started = timezone.now() - timedelta(hours=hours)
        took = timedelta(seconds=rng.randint(50, 130))
        detail = f"step {steps[-1]} failed with exit code 1" if status == "failed" else ""
        new_run(
            repository, pipeline, steps, timedelta(hours=hours, seconds=5),
            status=status, detail=detail, started_at=started, finished_at=started + took,
            worker="ci-1:4242",
        )  # fmt: skip


def failed_run() -> int:
    """acme/webapp's test, failed in its test step a few minutes ago, with its output."""
    from django.utils import timezone

    from runner.models import LogChunk, Step

    steps = PIPELINES["acme/webapp"]["test"]
    started = timezone.now() - timedelta(minutes=4)
    run = new_run(
        "acme/webapp", "test", steps, timedelta(minutes=4, seconds=3),
        status="failed", detail="step test failed with exit code 1", worker="ci-1:4242",
        started_at=started, finished_at=started + timedelta(seconds=74),
    )  # fmt: skip
    outputs = {
        "checkout": "Cloning https://github.com/acme/webapp\nHEAD is now at "
        f"{run.sha[:7]} Fix flaky session test by freezing the clock\n",
        "install": "Resolved 48 packages in 212ms\nInstalled 48 packages in 1.31s\n",
        "test": FAILED_TEST_LOG,
    }
    for index, name in enumerate(steps):
        failing = name == "test"
        step = Step.objects.create(
            run=run, index=index, name=name,
            status="failed" if failing else "succeeded", exit_code=1 if failing else 0,
            started_at=started + timedelta(seconds=20 * index),
            finished_at=started + timedelta(seconds=20 * index + (34 if failing else 18)),
            output_bytes=len(outputs[name].encode()),
        )  # fmt: skip
        LogChunk.objects.create(step=step, seq=0, text=outputs[name], created_at=step.started_at)
    return run.pk


def now_going_on() -> None:
    """One run running on a worker, and one queued behind it."""
    from django.utils import timezone

    from runner.models import WorkerSeen

    WorkerSeen.objects.create(name="ci-1:4242", queues="*")
    steps = PIPELINES["acme/webapp"]["deploy"]
    new_run(
        "acme/webapp", "deploy", steps, timedelta(seconds=50), status="running",
        started_at=timezone.now() - timedelta(seconds=45), worker="ci-1:4242",
        heartbeat_at=timezone.now(),
    )  # fmt: skip
    new_run("acme/api", "test", PIPELINES["acme/api"]["test"], timedelta(seconds=20))


def photograph(target: Target, password: str, run_id: int, chromium: str) -> list[Path]:
    from playwright.sync_api import sync_playwright

    site = f"http://{target.host}:{target.port}/admin"
    pages = {
        "run-page.png": f"{site}/runner/run/{run_id}/change/",
        "runs-list.png": f"{site}/runner/run/",
        "index.png": f"{site}/",
        "environments.png": f"{site}/runner/environments/",
    }
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            log_in(page, site, password)
            for name, url in pages.items():
                page.goto(url)
                page.wait_for_load_state("networkidle")
                page.screenshot(path=IMAGES / name)
        finally:
            browser.close()
    return [IMAGES / name for name in pages]


def log_in(page, site: str, password: str) -> None:
    page.goto(f"{site}/login/")
    page.fill("#id_username", USERNAME)
    page.fill("#id_password", password)
    with page.expect_navigation():
        page.click("input[type=submit]")
    page.locator("#logout-form").wait_for(state="attached")


if __name__ == "__main__":
    main()
