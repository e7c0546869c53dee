"""Start the embedded hookrunner: migrate, then run and supervise receiver and worker."""

import ctypes
import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from runner.config.env import env_bool, env_secret
from runner.ops.local_setup import (
    ADMIN_USERNAME,
    AdminLogin,
    ensure_admin_login,
    ensure_secret_file,
)

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In the child: ask Linux for SIGTERM when serve dies, even by SIGKILL."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Command(BaseCommand):
    help = "Migrate, then run the receiver (gunicorn) and a worker until SIGTERM or Ctrl-C."
    # Checks run in the migrate child, after the secrets below exist.
    requires_system_checks = []

    def handle(self, *args, **options) -> None:
        create_admin_login = self._admin_login_wanted()
        webhook_secret = self._ensure_secrets()
        self._manage("migrate", "--no-input", "--verbosity", "0")
        self._manage("collectstatic", "--no-input", "--verbosity", "0")
        admin_login = ensure_admin_login(create=create_admin_login)
        # The children open their own connections; serve needs none while it supervises.
        connections.close_all()
        self._print_banner(webhook_secret, admin_login, create_admin_login)
        exit_code = self._supervise(self._start_children())
        if exit_code:
            raise CommandError(f"hookrunner stopped: a child process exited with {exit_code}")

    def _admin_login_wanted(self) -> bool:
        """ADMIN_LOGIN=off: never create a superuser; say how to create one instead."""
        try:
            return env_bool("ADMIN_LOGIN", default=True)
        except ImproperlyConfigured as error:
            raise CommandError(str(error)) from None

    def _ensure_secrets(self) -> str:
        """Generate into DATA_DIR each secret that neither the environment nor a file holds."""
        if not env_secret("DJANGO_SECRET_KEY", settings.SECRET_KEY_FILE):
            ensure_secret_file(settings.SECRET_KEY_FILE)
        return settings.WEBHOOK_SECRET or ensure_secret_file(settings.WEBHOOK_SECRET_FILE)

    def _manage(self, *arguments: str) -> None:
        result = subprocess.run([sys.executable, "-m", "django", *arguments], check=False)
        if result.returncode:
            raise CommandError(f"`manage.py {arguments[0]}` failed; see the messages above")

    def _print_banner(self, webhook_secret: str, login: AdminLogin, create: bool) -> None:
        host = os.environ.get("HOST", "127.0.0.1")
        base = f"http://{host}:{os.environ.get('PORT', '8000')}"
        manage = f"{sys.executable} manage.py"
        self.stdout.write(
            "\nhookrunner is starting\n"
            f"  webhook URL     {base}/{settings.WEBHOOK_PATH}  (content type: application/json)\n"
            f"  webhook secret  {webhook_secret}\n"
            f"  pipelines       {settings.PIPELINES_FILE}\n"
            f"  database        {settings.DATABASES['default']['NAME']}\n"
            f"  worker          runs every queue, in {settings.WORKSPACES_DIR}\n"
            f"  admin           {base}/admin/\n"
            f"{self._admin_login_lines(login, create, manage)}"
            f"  check it        {manage} selftest --url {base}/"
            f"{settings.WEBHOOK_PATH}\n"
            "Stop with Ctrl-C.\n"
        )
        self.stdout.flush()

    @staticmethod
    def _admin_login_lines(login: AdminLogin, create: bool, manage: str) -> str:
        """How to log in to admin; a password only when it was created just now."""
        if login.username is None:
            why = "ADMIN_LOGIN=off" if not create else f"user {ADMIN_USERNAME} is no superuser"
            return f"  admin login     none ({why}); create one: {manage} createsuperuser\n"
        if login.password is None:
            first = f"  admin login     as {login.username}  (password not shown here)\n"
        else:
            first = (
                f"  admin login     user {login.username}  password {login.password}\n"
                "                  (created now, shown only this once, stored only hashed"
                " in the database)\n"
            )
        return (
            f"{first}"
            f"                  change the password: {manage} changepassword {login.username}\n"
            f"                  add a login: {manage} createsuperuser\n"
        )

    def _start_children(self) -> list[subprocess.Popen]:
        config = settings.BASE_DIR / "deploy" / "gunicorn.conf.py"
        gunicorn = [sys.executable, "-m", "gunicorn", "-c", str(config)]
        # The embedded worker takes every queue; 0.1 s polls measured a 48 ms p50 start.
        worker = [sys.executable, "-m", "django", "worker", "--queues", "*", "--interval", "0.1"]
        return [
            subprocess.Popen(command, preexec_fn=die_with_parent) for command in (gunicorn, worker)
        ]

    def _supervise(self, children: list[subprocess.Popen]) -> int:
        stopping = []

        def stop(signum, frame) -> None:
            stopping.append(signum)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(0.2)
        for child in children:
            if child.poll() is None:
                child.terminate()
        # The worker may give its running step its grace, then the step's own to die.
        grace = settings.WORKER_STOP_GRACE_SECONDS + settings.STEP_KILL_GRACE_SECONDS + 5
        deadline = time.monotonic() + grace
        for child in children:
            try:
                child.wait(timeout=max(deadline - time.monotonic(), 0))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if stopping:
            return 0
        return next(child.returncode for child in children if child.returncode is not None)
