"""Real `manage.py worker` processes against the test database, for the tests that need one.

A test starts workers through the `worker_processes` fixture (tests/conftest.py), a
`WorkerProcesses`: after the test, whatever happened, every step process group the test
registered is SIGKILLed and every worker it started is stopped.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from django.db import connection

from runner.models import Run, Step

BASE_DIR = Path(__file__).resolve().parent.parent


def database_url() -> str:
    """The URL of the database this test runs on, for a worker in another process."""
    database = connection.settings_dict
    if database["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{database['NAME']}"
    user = database["USER"]
    return f"postgres://{user}@{database['HOST']}:{database['PORT']}/{database['NAME']}"


def worker_environment(pipelines_file: Path, workspaces_dir: Path, **settings) -> dict[str, str]:
    """The environment of a worker on the test database: this process's, the pipelines
    file, the workspaces folder, and `settings` (e.g. RUN_HEARTBEAT_SECONDS=0.2)."""
    return {
        **os.environ,
        "DATABASE_URL": database_url(),
        "PIPELINES_FILE": str(pipelines_file),
        "WORKSPACES_DIR": str(workspaces_dir),
        **{name: str(value) for name, value in settings.items()},
    }


def start_worker(
    env: dict[str, str], log: Path | None = None, prefix: tuple[str, ...] = ()
) -> subprocess.Popen:
    """Start `manage.py worker` (through the program `prefix` names, if any); its output
    goes to `log` if given, else nowhere.

    Prefer `WorkerProcesses.start`, which also stops it after the test."""
    argv = [*prefix, sys.executable, "manage.py", "worker"]
    if log is None:
        return subprocess.Popen(
            argv, cwd=BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
    with log.open("wb") as output:
        return subprocess.Popen(
            argv, cwd=BASE_DIR, env=env, stdout=output, stderr=subprocess.STDOUT
        )


class WorkerProcesses:
    """The workers one test started and the step process groups it registered.

    Leaving the `with` block (the `worker_processes` fixture's teardown) SIGKILLs the
    registered groups, then stops every worker: SIGTERM, and SIGKILL if it has not exited
    within `stop_seconds`; on PostgreSQL it then waits until their sessions are gone."""

    def __init__(self, stop_seconds: float = 15):
        self.stop_seconds = stop_seconds
        self.started: list[subprocess.Popen] = []
        self.groups: list[int] = []

    def start(
        self, env: dict[str, str], log: Path | None = None, prefix: tuple[str, ...] = ()
    ) -> subprocess.Popen:
        self.started.append(start_worker(env, log, prefix))
        return self.started[-1]

    def register_group(self, pgid: int) -> None:
        """SIGKILL process group `pgid` (a step's: its pid) after the test, should it live on."""
        self.groups.append(pgid)

    def wait_for_group(self, run_id: int, step: str, seconds: float = 30) -> int:
        """The process group of step `step` of run `run_id` (bwrap's pid, for a sandboxed
        step), once the worker has stored it; registered with `register_group`."""
        found = wait_for(
            lambda: Step.objects.filter(run_id=run_id, name=step).exclude(pid=None).first(),
            "step started",
            seconds,
        )
        self.register_group(found.pid)
        return found.pid

    def stop(self, *processes: subprocess.Popen) -> None:
        """SIGTERM `processes`, then SIGKILL those not exited within `stop_seconds`."""
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=self.stop_seconds)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def __enter__(self) -> "WorkerProcesses":
        return self

    def __exit__(self, *exc_info) -> None:
        try:
            for pgid in self.groups:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
        finally:
            self.stop(*self.started)
        if self.started:
            wait_until_alone_in_the_database()


# A sandboxed step's process group holds bwrap and the sandbox's init besides the step's own.
SANDBOX_PROCESSES = 2


def group_members(pgid: int) -> list[int]:
    """The live processes of process group `pgid` (zombies wait for init, not for us)."""
    members = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(stat_file.parent.name))
    return members


def processes_running(command_line: str, within: float = 2) -> list[int]:
    """The host's processes whose command line is `command_line`, once those ending in
    the next `within` seconds have ended (a sandbox's end takes a moment)."""
    deadline = time.monotonic() + within
    while (found := running(command_line)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def running(command_line: str, *, whole: bool = True) -> list[int]:
    """The pids of the processes whose command line is `command_line` (or, not `whole`,
    holds it)."""
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            words = (entry / "cmdline").read_bytes().rstrip(b"\0").split(b"\0")
            seen = b" ".join(words).decode(errors="replace")
            matches = seen == command_line if whole else command_line in seen
            if entry.name.isdigit() and matches:
                found.append(int(entry.name))
    return found


def group_of(command_line: str, seconds: float = 30) -> int:
    """The process group of the first process whose command line is `command_line`, once
    there is one: a sandboxed step's pid is not the host's, so it cannot say it itself."""
    found = wait_for(lambda: running(command_line), command_line, seconds)
    return os.getpgid(found[0])


def wait_for(condition, what: str, seconds: float = 10):
    """The first true value of `condition()`, polled until `seconds` have passed."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.01)
    raise AssertionError(f"{what}: not within {seconds} s")


def record_executions(pipelines, tmp_path: Path, pipelines_yaml: str) -> Path:
    """A new folder `executions`, after writing acme/webapp's pipelines from
    `pipelines_yaml` (with the `pipelines` fixture), `{folder}` in it standing for it.

    Their steps record there which worker executed which run: each appends
    "run-id worker-pid" (its parent process is the worker) to `log`, then creates a file
    named after its run with noclobber (O_EXCL): a second execution of a run is logged,
    and fails."""
    folder = tmp_path / "executions"
    folder.mkdir()
    pipelines(pipelines_yaml.replace("{folder}", str(folder)))
    return folder


def recorded_executions(executions: Path) -> Counter:
    """How many times each run's step started, by run id."""
    lines = (executions / "log").read_text().splitlines()
    return Counter(int(line.split()[0]) for line in lines)


def wait_until_polling(process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"worker exited with {process.returncode}:\n{log.read_text()}")
        if b"Starting worker" in log.read_bytes():
            return
        time.sleep(0.05)
    raise AssertionError(f"worker did not start polling within 30 s:\n{log.read_text()}")


def wait_until_finished(run_ids: list[int], seconds: float = 120) -> list[Run]:
    deadline = time.monotonic() + seconds
    unfinished = Run.objects.filter(pk__in=run_ids, status__in=["queued", "running"])
    while unfinished.exists():
        if time.monotonic() > deadline:
            left = Counter(unfinished.values_list("status", flat=True))
            raise AssertionError(f"runs not finished within {seconds} s: {dict(left)}")
        time.sleep(0.1)
    return list(Run.objects.filter(pk__in=run_ids).order_by("pk"))


def wait_for_running_step(run: Run, seconds: float = 30) -> Step:
    """The step of `run` a worker runs, once it has a pid and has written output."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        step = Step.objects.filter(run=run, status="running", pid__isnull=False).first()
        if step and step.chunks.exists():
            return step
        time.sleep(0.1)
    raise AssertionError("the worker never started the step")


def wait_for_status(run: Run, status: str, seconds: float = 30) -> Run:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.status == status:
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run.pk} is {run.status} ({run.detail}), never {status}")


def wait_until_alone_in_the_database() -> None:
    """PostgreSQL may keep a killed client's session a moment; dropping the test
    database after this test needs it gone."""
    if connection.vendor != "postgresql":
        return
    deadline = time.monotonic() + 10
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0] == 0:
                return
            time.sleep(0.1)
