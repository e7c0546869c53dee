"""What a step can reach: each test a real step in a real bubblewrap sandbox, trying to
reach what it must not (docs/sandbox.md)."""

import ctypes
import socket
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection

from runner.models import WorkerSeen
from tests.conftest import SignedDelivery, executed, output_of
from tests.worker_processes import processes_running, worker_environment

pytestmark = pytest.mark.django_db

SERVER_SECRETS = ("test-webhook-secret", "test-django-secret-key")


def one_step(run: str, **pipeline: str) -> str:
    """acme/webapp's pipelines: one, `ci`, with one step running `run`."""
    keys = "".join(f"\n  {key}: {value}" for key, value in pipeline.items())
    step = textwrap.indent(run, "        ")
    triggers = "on: {push: null, pull_request: null}"
    return f"ci:\n  {triggers}{keys}\n  steps:\n    - name: try\n      run: |\n{step}\n"


def test_a_step_finds_nothing_of_the_servers_environment_in_any_process(pipelines, push):
    pipelines(
        one_step("""\
            tr '\\0' '\\n' < /proc/$PPID/environ
            for file in /proc/[0-9]*/environ; do tr '\\0' '\\n' < $file; done
            """)
    )
    (run,) = push()
    output = output_of(run.steps.get()).splitlines()
    assert run.status == "succeeded"
    assert "GITHUB_REPOSITORY=acme/webapp" in output  # it did read environments
    # The executing process (this one) has no name for its secrets in its environment's
    # pages, where the kernel shows them, but its whole start-up environment is there.
    assert not [line for line in server_environment() if line in output]


def test_without_a_sandbox_a_step_reads_the_servers_environment(pipelines, push):
    # Why sandbox: off is warned about: the step's parent is the server.
    pipelines(one_step("tr '\\0' '\\n' < /proc/$PPID/environ", sandbox="off"))
    (run,) = push()
    assert set(server_environment()) <= set(output_of(run.steps.get()).splitlines())


def server_environment() -> list[str]:
    """This process's environment as the kernel shows it, but for what steps get too."""
    lines = Path("/proc/self/environ").read_bytes().decode().split("\0")
    return [line for line in lines if line and line.split("=")[0] not in ("PATH", "LANG")]


def test_a_step_sees_no_hookrunner_process(pipelines, push):
    pipelines(one_step("ls /proc | grep -E '^[0-9]+$' | wc -l; cat /proc/1/cmdline | head -c 5"))
    (run,) = push()
    count, init = output_of(run.steps.get()).split("\n", 1)
    # The sandbox's own init (bwrap), the step's shell, ls, grep, wc: nothing else.
    assert int(count) <= 5
    assert init.startswith("bwrap")


def test_a_step_cannot_read_the_database_file(pipelines, push):
    database = Path(connection.settings_dict["NAME"])
    if connection.vendor != "sqlite":
        # On PostgreSQL the data is the server's, behind a password the step never sees;
        # the SQLite file a default install keeps stands in.
        database = Path(django_settings.DATA_DIR) / "hookrunner.sqlite3"
        database.write_bytes(b"SQLite format 3\0")
    pipelines(one_step(f"cat {database}"))
    (run,) = push()
    output = output_of(run.steps.get())
    assert run.status == "failed"
    assert "No such file or directory" in output
    assert "SQLite format 3" not in output


def test_a_step_cannot_read_the_data_or_configuration_folders(pipelines, push, tmp_path):
    data_file = Path(django_settings.DATA_DIR) / "webhook-secret-of-the-test"
    data_file.write_text("data-dir-secret")
    path = pipelines(one_step(f"ls -A {tmp_path / 'config'}; cat {data_file} || true"))
    (path.parent / "hookrunner.env").write_text("WEBHOOK_SECRET=config-dir-secret")
    (run,) = push()
    output = output_of(run.steps.get())
    assert run.status == "succeeded"
    assert "data-dir-secret" not in output
    assert "hookrunner.env" not in output and "pipelines.yaml" not in output
    assert f"{data_file}: No such file or directory" in output


def test_a_step_cannot_read_another_runs_workspace(pipelines, push, settings):
    other = Path(settings.WORKSPACES_DIR) / "run-999999" / "workspace"
    other.mkdir(parents=True)
    (other / "id_deploy").write_text("another run's key")
    pipelines(one_step(f"ls {settings.WORKSPACES_DIR}; cat {other}/id_deploy || true"))
    (run,) = push()
    output = output_of(run.steps.get())
    assert output.splitlines()[0] == f"run-{run.pk}"
    assert "another run's key" not in output


def test_a_step_and_its_checkout_cannot_read_another_repositorys_mirror(
    pipelines, post_delivery, settings, tmp_path
):
    settings.MIRRORS_DIR = tmp_path / "mirrors"
    other = settings.MIRRORS_DIR / "acme_private-0123456789ab.git"
    other.mkdir(parents=True)
    (other / "config").write_text("[remote] url = https://token@example.com/private")
    # The "ssh" git starts for the checkout tries it too, inside git's own sandbox.
    pipelines(f"""\
        ci:
          on: {{push: null}}
          checkout: true
          env: {{GIT_SSH_COMMAND: 'cat {other}/config; exit 1 #'}}
          steps: [{{name: read, run: 'cat {other}/config'}}]
        """)
    payload = SignedDelivery.of_fixture("push__branch")
    body = payload.body.replace(
        b"https://github.com/acme/webapp.git", b"ssh://git@example.invalid/acme/webapp.git"
    )
    (run_id,) = post_delivery(SignedDelivery("push", body, "mirror")).json()["runs"]
    run = executed(run_id)
    checkout = run.steps.first()
    assert checkout.status == "failed"
    assert f"{other}/config: No such file or directory" in output_of(checkout)
    assert "token@" not in output_of(checkout)


def test_what_a_step_starts_in_its_own_session_ends_with_it(pipelines, push):
    pipelines(one_step("setsid sleep 300.271 > /dev/null 2>&1 &\necho started"))
    (run,) = push()
    assert (run.status, output_of(run.steps.get())) == ("succeeded", "started\n")
    assert processes_running("sleep 300.271") == []


def test_a_deploy_step_writes_its_declared_path_and_nowhere_else(pipelines, push, tmp_path):
    www, elsewhere = tmp_path / "www", tmp_path / "elsewhere"
    www.mkdir()
    elsewhere.mkdir()
    pipelines(
        one_step(
            f"""\
            echo hello > {www}/index.html
            echo x > {elsewhere}/file || echo refused elsewhere
            touch /etc/hookrunner-was-here || echo refused /etc
            echo x > /var/tmp/hookrunner-was-here
            echo x > $HOME/.cache-of-this-run && echo HOME writable
            echo x > $GITHUB_WORKSPACE/built && echo workspace writable
            """,
            sandbox=f"{{writable: [{www}]}}",
        )
    )
    (run,) = push()
    output = output_of(run.steps.get())
    assert run.status == "succeeded"
    assert (www / "index.html").read_text() == "hello\n"
    assert "refused elsewhere" in output and "refused /etc" in output
    assert "HOME writable" in output and "workspace writable" in output
    assert list(elsewhere.iterdir()) == []
    assert not Path("/etc/hookrunner-was-here").exists()
    assert not Path("/var/tmp/hookrunner-was-here").exists()


@pytest.mark.parametrize("key", ["workdir", "sandbox"])
def test_a_writable_path_holding_a_hookrunner_folder_still_hides_it(
    pipelines, push, settings, tmp_path, key
):
    settings.MIRRORS_DIR = tmp_path / "site" / "mirrors"
    mirror = settings.MIRRORS_DIR / "acme_private-0123456789ab.git"
    mirror.mkdir(parents=True)
    (mirror / "config").write_text("a mirror's token")
    site = tmp_path / "site"
    where = f"{{writable: [{site}]}}" if key == "sandbox" else str(site)
    pipelines(one_step(f"touch {site}/deployed; cat {mirror}/config || true", **{key: where}))
    (run,) = push()
    assert run.status == "succeeded"
    assert (site / "deployed").exists()
    assert "a mirror's token" not in output_of(run.steps.get())


def test_a_declared_readonly_path_can_be_read_not_written(pipelines, push, tmp_path):
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "version").write_text("1.2.3\n")
    pipelines(
        one_step(
            f"cat {tools}/version; echo x > {tools}/version || echo refused",
            sandbox=f"{{readonly: [{tools}]}}",
        )
    )
    (run,) = push()
    assert output_of(run.steps.get()).splitlines()[0] == "1.2.3"
    assert output_of(run.steps.get()).endswith("refused\n")
    assert (tools / "version").read_text() == "1.2.3\n"


@pytest.fixture
def listener():
    """A TCP server on 127.0.0.1 that accepts connections: its port."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.listen(8)
        yield server.getsockname()[1]


CONNECT = "(exec 3<>/dev/tcp/127.0.0.1/{port}) && echo connected || echo no connection"


def test_a_pipeline_without_network_cannot_connect_to_the_host(pipelines, push, listener):
    pipelines(one_step(CONNECT.format(port=listener), sandbox="{network: false}"))
    (run,) = push()
    assert output_of(run.steps.get()).endswith("no connection\n")


def test_a_pipeline_has_the_network_unless_it_says_otherwise(pipelines, push, listener):
    pipelines(one_step(CONNECT.format(port=listener)))
    (run,) = push()
    assert output_of(run.steps.get()) == "connected\n"


def test_a_fork_pull_requests_step_sees_no_secret_by_any_path(
    pipelines, post_delivery, monkeypatch, tmp_path
):
    monkeypatch.setenv("DEPLOY_TOKEN", "ghp_the-deploy-token")
    env_file = pipelines(one_step(SNOOP, forks="true", secrets="[DEPLOY_TOKEN]")).parent
    (env_file / "hookrunner.env").write_text("DEPLOY_TOKEN=ghp_the-deploy-token\n")
    delivery = SignedDelivery.of_fixture("pull_request__from_fork")
    (run_id,) = post_delivery(delivery).json()["runs"]
    run = executed(run_id)
    output = output_of(run.steps.get())
    assert run.status == "succeeded"
    assert "GITHUB_HEAD_REF=" in output  # it did look
    assert not [secret for secret in ("ghp_the-deploy-token", *SERVER_SECRETS) if secret in output]


SNOOP = f"""\
env
for file in /proc/[0-9]*/environ; do tr '\\0' '\\n' < $file; done
grep -rs . {django_settings.DATA_DIR} /root /home /etc/hookrunner || true
grep -rsI ghp_ /tmp /var/tmp "$HOME" . || true
"""


def test_a_sandboxed_pipeline_fails_at_start_saying_what_to_install(pipelines, push, settings):
    settings.BWRAP = "/nonexistent/bwrap"
    pipelines(one_step("echo never"))
    (run,) = push()
    assert run.status == "error"
    assert "bubblewrap is not installed" in run.detail
    assert "apt-get install bubblewrap" in run.detail
    assert "sandbox: off in pipeline ci" in run.detail


def test_a_pipeline_with_sandbox_off_runs_without_bwrap(pipelines, push, settings):
    settings.BWRAP = "/nonexistent/bwrap"
    pipelines(one_step("echo ran", sandbox="off"))
    (run,) = push()
    assert (run.status, output_of(run.steps.get())) == ("succeeded", "ran\n")


def test_a_sandboxed_step_past_its_timeout_gets_sigterm_and_its_grace(pipelines, push, settings):
    settings.STEP_KILL_GRACE_SECONDS = 5
    pipelines(
        one_step(
            "trap 'echo cleaning up; exit 3' TERM\necho waiting\nsleep 300 & wait",
            timeout="1s",
        )
    )
    (run,) = push()
    assert run.status == "timed_out"
    assert output_of(run.steps.get()) == "waiting\ncleaning up\n"


@pytest.mark.django_db(transaction=True)
def test_the_worker_keeps_its_environment_from_processes_without_root_powers(
    pipelines, worker_processes, tmp_path, settings
):
    path = pipelines(one_step("true"))
    # Both as root without capabilities, as a user without root's would be: a process of
    # the same user can read another's environment, unless that one is not dumpable.
    worker = worker_processes.start(
        worker_environment(path, tmp_path / "workspaces"), prefix=WITHOUT_CAPABILITIES
    )
    wait_for(lambda: WorkerSeen.objects.exists())
    sleeper = subprocess.Popen([*WITHOUT_CAPABILITIES, "sleep", "30"])
    # Until setpriv has become sleep, it is a process with root's powers.
    wait_for(lambda: Path(f"/proc/{sleeper.pid}/cmdline").read_bytes().startswith(b"sleep"))
    try:
        readable = read_environ_without_capabilities(sleeper.pid)
        refused = read_environ_without_capabilities(worker.pid)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert readable.returncode == 0
    assert refused.returncode != 0
    assert b"Permission denied" in refused.stderr
    assert b"test-webhook-secret" not in refused.stdout


WITHOUT_CAPABILITIES = ("setpriv", "--bounding-set=-all", "--inh-caps=-all")


def test_every_hookrunner_process_is_not_dumpable():
    # This one too: Django's start-up (runner.apps) made it so.
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0


PR_GET_DUMPABLE = 3


def read_environ_without_capabilities(pid: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*WITHOUT_CAPABILITIES, "cat", f"/proc/{pid}/environ"], capture_output=True
    )


def wait_for(condition, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
