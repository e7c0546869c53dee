"""Start the embedded hookrunner: migrate, then run receiver and worker under
runner.ops.supervisor (restarted when they crash, stopped on SIGTERM or Ctrl-C)."""

import os
import subprocess
import sys

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
    port_taken,
)
from runner.ops.supervisor import Supervisor


class Command(BaseCommand):
    help = "Migrate, then run the receiver (gunicorn) and a worker until SIGTERM or Ctrl-C."
    # Checks run in the migrate child, after the secrets below exist.
    requires_system_checks = []

    def handle(self, *args, **options) -> None:
        if problem := port_taken(*self._address()):
            raise CommandError(problem)
        create_admin_login = self._admin_login_wanted()
        webhook_secret = self._ensure_secrets()
        self._manage("migrate", "--no-input", "--verbosity", "0")
        # WhiteNoise finds admin's files where they are installed (WHITENOISE_USE_FINDERS).
        settings.STATIC_ROOT.mkdir(parents=True, exist_ok=True)
        admin_login = ensure_admin_login(create=create_admin_login)
        # The children open their own connections; serve needs none while it supervises.
        connections.close_all()
        self._print_banner(webhook_secret, admin_login, create_admin_login)
        # The worker may give its running step its grace, then the step's own to die.
        stop_seconds = settings.WORKER_STOP_GRACE_SECONDS + settings.STEP_KILL_GRACE_SECONDS + 5
        gave_up = Supervisor(self._children(), stop_seconds).run()
        if gave_up:
            raise CommandError(f"hookrunner stopped: {gave_up}")

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

    @staticmethod
    def _address() -> tuple[str, int]:
        """Where gunicorn listens (deploy/gunicorn.conf.py reads the same variables)."""
        port = os.environ.get("PORT") or "8000"
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise CommandError(f"PORT={port!r} is not a port number (1 to 65535)")
        return os.environ.get("HOST") or "127.0.0.1", int(port)

    def _print_banner(self, webhook_secret: str, login: AdminLogin, create: bool) -> None:
        host, port = self._address()
        base = f"http://{host}:{port}"
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

    def _children(self) -> dict[str, list[str]]:
        config = settings.BASE_DIR / "deploy" / "gunicorn.conf.py"
        return {
            "gunicorn": [sys.executable, "-m", "gunicorn", "-c", str(config)],
            # The embedded worker takes every queue.
            "worker": [sys.executable, "-m", "django", "worker", "--queues", "*"],
        }  # fmt: skip
