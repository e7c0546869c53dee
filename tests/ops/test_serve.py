"""`manage.py serve` (what `make run` starts), as a real process with a real gunicorn."""

import contextlib
import http.cookiejar
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from runner.ops.local_setup import AdminLogin, ensure_admin_login, ensure_secret_file
from runner.ops.supervisor import Backoff
from tests.conftest import SignedDelivery
from tests.worker_processes import SANDBOX_PROCESSES, group_members, group_of, wait_for

BASE_DIR = Path(__file__).resolve().parents[2]
# What tells serve's two children apart in their command lines.
GUNICORN = "-m gunicorn"
WORKER = "-m django worker"
SERVER_ENV_NAMES = ("DATABASE_URL", "WEBHOOK_SECRET", "DJANGO_SECRET_KEY", "DATA_DIR")


SERVED_PIPELINES = BASE_DIR / "tests" / "fixtures" / "served-pipelines.yaml"


def server_env(**changes: str) -> dict[str, str]:
    """This process's environment without the server's own settings, with the tests'
    pipelines file (never the example at the root, which users edit), plus `changes`."""
    env = {k: v for k, v in os.environ.items() if k not in SERVER_ENV_NAMES}
    return {**env, "PIPELINES_FILE": str(SERVED_PIPELINES), **changes}


def run_until_exit(command: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *command], cwd=BASE_DIR, env=server_env(**env),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def children_of(pid: int) -> dict[int, str]:
    """The live child processes of `pid`: their command lines by pid."""
    children = {}
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if fields[0] != "Z" and int(fields[1]) == pid:
            children[int(stat_file.parent.name)] = command_line(int(stat_file.parent.name))
    return children


def command_line(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (FileNotFoundError, ProcessLookupError):
        return None


def running(pid: int) -> bool:
    """Whether process `pid` exists and is no zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    def __init__(self, data_dir: Path, **environment: str) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        env = server_env(
            DATA_DIR=str(data_dir), HOST="127.0.0.1", PORT=str(self.port), **environment
        )
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "serve"],
            cwd=BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.banner = self._read_banner()
        self.output: list[str] = []
        # serve's children seen so far: their command lines by pid.
        self.seen: dict[int, str] = {}
        # Drain the pipe so a chatty server never blocks on a full one.
        self._drain = threading.Thread(target=self.output.extend, args=(self.process.stdout,))
        self._drain.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/github/"

    def _read_banner(self) -> str:
        lines = []
        for line in self.process.stdout:
            lines.append(line)
            if line.startswith("Stop with Ctrl-C."):
                break
        banner = "".join(lines)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return banner
            except OSError:
                time.sleep(0.1)
        os.killpg(self.process.pid, signal.SIGKILL)
        raise AssertionError(f"serve did not start listening:\n{banner}")

    def text(self) -> str:
        """What serve and its children have printed so far."""
        return "".join(self.output)

    def wait_for_output(self, text: str, seconds: float = 30) -> None:
        def printed() -> bool:
            if text in self.text():
                return True
            if self.process.poll() is not None:
                self._drain.join(timeout=5)
                raise AssertionError(
                    f"serve exited with {self.process.returncode} before printing {text!r}:\n"
                    f"{self.text()}"
                )
            return False

        wait_for(printed, f"serve printing {text!r}", seconds)

    def child(self, kind: str, other_than: tuple[int, ...] = ()) -> int:
        """The pid of serve's child whose command line has `kind` (GUNICORN or WORKER),
        once there is one that is none of `other_than`."""

        def found() -> int | None:
            if self.process.poll() is not None:
                self._drain.join(timeout=5)
                raise AssertionError(f"serve exited with {self.process.returncode}:\n{self.text()}")
            children = children_of(self.process.pid)
            self.seen.update(children)
            for pid, command in children.items():
                if kind in command and pid not in other_than:
                    return pid
            return None

        return wait_for(found, f"serve running a {kind!r} child", 30)

    def secret(self) -> str:
        return re.search(r"webhook secret\s+(\S+)", self.banner).group(1)

    def printed_login(self) -> tuple[str, str] | None:
        found = re.search(r"admin login\s+user (\S+)\s+password (\S+)", self.banner)
        return found and found.groups()

    def admin_login(self, username: str, password: str) -> str:
        """Log in to admin as a browser does; the page landed on, with its URL."""
        opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        login_url = f"http://127.0.0.1:{self.port}/admin/login/?next=/admin/"
        with opener.open(login_url, timeout=10) as response:
            form = response.read().decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
        fields = {"csrfmiddlewaretoken": token, "username": username, "password": password}
        body = urllib.parse.urlencode({**fields, "next": "/admin/"}).encode()
        with opener.open(login_url, body, timeout=10) as response:
            return f"{response.url}\n{response.read().decode()}"

    def post(self, delivery: SignedDelivery) -> int:
        request = urllib.request.Request(self.url, delivery.body, delivery.headers(), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    def kill(self) -> None:
        # Each child leads a process group of its own (gunicorn's processes are in
        # gunicorn's). The children seen are killed as well, should serve have died
        # without taking them along: they would hold the output pipe open.
        self.seen.update(children_of(self.process.pid))
        for pid, command in self.seen.items():
            if command_line(pid) == command:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self._drain.join(timeout=30)
        assert not self._drain.is_alive(), "something serve started outlived it"

    def stop(self, signum: int, whole_group: bool = False) -> int:
        if whole_group:
            os.killpg(self.process.pid, signum)
        else:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=30)
        finally:
            self.kill()


@pytest.fixture
def server(tmp_path):
    started = Server(tmp_path)
    yield started
    started.kill()


def stored_deliveries(data_dir: Path, name: str = "hookrunner.sqlite3") -> list[tuple[str, str]]:
    with sqlite3.connect(data_dir / name) as database:
        return database.execute("SELECT event, status FROM runner_delivery").fetchall()


def test_first_start_generates_a_private_secret_and_prints_how_to_use_it(server):
    secret_file = server.data_dir / "webhook-secret"
    assert secret_file.read_text().strip() == server.secret()
    assert secret_file.stat().st_mode & 0o777 == 0o600
    assert f"webhook URL     {server.url}" in server.banner
    assert f"admin           http://127.0.0.1:{server.port}/admin/" in server.banner


def superusers(data_dir: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(data_dir / "hookrunner.sqlite3") as database:
        return database.execute(
            "SELECT username, password FROM auth_user WHERE is_superuser"
        ).fetchall()


def files_containing(folder: Path, text: str) -> list[Path]:
    return [
        path for path in folder.rglob("*") if path.is_file() and text.encode() in path.read_bytes()
    ]


def test_first_start_creates_an_admin_login_shown_once_that_works_on_later_starts(tmp_path):
    server = Server(tmp_path)
    admin_index = f"http://127.0.0.1:{server.port}/admin/\n"
    try:
        username, password = server.printed_login()
        assert username == "admin"
        assert "shown only this once" in server.banner
        assert "manage.py changepassword admin" in server.banner
        assert "manage.py createsuperuser" in server.banner
        landed = server.admin_login("admin", password)
        assert landed.startswith(admin_index)
        assert 'id="logout-form"' in landed
        assert not server.admin_login("admin", "wrong").startswith(admin_index)
        assert server.stop(signal.SIGTERM) == 0
    finally:
        server.kill()
    # Stored hashed in the database and nowhere else: no file, no log line.
    [(_, stored)] = superusers(tmp_path)
    assert stored.startswith("pbkdf2_sha256$")
    assert files_containing(tmp_path, password) == []
    assert password not in "".join(server.output)

    again = Server(tmp_path)
    try:
        assert again.printed_login() is None
        assert password not in again.banner
        assert "admin login     as admin  (password not shown here)" in again.banner
        assert "manage.py changepassword admin" in again.banner
        assert again.admin_login("admin", password).startswith(
            f"http://127.0.0.1:{again.port}/admin/\n"
        )
    finally:
        again.kill()
    assert len(superusers(tmp_path)) == 1


def test_admin_login_off_creates_none_and_shows_how_to_create_one(tmp_path):
    server = Server(tmp_path, ADMIN_LOGIN="off")
    try:
        assert server.printed_login() is None
        assert "password" not in server.banner
        assert (
            "admin login     none (ADMIN_LOGIN=off); create one: "
            f"{sys.executable} manage.py createsuperuser\n"
        ) in server.banner
    finally:
        server.kill()
    with sqlite3.connect(tmp_path / "hookrunner.sqlite3") as database:
        assert database.execute("SELECT count(*) FROM auth_user").fetchone() == (0,)


def test_a_malformed_admin_login_setting_stops_serve_before_anything_else(tmp_path):
    result = run_until_exit(
        ["manage.py", "serve"], DATA_DIR=str(tmp_path), ADMIN_LOGIN="maybe", PORT=str(free_port())
    )
    assert result.returncode != 0
    assert "ADMIN_LOGIN='maybe' is not a boolean" in result.stderr
    assert not (tmp_path / "hookrunner.sqlite3").exists()


@pytest.mark.django_db
def test_admin_login_is_created_only_while_there_is_no_superuser_at_all():
    assert ensure_admin_login(create=False) == AdminLogin(None)
    created = ensure_admin_login()
    assert created.username == "admin" and len(created.password) >= 16
    assert User.objects.get(username="admin").check_password(created.password)
    assert ensure_admin_login() == AdminLogin("admin")
    assert User.objects.count() == 1


@pytest.mark.django_db
def test_a_plain_user_named_admin_is_left_alone():
    User.objects.create_user("admin", password="theirs")
    assert ensure_admin_login() == AdminLogin(None)
    assert not User.objects.get(username="admin").is_superuser
    assert User.objects.get(username="admin").check_password("theirs")


def test_served_receiver_accepts_deliveries_signed_with_the_printed_secret(server):
    assert server.post(SignedDelivery.of_fixture("ping__default", secret=server.secret())) == 200
    assert server.post(SignedDelivery.of_fixture("push__branch", secret=server.secret())) == 202
    assert server.post(SignedDelivery.of_fixture("push__branch", secret="wrong")) == 403
    assert stored_deliveries(server.data_dir) == [("ping", "accepted"), ("push", "accepted")]


def ended_run(data_dir: Path, seconds: float = 30) -> tuple[str, int]:
    """The status and id of the last run, once it has ended."""

    def ended() -> tuple[str, int] | None:
        with sqlite3.connect(data_dir / "hookrunner.sqlite3") as database:
            row = database.execute(
                "SELECT status, id FROM runner_run ORDER BY id DESC LIMIT 1"
            ).fetchone()
        return row if row and row[0] not in ("queued", "running") else None

    return wait_for(ended, "the run ending", seconds)


def test_pushed_pipeline_runs_to_the_end_in_the_served_worker(server):
    assert server.post(SignedDelivery.of_fixture("push__branch", secret=server.secret())) == 202
    row = ended_run(server.data_dir)
    assert row[0] == "succeeded"
    with sqlite3.connect(server.data_dir / "hookrunner.sqlite3") as database:
        (output,) = database.execute(
            "SELECT group_concat(c.text, '') FROM runner_logchunk c "
            "JOIN runner_step s ON s.id = c.step_id WHERE s.run_id = ?",
            (row[1],),
        ).fetchone()
    sha = "fdf0d9b48aca90fb0019f29d9611992528323408"
    assert output == f"deploying {sha} from acme/webapp\n"


def test_served_receiver_refuses_a_declared_oversized_body_without_waiting_for_it(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        connection.sendall(
            b"POST /hooks/github/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 26214401\r\n\r\n"
        )
        status_line = connection.makefile("rb").readline()
    assert status_line.split()[1] == b"413"


def test_sigterm_stops_everything_cleanly(server):
    assert server.stop(signal.SIGTERM) == 0
    output = "".join(server.output)
    assert "Shutting down: Master" in output
    assert "Traceback" not in output


def test_ctrl_c_stops_everything_cleanly_and_a_given_secret_is_used(tmp_path):
    server = Server(tmp_path, WEBHOOK_SECRET="from-the-environment")
    assert server.secret() == "from-the-environment"
    assert not (tmp_path / "webhook-secret").exists()
    assert (
        server.post(SignedDelivery.of_fixture("ping__default", secret="from-the-environment"))
        == 200
    )
    # A terminal delivers Ctrl-C to every process of the foreground group.
    assert server.stop(signal.SIGINT, whole_group=True) == 0


def pipelines_with_steps(tmp_path: Path, *steps: str, writable: Path | None = None) -> Path:
    """A pipelines file running `steps` (YAML flow mappings) on every push to acme/webapp,
    whose sandbox lets them write to `writable`."""
    path = tmp_path / "pipelines.yaml"
    sandbox = f"        sandbox: {{writable: {writable}}}\n" if writable else ""
    path.write_text(
        "repositories:\n  acme/webapp:\n    pipelines:\n      ci:\n"
        f"        on: {{push: null}}\n{sandbox}        steps:\n"
        + "".join(f"          - {step}\n" for step in steps)
    )
    return path


def runs_and_steps(data_dir: Path) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    with sqlite3.connect(data_dir / "hookrunner.sqlite3") as database:
        runs = database.execute("SELECT status, detail FROM runner_run").fetchall()
        steps = database.execute("SELECT name, status FROM runner_step ORDER BY id").fetchall()
    return runs, steps


def test_ctrl_c_gives_a_running_step_its_grace_once(tmp_path, tmp_path_factory):
    # Outside tmp_path, which is the server's data folder, hidden from steps.
    marks = tmp_path_factory.mktemp("marks")
    started, finished = marks / "started", marks / "finished"
    pipelines = pipelines_with_steps(
        tmp_path,
        f"{{name: short, run: 'touch {started}; sleep 1; touch {finished}'}}",
        "{name: later, run: echo never}",
        writable=marks,
    )
    server = Server(tmp_path, PIPELINES_FILE=str(pipelines), WORKER_STOP_GRACE_SECONDS="5")
    try:
        assert server.post(SignedDelivery.of_fixture("push__branch", secret=server.secret())) == 202
        wait_for(started.exists, "the step started", 30)
        # A terminal delivers Ctrl-C to every process of the foreground group.
        assert server.stop(signal.SIGINT, whole_group=True) == 0
    finally:
        server.kill()
    assert finished.exists()
    assert runs_and_steps(tmp_path) == (
        [("cancelled", "the worker was stopped before step later")],
        [("short", "succeeded"), ("later", "skipped")],
    )
    output = server.text()
    assert output.count("worker stopping") == 1
    assert "a running step gets 5.0s to finish" in output


def test_a_second_ctrl_c_cancels_a_running_step_at_once_leaving_no_process_behind(tmp_path):
    pipelines = pipelines_with_steps(tmp_path, "{name: hang, run: 'sleep 300.3 & sleep 300.3'}")
    server = Server(tmp_path, PIPELINES_FILE=str(pipelines), WORKER_STOP_GRACE_SECONDS="600")
    try:
        assert server.post(SignedDelivery.of_fixture("push__branch", secret=server.secret())) == 202
        pgid = group_of("sleep 300.3")
        wait_for(
            lambda: len(group_members(pgid)) == 3 + SANDBOX_PROCESSES,
            "the shell and both sleeps running",
        )
        children = list(children_of(server.process.pid))
        os.killpg(server.process.pid, signal.SIGINT)
        server.wait_for_output("a running step gets 600.0s to finish")
        time.sleep(1)
        assert len(group_members(pgid)) == 3 + SANDBOX_PROCESSES, (
            "the step was cancelled before its grace was over"
        )
        second = time.monotonic()
        assert server.stop(signal.SIGINT, whole_group=True) == 0
        assert time.monotonic() - second < 10
        assert group_members(pgid) == []
        assert group_members(server.process.pid) == []
        assert [pid for pid in children if running(pid)] == []
    finally:
        server.kill()
    assert runs_and_steps(tmp_path) == (
        [("cancelled", "the worker was stopped during step hang")],
        [("hang", "cancelled")],
    )
    assert "a running step gets 0s to finish" in server.text()


def test_a_crashed_worker_is_restarted_with_backoff_and_said_so(server):
    first = server.child(WORKER)
    os.kill(first, signal.SIGKILL)
    server.wait_for_output("worker exited with -9 (SIGKILL); restarting in 1s (crash 1 in a row)")
    second = server.child(WORKER, other_than=(first,))
    # The restarted worker runs what is pushed.
    assert server.post(SignedDelivery.of_fixture("push__branch", secret=server.secret())) == 202
    assert ended_run(server.data_dir)[0] == "succeeded"
    os.kill(second, signal.SIGKILL)
    server.wait_for_output("worker exited with -9 (SIGKILL); restarting in 2s (crash 2 in a row)")
    # Stopped while waiting to restart the worker: a clean stop, and no worker started.
    assert server.stop(signal.SIGTERM) == 0
    assert server.text().count("restarting worker") == 1
    assert "Shutting down: Master" in server.text()


def test_a_crashed_gunicorn_is_restarted_and_so_is_a_worker_stopped_behind_serves_back(server):
    master = server.child(GUNICORN)
    os.kill(master, signal.SIGKILL)
    server.wait_for_output("gunicorn exited with -9 (SIGKILL); restarting in 1s (crash 1 in a row)")
    server.child(GUNICORN, other_than=(master,))
    ping = SignedDelivery.of_fixture("ping__default", secret=server.secret())

    def answered() -> bool:
        with contextlib.suppress(OSError):
            return server.post(ping) == 200
        return False

    wait_for(answered, "the restarted receiver answering", 30)
    # A child that exits on its own, even with 0, has crashed as far as serve knows.
    os.kill(server.child(WORKER), signal.SIGTERM)
    server.wait_for_output("worker exited with 0; restarting in 1s (crash 1 in a row)")
    assert server.stop(signal.SIGTERM) == 0


def test_restart_backoff_doubles_with_each_crash_in_a_row_and_gives_up_at_the_fifth():
    backoff = Backoff()
    assert [backoff.delay(crashes) for crashes in range(1, 6)] == [1, 2, 4, 8, None]
    assert backoff.in_a_row(3, ran_seconds=59) == 4
    # A child that ran a minute before it crashed starts a new row.
    assert backoff.in_a_row(4, ran_seconds=60) == 1


def test_a_worker_that_keeps_crashing_stops_serve_with_an_error_naming_it(server):
    killed: tuple[int, ...] = ()
    for _ in range(5):
        pid = server.child(WORKER, other_than=killed)
        os.kill(pid, signal.SIGKILL)
        killed += (pid,)
    assert server.process.wait(timeout=30) == 1
    server.kill()
    output = server.text()
    for crash, delay in enumerate([1, 2, 4, 8], start=1):
        assert (
            f"worker exited with -9 (SIGKILL); restarting in {delay}s (crash {crash} in a row)"
        ) in output
    assert "worker exited with -9 (SIGKILL): crash 5 in a row, giving up" in output
    assert "hookrunner stopped: worker crashed 5 times in a row (last exit: -9 (SIGKILL))" in output
    # The receiver was stopped, not left behind.
    assert "Shutting down: Master" in output
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()


def test_serve_uses_the_database_that_database_url_names(tmp_path):
    server = Server(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'elsewhere.sqlite3'}")
    assert server.post(SignedDelivery.of_fixture("ping__default", secret=server.secret())) == 200
    assert server.stop(signal.SIGTERM) == 0
    assert stored_deliveries(tmp_path, "elsewhere.sqlite3") == [("ping", "accepted")]
    assert not (tmp_path / "hookrunner.sqlite3").exists()


def test_generated_secret_is_kept_for_later_starts(tmp_path):
    path = tmp_path / "var" / "webhook-secret"
    first = ensure_secret_file(path)
    assert ensure_secret_file(path) == first
    assert path.stat().st_mode & 0o777 == 0o600


def test_receiver_and_worker_go_away_when_serve_itself_is_killed(server):
    children = [server.child(GUNICORN), server.child(WORKER)]
    server.process.kill()
    server.process.wait()

    def refused() -> bool:
        try:
            socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
        except OSError:
            return True
        return False

    wait_for(refused, "gunicorn going away with the serve process that started it")
    wait_for(
        lambda: not any(running(pid) for pid in children),
        "gunicorn and the worker going away with the serve process that started them",
    )


def test_invalid_pipelines_file_stops_serve_with_its_problems(tmp_path):
    broken = tmp_path / "pipelines.yaml"
    broken.write_text("repositories:\n  acme/webapp:\n    pipelines: {}\n")
    result = run_until_exit(
        ["manage.py", "serve"],
        DATA_DIR=str(tmp_path), PIPELINES_FILE=str(broken), PORT=str(free_port()),
    )  # fmt: skip
    assert result.returncode != 0
    assert f"{broken}:3: repositories.acme/webapp.pipelines: lists no pipeline" in result.stderr


def test_gunicorn_alone_refuses_to_start_with_an_invalid_pipelines_file(tmp_path):
    broken = tmp_path / "pipelines.yaml"
    broken.write_text("repositories: {acme/webapp: {pipelines: {}}}\n")
    config = BASE_DIR / "deploy" / "gunicorn.conf.py"
    result = run_until_exit(
        ["-m", "gunicorn", "-c", str(config)],
        DATA_DIR=str(tmp_path), PIPELINES_FILE=str(broken), PORT=str(free_port()),
        WEBHOOK_SECRET="s", DJANGO_SECRET_KEY="k",
    )  # fmt: skip
    assert result.returncode != 0
    assert "repositories.acme/webapp.pipelines: lists no pipeline" in result.stderr


def test_check_refuses_to_serve_without_a_webhook_secret(tmp_path):
    result = run_until_exit(["manage.py", "check"], DATA_DIR=str(tmp_path), DJANGO_SECRET_KEY="x")
    assert result.returncode == 1
    assert "hookrunner.E001" in result.stderr
    assert "Set WEBHOOK_SECRET" in result.stderr


def test_a_port_in_use_stops_serve_before_its_banner_saying_what_to_change(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = run_until_exit(["manage.py", "serve"], DATA_DIR=str(tmp_path), PORT=str(port))
    assert result.returncode != 0
    assert "hookrunner is starting" not in result.stdout
    assert (
        f"port {port} on 127.0.0.1 is already in use (another hookrunner, or another server); "
        f"stop it, or choose another port: PORT={port + 1} make run"
    ) in result.stderr
    assert "Traceback" not in result.stderr


def test_a_port_that_is_no_number_is_named(tmp_path):
    result = run_until_exit(["manage.py", "serve"], DATA_DIR=str(tmp_path), PORT="http")
    assert result.returncode != 0
    assert "PORT='http' is not a port number (1 to 65535)" in result.stderr


def test_served_admin_pages_get_their_css_without_collectstatic(server):
    assert not any((server.data_dir / "static").iterdir())
    url = f"http://127.0.0.1:{server.port}/static/admin/css/base.css"
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        assert b"body" in response.read()
