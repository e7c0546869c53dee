"""What the database of bench/admin.py holds: the plan of its rows, and their log text.

  * ~50,000 `push` and `pull_request` deliveries over 90 days, each starting 1-3 runs, from
    6 repositories with 2-4 pipelines each; every delivery stores the same payload
    (tests/fixtures/github/push__branch.json, 5.5 KB as stored), every run its pipeline's
    definition;
  * runs in every status (the newest 8 queued, the next 4 running, the others mostly
    succeeded, some failed, cancelled, timed out or in error), on main, feature branches,
    tags and pull requests, a sha per delivery, and their steps (none for a queued run or
    one in error, skipped ones after a failure);
  * 1,000,000 LogChunk rows of 200-2000 bytes of log-like text (a few lines in colour),
    spread over the steps that ran, more for test and build steps than for a checkout;
    160 of them (64 KiB each, 10 MiB in all, ANSI colours on about one line in ten, and
    some `<`, `>` and `&` to escape) are the single step's output of one failed run,
    BIG_RUN_ID, a hundred runs before the newest.

bench/admin_data.py turns the plan into rows and builds the database.
"""

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

SEED = 20261127
RUNS = 100_000
CHUNKS = 1_000_000  # in all, the big run's included
BIG_RUN_ID = RUNS - 100
BIG_REPOSITORY, BIG_PIPELINE, BIG_STEP = "acme/webapp", "e2e", "end-to-end tests"
BIG_CHUNKS = 160
BIG_CHUNK_CHARS = 64 * 1024  # ASCII: as many bytes
HISTORY = timedelta(days=90)
QUEUED_NEWEST, RUNNING_NEXT = 8, 4


REPOSITORIES = {
    "acme/webapp": {
        "tests": ("checkout", "install", "lint", "unit tests", "integration tests"),
        "build": ("checkout", "install", "build", "package"),
        "deploy": ("checkout", "build", "migrate", "deploy"),
        "e2e": ("end-to-end tests",),
    },
    "acme/api": {
        "tests": ("checkout", "install", "unit tests"),
        "docker": ("checkout", "build image", "push image"),
        "deploy": ("checkout", "deploy"),
    },
    "acme/mobile": {
        "tests": ("checkout", "install", "lint", "unit tests"),
        "build": ("checkout", "install", "build"),
    },
    "acme/infra": {
        "plan": ("checkout", "init", "plan"),
        "apply": ("checkout", "init", "apply"),
    },
    "tools/cli": {
        "tests": ("checkout", "unit tests"),
        "release": ("checkout", "build", "package", "publish"),
    },
    "oss/parser": {
        "tests": ("checkout", "install", "unit tests"),
        "docs": ("checkout", "build docs"),
        "fuzz": ("checkout", "build", "fuzz"),
    },
}
REPOSITORY_WEIGHTS = (40, 25, 10, 8, 9, 8)
# How much output a step prints, relative to the others (times a random 0.3-1.7).
STEP_WEIGHTS = {"checkout": 1, "install": 3, "lint": 2, "init": 1, "deploy": 3, "publish": 1}
LOUD_STEP_WEIGHT = 8  # tests, builds, fuzzing...
LOUD_WORDS = ("test", "build", "fuzz", "package", "plan", "apply", "image")
STATUSES = {"succeeded": 72, "failed": 17, "cancelled": 5, "timed_out": 2, "error": 4}
SENDERS = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
           "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor")  # fmt: skip
BRANCHES = ("main",) * 12 + tuple(
    f"{kind}/{topic}"
    for kind in ("feature", "fix", "chore")
    for topic in ("login", "billing", "search", "cache", "deps", "retry", "export", "docs")
)

# Lines of log; `{n}` is a number, `{w}` a word. A few use colour, a few need escaping.
PLAIN_LINES = (
    "tests/test_{w}.py::test_{w}_{n} PASSED",
    "Collecting {w}>=2.{n} (from -r requirements.txt (line {n}))",
    "  Downloading {w}-3.{n}.0-py3-none-any.whl (1{n} kB)",
    "[ {n}%] Building CXX object src/CMakeFiles/core.dir/{w}.cpp.o",
    '  File "/srv/app/{w}/models.py", line {n}, in <module>',
    "    assert response.status_code == 200 and len(items) > {n}",
    "npm WARN deprecated {w}@7.2.{n}: this version is no longer supported",
    "2026-11-27T10:{n}:02.123Z INFO {w}: request handled in {n} ms",
    "Step {n}/12 : RUN pip install --no-cache-dir {w} && rm -rf /tmp/{w}",
    "ok   github.com/acme/{w}/internal/{w}   0.{n}s",
)
COLOUR_LINES = (
    "\x1b[32mPASSED\x1b[0m tests/test_{w}.py::test_{w}_{n}",
    "\x1b[1;31mFAILED\x1b[0m tests/test_{w}.py::test_{w}_{n} - AssertionError",
    "\x1b[33mwarning:\x1b[0m unused variable `{w}` at src/{w}.rs:{n}",
    "\x1b[1m\x1b[36m==> \x1b[0mbuilding {w} ({n} of 40)",
)
WORDS = ("api", "auth", "billing", "cache", "db", "export", "login", "queue", "search", "user")


@dataclass
class Step:
    name: str
    status: str
    exit_code: int | None = None
    chunks: int = 0  # filled in once every step is known


@dataclass
class Run:
    id: int
    delivery: int
    repository: str
    pipeline: str
    event: str
    sha: str
    ref: str
    pr_number: int | None
    status: str
    created_at: datetime
    steps: list[Step] = field(default_factory=list)
    detail: str = ""


@dataclass(frozen=True)
class Delivery:
    id: int
    uuid: str
    event: str
    action: str
    repository: str
    sender: str
    ref: str
    received_at: datetime
    runs: int


# --- the plan: what the database will hold ------------------------------------------------


def plan(rng: random.Random, now: datetime) -> tuple[list[Delivery], list[Run]]:
    """Deliveries and their runs, ids from 1, oldest first, over the last 90 days."""
    deliveries, runs = [], []
    pull_requests = dict.fromkeys(REPOSITORIES, 0)
    while len(runs) < RUNS:
        repository = rng.choices(list(REPOSITORIES), REPOSITORY_WEIGHTS)[0]
        pipelines = list(REPOSITORIES[repository])
        chosen = rng.sample(pipelines, rng.randint(1, min(3, len(pipelines))))
        chosen = chosen[: room_for_runs(len(runs))]
        event, action, ref, pr_number = push_or_pull_request(rng, pull_requests, repository)
        if not chosen:  # the big run's turn: a push to main starting only it
            repository, chosen = BIG_REPOSITORY, [BIG_PIPELINE]
            event, action, ref, pr_number = "push", "", "refs/heads/main", None
        at = now - HISTORY * (1 - len(runs) / RUNS)
        delivery = Delivery(
            id=len(deliveries) + 1,
            uuid=f"{rng.getrandbits(128):032x}",
            event=event,
            action=action,
            repository=repository,
            sender=rng.choice(SENDERS),
            ref=ref,
            received_at=at,
            runs=len(chosen),
        )
        deliveries.append(delivery)
        sha = f"{rng.getrandbits(160):040x}"
        for pipeline in chosen:
            run = Run(
                id=len(runs) + 1,
                delivery=delivery.id,
                repository=repository,
                pipeline=pipeline,
                event=event,
                sha=sha,
                ref=ref,
                pr_number=pr_number,
                status=status_of(rng, len(runs) + 1),
                created_at=at + timedelta(milliseconds=len(runs) % 7),
            )
            runs.append(run)
            if run.id == BIG_RUN_ID:
                make_big_run(run)
            else:
                add_steps(rng, run)
    spread_chunks(rng, runs)
    return deliveries, runs


def room_for_runs(planned: int) -> int:
    """How many runs the next delivery may start; none: it is the big run's own delivery."""
    return BIG_RUN_ID - 1 - planned if planned < BIG_RUN_ID else RUNS - planned


def push_or_pull_request(
    rng: random.Random, pull_requests: dict[str, int], repository: str
) -> tuple[str, str, str, int | None]:
    """event, action, ref, PR number"""
    if rng.random() < 0.2:
        if rng.random() < 0.3 or not pull_requests[repository]:
            pull_requests[repository] += 1
        number = pull_requests[repository]
        return "pull_request", "synchronize", f"refs/pull/{number}/merge", number
    if rng.random() < 0.03:
        tag = f"v1.{rng.randint(0, 40)}.{rng.randint(0, 9)}"
        return "push", "", f"refs/tags/{tag}", None
    return "push", "", f"refs/heads/{rng.choice(BRANCHES)}", None


def status_of(rng: random.Random, run_id: int) -> str:
    if run_id > RUNS - QUEUED_NEWEST:
        return "queued"
    if run_id > RUNS - QUEUED_NEWEST - RUNNING_NEXT:
        return "running"
    return rng.choices(list(STATUSES), list(STATUSES.values()))[0]


def make_big_run(run: Run) -> None:
    """The run whose one step printed 10 MiB and failed."""
    run.status, run.detail = "failed", f"step 1 ({BIG_STEP}) failed"
    run.steps = [Step(BIG_STEP, "failed", 1, BIG_CHUNKS)]


def add_steps(rng: random.Random, run: Run) -> None:
    """The run's steps as its status implies: none for queued, skipped after a stop."""
    names = REPOSITORIES[run.repository][run.pipeline]
    if run.status == "queued" or run.status == "error":
        run.detail = "" if run.status == "queued" else "a secret is missing: DEPLOY_TOKEN"
        return
    stop = rng.randrange(len(names))
    for position, name in enumerate(names):
        if run.status == "succeeded" or position < stop:
            run.steps.append(Step(name, "succeeded", 0))
        elif position > stop:
            run.steps.append(Step(name, "pending" if run.status == "running" else "skipped"))
        else:
            exit_code = {"failed": 1, "running": None}.get(run.status, -15)
            run.steps.append(Step(name, run.status, exit_code))
    if run.status != "succeeded" and run.status != "running":
        word = run.status.replace("_", " ")
        run.detail = f"step {stop + 1} ({names[stop]}) {word}"


def spread_chunks(rng: random.Random, runs: list[Run]) -> None:
    """Give the steps that ran CHUNKS - BIG_CHUNKS chunks in all, by how loud they are."""
    ran = [
        step
        for run in runs
        if run.id != BIG_RUN_ID
        for step in run.steps
        if step.status not in ("pending", "skipped")
    ]
    weights = [step_weight(step.name) * rng.uniform(0.3, 1.7) for step in ran]
    scale = (CHUNKS - BIG_CHUNKS) / sum(weights)
    for step, weight in zip(ran, weights, strict=True):
        step.chunks = max(1, int(weight * scale))
    missing = CHUNKS - BIG_CHUNKS - sum(step.chunks for step in ran)
    order = list(range(len(ran)))
    rng.shuffle(order)
    position = 0
    while missing:  # one more (or fewer) chunk each, in a random order, to the exact total
        step = ran[order[position % len(order)]]
        if missing > 0 or step.chunks > 1:
            step.chunks += 1 if missing > 0 else -1
            missing += -1 if missing > 0 else 1
        position += 1


def step_weight(name: str) -> float:
    if name in STEP_WEIGHTS:
        return STEP_WEIGHTS[name]
    return LOUD_STEP_WEIGHT if any(word in name for word in LOUD_WORDS) else 2


# --- the text of the output ---------------------------------------------------------------


def log_text(rng: random.Random, chars: int, colour_share: float) -> str:
    """At least `chars` characters of log lines, `colour_share` of them in colour."""
    lines, length = [], 0
    while length < chars:
        templates = COLOUR_LINES if rng.random() < colour_share else PLAIN_LINES
        line = rng.choice(templates).format(n=rng.randint(1, 99), w=rng.choice(WORDS))
        lines.append(line)
        length += len(line) + 1
    return "\n".join(lines) + "\n"


def big_log(rng: random.Random) -> list[str]:
    text = log_text(rng, BIG_CHUNKS * BIG_CHUNK_CHARS, colour_share=0.1)
    return [text[i * BIG_CHUNK_CHARS : (i + 1) * BIG_CHUNK_CHARS] for i in range(BIG_CHUNKS)]
