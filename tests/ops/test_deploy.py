"""The production assets: install script, systemd units, environment example, nginx."""

import os
import re
import runpy
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from runner.admin import manual
from runner.models import Delivery, Run
from tests.worker_processes import database_url

BASE_DIR = Path(__file__).resolve().parents[2]
INSTALL = BASE_DIR / "deploy" / "install.sh"
UNITS = "etc/systemd/system"
SERVICES = (
    "hookrunner-web.service",
    "hookrunner-worker@.service",
    "hookrunner-purge.service",
    "hookrunner-reconcile@.service",
)
TIMERS = ("hookrunner-purge.timer", "hookrunner-reconcile@.timer")
ONESHOTS = ("hookrunner-purge.service", "hookrunner-reconcile@.service")
# Instances verified by systemd-analyze. It cannot take a name with ":" (it puts the
# arguments in a ":"-separated search path), so default:deploy is checked by running it.
INSTANCES = ("default", "deploy", "all")


# install.sh's own settings: the tests' DATA_DIR, say, must not reach it unasked.
INSTALL_SETTINGS = (
    "APP_DIR",
    "CONFIG_DIR",
    "DATA_DIR",
    "UNIT_DIR",
    "PYTHON",
    "ENABLE",
    "MIGRATE",
    "DESTDIR",
)
# Variables the system sets, which code may read, but no setting of hookrunner's.
SYSTEM_VARIABLES = {"USER", "LOGNAME", "HOME", "PATH", "LANG"}


def clean_environment(**env: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if k not in INSTALL_SETTINGS}, **env}


def install(root: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [INSTALL], env=clean_environment(DESTDIR=str(root), **env),
        check=True, capture_output=True, text=True,
    )  # fmt: skip


def snapshot(root: Path) -> dict[str, tuple[int, bytes]]:
    return {
        str(path.relative_to(root)): (
            stat.S_IMODE(path.lstat().st_mode),
            path.read_bytes() if path.is_file() else b"",
        )
        for path in sorted(root.rglob("*"))
    }


def unit_settings(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            name, value = line.split("=", 1)
            found.setdefault(name, []).append(value)
    return found


@pytest.fixture(scope="module")
def staged(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("root")
    install(root)
    return root


def test_install_script_stages_units_with_real_paths_and_a_private_env_file(tmp_path):
    install(tmp_path, APP_DIR="/srv/hookrunner", DATA_DIR="/srv/data", CONFIG_DIR="/etc/hr")
    web = (tmp_path / UNITS / "hookrunner-web.service").read_text()
    assert "ExecStart=/srv/hookrunner/.venv/bin/python -m gunicorn" in web
    assert "EnvironmentFile=/etc/hr/hookrunner.env" in web
    assert "ReadWritePaths=/srv/data\n" in web
    worker = (tmp_path / UNITS / "hookrunner-worker@.service").read_text()
    assert "exec /srv/hookrunner/.venv/bin/python manage.py worker --queues" in worker
    timer = (tmp_path / UNITS / "hookrunner-purge.timer").read_text()
    assert "OnCalendar=daily" in timer
    purge = (tmp_path / UNITS / "hookrunner-purge.service").read_text()
    assert "ExecStart=/srv/hookrunner/.venv/bin/python manage.py purge" in purge
    for unit in (tmp_path / UNITS).iterdir():
        assert not re.search(r"@[A-Z_]+@", unit.read_text()), unit.name
        assert stat.S_IMODE(unit.stat().st_mode) == 0o644
    assert sorted(path.name for path in (tmp_path / UNITS).iterdir()) == sorted(
        [*SERVICES, *TIMERS]
    )
    env_file = tmp_path / "etc/hr/hookrunner.env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o640
    # The example with this install's folders; a staged file carries no secrets of its own.
    example = (BASE_DIR / "deploy/hookrunner.env.example").read_text()
    example = example.replace("\nDATA_DIR=/var/lib/hookrunner\n", "\nDATA_DIR=/srv/data\n")
    example = example.replace(
        "\nPIPELINES_FILE=/etc/hookrunner/pipelines.yaml\n",
        "\nPIPELINES_FILE=/etc/hr/pipelines.yaml\n",
    )
    assert env_file.read_text() == example
    assert "\nDJANGO_SECRET_KEY=\n" in example
    assert (tmp_path / "etc/hr/pipelines.yaml").exists()
    assert (tmp_path / "srv/hookrunner/manage.py").exists()
    assert os.access(tmp_path / "srv/hookrunner/deploy/manage.sh", os.X_OK)
    assert stat.S_IMODE((tmp_path / "srv/data").stat().st_mode) == 0o750
    for left_out in (".venv", ".git", "var", "hookrunner.egg-info", "runner/__pycache__"):
        assert not (tmp_path / "srv/hookrunner" / left_out).exists()


def test_install_script_keeps_an_existing_env_file_and_pipelines(tmp_path):
    config = tmp_path / "etc/hookrunner"
    config.mkdir(parents=True)
    (config / "hookrunner.env").write_text("WEBHOOK_SECRET=kept\n")
    (config / "pipelines.yaml").write_text("repositories: {}\n")
    install(tmp_path)
    assert (config / "hookrunner.env").read_text() == "WEBHOOK_SECRET=kept\n"
    assert (config / "pipelines.yaml").read_text() == "repositories: {}\n"


def test_install_script_run_twice_changes_nothing_and_removes_only_what_it_installed(tmp_path):
    install(tmp_path)
    first = snapshot(tmp_path)
    install(tmp_path)
    assert snapshot(tmp_path) == first
    # A file an earlier version installed, gone from the checkout, is removed on upgrade;
    # a file the install never made (compiled code, say) is left alone.
    app = tmp_path / "opt/hookrunner"
    (app / "runner/migrations/0999_removed.py").write_text("")
    manifest = app / ".installed-files"
    listed = [*manifest.read_text().splitlines(True), "./runner/migrations/0999_removed.py\n"]
    manifest.write_text("".join(sorted(listed)))
    (app / "runner/__pycache__").mkdir()
    (app / "runner/__pycache__/x.pyc").write_bytes(b"")
    install(tmp_path)
    assert not (app / "runner/migrations/0999_removed.py").exists()
    assert (app / "runner/__pycache__/x.pyc").exists()
    assert manifest.read_text() == first["opt/hookrunner/.installed-files"][1].decode()


def test_install_script_drops_the_replaced_non_template_worker_unit(tmp_path):
    (tmp_path / UNITS).mkdir(parents=True)
    (tmp_path / UNITS / "hookrunner-worker.service").write_text("[Service]\n")
    install(tmp_path)
    assert not (tmp_path / UNITS / "hookrunner-worker.service").exists()
    assert (tmp_path / UNITS / "hookrunner-worker@.service").exists()


def test_install_script_says_what_to_do_without_python_3_12_before_changing_anything(tmp_path):
    old_python = tmp_path / "python3.11"
    old_python.write_text("#!/bin/sh\nexit 1\n")  # sys.version_info < (3, 12): exit 1
    old_python.chmod(0o755)
    folders = {name: str(tmp_path / name.lower()) for name in ("APP_DIR", "CONFIG_DIR", "DATA_DIR")}
    env = clean_environment(PYTHON=str(old_python), UNIT_DIR=str(tmp_path / "units"), **folders)
    result = subprocess.run([INSTALL], env=env, capture_output=True, text=True)
    assert result.returncode != 0
    if os.geteuid() == 0:
        assert f"PYTHON={old_python} is not a Python 3.12 or newer." in result.stderr
        assert "sudo PYTHON=" in result.stderr
    else:
        assert "run me as root" in result.stderr
    assert sorted(tmp_path.iterdir()) == [old_python]


def test_units_are_hardened_restart_on_failure_and_read_the_env_file(staged):
    for name in SERVICES:
        found = unit_settings((staged / UNITS / name).read_text())
        assert found["User"] == ["hookrunner"], name
        assert found["EnvironmentFile"] == ["/etc/hookrunner/hookrunner.env"], name
        assert found["NoNewPrivileges"] == ["true"], name
        assert found["PrivateTmp"] == ["true"], name
        assert found["ProtectSystem"] == ["strict"], name
        assert found["ProtectHome"] == ["true"], name
        assert found["ReadWritePaths"] == ["/var/lib/hookrunner"], name
        if name not in ONESHOTS:
            assert found["KillMode"] == ["mixed"], name
            assert found["Restart"] == ["on-failure"], name
            assert found["WantedBy"] == ["multi-user.target"], name


# Settings that keep an unprivileged bwrap from starting a sandbox: no user namespaces, or
# a /proc partly covered, which the kernel will then not mount afresh.
SANDBOX_BREAKERS = ("RestrictNamespaces", "PrivateUsers", "ProtectKernelTunables", "ProtectProc",
                    "ProcSubset")  # fmt: skip


def test_the_worker_unit_lets_bwrap_build_its_sandboxes(staged):
    found = unit_settings((staged / UNITS / "hookrunner-worker@.service").read_text())
    assert [name for name in SANDBOX_BREAKERS if name in found] == []


def test_an_unprivileged_bwrap_cannot_mount_proc_once_part_of_it_is_covered():
    # What ProtectKernelTunables=true does (it remounts /proc/sys read-only), in a mount
    # namespace of this test's own; the worker runs as the unprivileged user hookrunner.
    as_unprivileged = "runuser -u nobody -- bwrap --ro-bind / / --unshare-pid --proc /proc true"
    covered = "mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys && "
    plain = subprocess.run(["unshare", "-m", "sh", "-c", as_unprivileged], capture_output=True)
    refused = subprocess.run(
        ["unshare", "-m", "sh", "-c", covered + as_unprivileged], capture_output=True
    )
    assert plain.returncode == 0, plain.stderr
    assert refused.returncode != 0
    assert b"Can't mount proc" in refused.stderr


def test_a_ref_looked_up_in_a_web_request_gives_up_before_nginx_does():
    conf = (BASE_DIR / "deploy" / "nginx.conf").read_text()
    (read_timeout,) = re.findall(r"proxy_read_timeout (\d+)s;", conf)
    assert int(read_timeout) >= manual.RESOLVE_SECONDS + 10


def test_stop_timeouts_outlast_the_graceful_stops(staged):
    worker = unit_settings((staged / UNITS / "hookrunner-worker@.service").read_text())
    # The worker's own stop: the step's grace, then its kill grace, then recording it.
    grace = settings.WORKER_STOP_GRACE_SECONDS + settings.STEP_KILL_GRACE_SECONDS
    assert int(worker["TimeoutStopSec"][0]) >= grace + 10
    web = unit_settings((staged / UNITS / "hookrunner-web.service").read_text())
    gunicorn = runpy.run_path(str(BASE_DIR / "deploy/gunicorn.conf.py"))
    assert int(web["TimeoutStopSec"][0]) >= gunicorn["graceful_timeout"] + 10


@pytest.mark.parametrize(
    ("instance", "queues"),
    [
        ("default", "default"),
        ("deploy", "deploy"),
        ("default:deploy", "default,deploy"),
        ("build.arm_64-x", "build.arm_64-x"),
        ("all", "*"),
    ],
)
def test_the_worker_instance_name_says_its_queues(tmp_path, instance, queues):
    app = tmp_path / "app"
    install(tmp_path / "root", APP_DIR=str(app))
    (app / ".venv/bin").mkdir(parents=True)
    (app / ".venv/bin/python").write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    (app / ".venv/bin/python").chmod(0o755)
    unit = (tmp_path / "root" / UNITS / "hookrunner-worker@.service").read_text()
    (exec_start,) = unit_settings(unit)["ExecStart"]
    # What systemd does with the line: %I is the instance name, $$ a literal $.
    argv = [word.replace("$$", "$") for word in shlex.split(exec_start.replace("%I", instance))]
    result = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, check=True)
    assert result.stdout.splitlines() == ["manage.py", "worker", "--queues", queues]


def test_systemd_analyze_verify_passes_on_every_unit_as_installed(staged, tmp_path):
    """systemd-analyze verify, on the units installed into a scratch root (--root): it needs
    no running systemd. It checks that each Exec* program exists in that root, so the
    root gets systemd's own units, copies of the system programs the units run (which
    must exist here, on Debian), and a stand-in for the venv's python, which only a real
    install builds. Its warnings leave the exit code 0: any output fails the test."""
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: `make test` installs Debian's systemd package"
    root = tmp_path / "root"
    shutil.copytree(staged, root, symlinks=True)
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    for name in (*SERVICES, *TIMERS):
        for value in re.findall(r"^Exec\w+=[-@:+!]*(\S+)", (root / UNITS / name).read_text(), re.M):
            program = root / value.lstrip("/")
            program.parent.mkdir(parents=True, exist_ok=True)
            if value.startswith("/opt/hookrunner/.venv/"):
                program.write_text("#!/bin/sh\n")
            else:
                assert os.access(value, os.X_OK), f"{name} runs {value}, which is not here"
                shutil.copy(value, program)
            program.chmod(0o755)

    def verify(*units: str) -> str:
        result = subprocess.run(
            [analyze, "verify", f"--root={root}", *units], capture_output=True, text=True
        )
        return f"exit {result.returncode}\n{result.stdout}{result.stderr}"

    units = [
        "hookrunner-web.service",
        *(f"hookrunner-worker@{instance}.service" for instance in INSTANCES),
        "hookrunner-purge.service",
        "hookrunner-purge.timer",
        "hookrunner-reconcile@acme-webapp.service",
        "hookrunner-reconcile@acme-webapp.timer",
    ]
    assert verify(*units) == "exit 0\n"
    # Enabled as install.sh enables them (systemctl works offline on a root too), and
    # verified again with their [Install] links in place.
    enable = ["hookrunner-web.service", "hookrunner-worker@default:deploy.service",
              "hookrunner-worker@all.service", "hookrunner-purge.timer"]  # fmt: skip
    subprocess.run(
        ["systemctl", f"--root={root}", "enable", *enable], check=True, capture_output=True
    )
    wants = root / UNITS / "multi-user.target.wants"
    assert (wants / "hookrunner-worker@default:deploy.service").readlink() == Path(
        "/etc/systemd/system/hookrunner-worker@.service"
    )
    assert (root / UNITS / "timers.target.wants/hookrunner-purge.timer").is_symlink()
    assert verify(*units) == "exit 0\n"
    # The check sees what it must: a misspelt setting is only a warning, and it shows.
    web = root / UNITS / "hookrunner-web.service"
    web.write_text(web.read_text().replace("KillMode=mixed", "KilMode=mixed"))
    assert "Unknown key 'KilMode'" in verify("hookrunner-web.service")


def test_env_example_names_every_setting_and_is_read_as_systemd_reads_it():
    example = (BASE_DIR / "deploy" / "hookrunner.env.example").read_text()
    for name in ("DJANGO_SECRET_KEY=", "WEBHOOK_SECRET=", "PUBLIC_URL=", "DATA_DIR="):
        assert f"\n{name}" in example
    read = set()
    sources = [*(BASE_DIR / "runner").rglob("*.py"), BASE_DIR / "deploy" / "gunicorn.conf.py"]
    for source in sources:
        text = source.read_text()
        read |= set(re.findall(r"\benv_\w+\(\s*\"([A-Z][A-Z0-9_]*)\"", text))
        read |= {f"{name}_FILE" for name in re.findall(r"\benv_secret\(\s*\"(\w+)\"", text)}
        read |= set(re.findall(r"os\.environ\.get\(\s*[\"']([A-Z][A-Z0-9_]*)[\"']", text))
    read.add("FORWARDED_ALLOW_IPS")  # gunicorn's own
    read -= SYSTEM_VARIABLES
    assert {"DATABASE_URL", "WORKER_STOP_GRACE_SECONDS", "WEB_WORKERS"} <= read
    assert not {name for name in read if not re.search(rf"\b{name}\b", example)}
    # systemd's EnvironmentFile= takes NAME=value lines and whole-line comments only.
    for line in example.splitlines():
        assert not line or line.startswith("#") or re.fullmatch(r"[A-Z][A-Z0-9_]*=\S*", line)


def test_nginx_example_passes_bodies_and_github_headers_through():
    conf = (BASE_DIR / "deploy" / "nginx.conf").read_text()
    directives = [line.split("#")[0].strip() for line in conf.splitlines()]
    (size,) = [d for d in directives if d.startswith("client_max_body_size ")]
    assert int(re.fullmatch(r"client_max_body_size (\d+)m;", size)[1]) >= 25
    set_headers = {d.split()[1] for d in directives if d.startswith("proxy_set_header ")}
    assert set_headers == {"Host", "X-Forwarded-For", "X-Forwarded-Proto"}
    assert "proxy_request_buffering on;" in directives
    assert "proxy_pass http://hookrunner;" in directives
    assert "listen 443 ssl;" in directives
    for forbidden in ("proxy_pass_request_headers", "proxy_pass_request_body", "proxy_set_body",
                      "proxy_hide_header", "more_set_input_headers"):  # fmt: skip
        assert not [d for d in directives if d.startswith(forbidden)]


def test_nginx_example_is_valid_for_nginx(tmp_path):
    """`nginx -t` on the example, its certificate paths replaced by a self-signed pair."""
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    assert nginx, "nginx is missing: `make test` installs Debian's nginx-light package"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=ci.example.com", "-keyout", tmp_path / "key.pem",
         "-out", tmp_path / "cert.pem"],
        check=True, capture_output=True,
    )  # fmt: skip
    site = (BASE_DIR / "deploy" / "nginx.conf").read_text()
    site = site.replace(
        "/etc/letsencrypt/live/ci.example.com/fullchain.pem", f"{tmp_path}/cert.pem"
    )
    site = site.replace("/etc/letsencrypt/live/ci.example.com/privkey.pem", f"{tmp_path}/key.pem")
    (tmp_path / "site.conf").write_text(site)
    temp_paths = " ".join(
        f"{kind}_temp_path {tmp_path}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{ access_log off; {temp_paths} include {tmp_path}/site.conf; }}\n"
    )
    result = subprocess.run(
        [nginx, "-t", "-p", tmp_path, "-c", tmp_path / "nginx.conf"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_make_says_what_to_install_when_no_python_3_12_is_found(tmp_path):
    for name in ("Makefile", "pyproject.toml", "constraints.txt"):
        shutil.copy(BASE_DIR / name, tmp_path / name)
    result = subprocess.run(
        ["make", "PYTHON=", "test"], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "hookrunner needs Python 3.12 or newer, and none was found." in result.stdout
    assert "make PYTHON=/path/to/python3.12" in result.stdout
    assert not (tmp_path / ".venv").exists()


def test_caddy_example_proxies_to_gunicorn_and_leaves_bodies_and_headers_alone():
    """What deploy/Caddyfile.example says, read as text: `caddy` itself is not installed
    by `make test` (docs/deploy.md has the commands that check it)."""
    caddyfile = (BASE_DIR / "deploy" / "Caddyfile.example").read_text()
    directives = [line.split("#")[0].strip() for line in caddyfile.splitlines()]
    directives = [d for d in directives if d]
    assert directives[0] == "ci.example.com {"
    assert "reverse_proxy 127.0.0.1:8000 {" in directives
    assert "keepalive off" in directives
    # hookrunner answers a body above WEBHOOK_MAX_BODY_BYTES itself; headers go through.
    for changes in ("request_body", "max_size", "header_up", "header_down", "rewrite"):
        assert not [d for d in directives if d.startswith(changes)], changes


POST_RECEIVE = BASE_DIR / "deploy" / "post-receive.example"
ZERO = "0" * 40


@pytest.mark.django_db(transaction=True)
def test_post_receive_example_queues_a_run_for_each_branch_or_tag_pushed(tmp_path):
    """The hook, installed in a bare repository, run by real pushes: each branch or tag
    pushed becomes a `manage.py trigger` of this repository (named after its folders)
    on the test database; a deletion runs nothing."""
    bare = tmp_path / "git" / "acme" / "webapp.git"
    work = tmp_path / "work"
    pipelines = tmp_path / "config" / "pipelines.yaml"
    pipelines.parent.mkdir()
    pipelines.write_text(
        "repositories:\n"
        "  acme/webapp:\n"
        f"    clone_url: {bare}\n"
        "    pipelines:\n"
        "      test:\n"
        '        on: {push: {branches: ["**"], tags: ["v*"]}}\n'
        "        steps: [{name: test, run: make test}]\n"
    )
    # git's environment reaches the hook: hookrunner's settings for the test database,
    # and no git configuration of this machine's.
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "PIPELINES_FILE": str(pipelines),
        "HOOKRUNNER_MANAGE": f"{sys.executable} {BASE_DIR / 'manage.py'}",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "octocat",
        "GIT_AUTHOR_EMAIL": "octocat@example.com",
        "GIT_COMMITTER_NAME": "octocat",
        "GIT_COMMITTER_EMAIL": "octocat@example.com",
    }

    def git(*args: str, cwd: Path = work) -> str:
        result = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        return result.stdout + result.stderr

    bare.parent.mkdir(parents=True)
    git("init", "--quiet", "--bare", str(bare), cwd=tmp_path)
    shutil.copy(POST_RECEIVE, bare / "hooks" / "post-receive")
    (bare / "hooks" / "post-receive").chmod(0o755)
    git("init", "--quiet", str(work), cwd=tmp_path)
    git("commit", "--quiet", "--allow-empty", "-m", "first")
    first = git("rev-parse", "HEAD").strip()

    pushed = git("push", str(bare), "HEAD:refs/heads/main")
    (run,) = Run.objects.all()
    assert (run.repository, run.pipeline, run.ref, run.sha) == (
        "acme/webapp", "test", "refs/heads/main", first,
    )  # fmt: skip
    assert f"remote: queued runs {run.pk}" in pushed
    delivery = Delivery.objects.get()
    assert delivery.delivery_id.startswith("local-")
    assert (delivery.payload["before"], delivery.payload["after"]) == (ZERO, first)

    git("commit", "--quiet", "--allow-empty", "-m", "second")
    second = git("rev-parse", "HEAD").strip()
    git("tag", "v1")
    git("push", str(bare), "HEAD:refs/heads/main", "refs/tags/v1")
    runs = Run.objects.exclude(pk=run.pk).order_by("ref")
    assert [(r.ref, r.sha) for r in runs] == [("refs/heads/main", second), ("refs/tags/v1", second)]
    update = Delivery.objects.get(payload__ref="refs/heads/main", payload__after=second)
    assert update.payload["before"] == first

    deleted = git("push", str(bare), ":refs/tags/v1")
    assert "remote: hookrunner: refs/tags/v1 was deleted: nothing to run" in deleted
    assert Run.objects.count() == 3
