"""Start the embedded hookrunner: migrate, then run and supervise receiver and worker."""

import ctypes
import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from runner.env import env_secret
from runner.local_setup import ensure_secret_file

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
        webhook_secret = self._ensure_secrets()
        self._manage("migrate", "--no-input", "--verbosity", "0")
        self._manage("collectstatic", "--no-input", "--verbosity", "0")
        self._print_banner(webhook_secret)
        exit_code = self._supervise(self._start_children())
        if exit_code:
            raise CommandError(f"hookrunner stopped: a child process exited with {exit_code}")

    def _ensure_secrets(self) -> str:
        """Generate into DATA_DIR each secret that neither the environment nor a file holds."""
        if not env_secret("DJANGO_SECRET_KEY", settings.SECRET_KEY_FILE):
            ensure_secret_file(settings.SECRET_KEY_FILE)
        return settings.WEBHOOK_SECRET or ensure_secret_file(settings.WEBHOOK_SECRET_FILE)

    def _manage(self, *arguments: str) -> None:
        result = subprocess.run([sys.executable, "-m", "django", *arguments], check=False)
        if result.returncode:
            raise CommandError(f"`manage.py {arguments[0]}` failed; see the messages above")

    def _print_banner(self, webhook_secret: str) -> None:
        host = os.environ.get("HOST", "127.0.0.1")
        base = f"http://{host}:{os.environ.get('PORT', '8000')}"
        self.stdout.write(
            "\nhookrunner is starting\n"
            f"  webhook URL     {base}/{settings.WEBHOOK_PATH}  (content type: application/json)\n"
            f"  webhook secret  {webhook_secret}\n"
            f"  pipelines       {settings.PIPELINES_FILE}\n"
            f"  database        {settings.DATABASES['default']['NAME']}\n"
            f"  worker          runs every queue, in {settings.WORKSPACES_DIR}\n"
            f"  admin           {base}/admin/  (create a login: "
            f"{sys.executable} manage.py createsuperuser)\n"
            f"  check it        {sys.executable} manage.py selftest --url {base}/"
            f"{settings.WEBHOOK_PATH}\n"
            "Stop with Ctrl-C.\n"
        )
        self.stdout.flush()

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
