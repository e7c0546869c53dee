"""Sign a ping with the configured secret, post it to the receiver, report what came back."""

import json
import time
import urllib.error
import urllib.request
import uuid

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from runner.config import github
from runner.config.env import env_str

GITHUB_VECTOR_SECRET = "It's a Secret to Everybody"  # noqa: S105  GitHub's public test vector
GITHUB_VECTOR_BODY = b"Hello, World!"
GITHUB_VECTOR_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
GITHUB_TIMEOUT_SECONDS = 10


class Command(BaseCommand):
    help = "Check the signing code, then send a signed ping to the running receiver."

    def add_arguments(self, parser) -> None:
        host = env_str("HOST", "127.0.0.1")
        port = env_str("PORT", "8000")
        parser.add_argument(
            "--url",
            default=f"http://{host}:{port}/{settings.WEBHOOK_PATH}",
            help="the receiver's URL (default: %(default)s)",
        )

    def handle(self, *args, url: str, **options) -> None:
        signature = github.sign(GITHUB_VECTOR_SECRET, GITHUB_VECTOR_BODY)
        if signature != GITHUB_VECTOR_SIGNATURE:
            raise CommandError(f"signing code is wrong: GitHub's test vector gave {signature}")
        self.stdout.write("signing: matches GitHub's published test vector")
        status, answer, seconds = self._post_ping(url)
        took = f"{seconds * 1000:.0f} ms"
        self.stdout.write(f"ping to {url}: HTTP {status} in {took}")
        self.stdout.write(f"answer: {answer}")
        if status != 200:
            raise CommandError(f"the receiver answered {status}, expected 200")
        github_waits = f"GitHub waits up to {GITHUB_TIMEOUT_SECONDS} s"
        if seconds >= GITHUB_TIMEOUT_SECONDS:
            raise CommandError(f"too slow: the receiver answered in {took}; {github_waits}")
        self.stdout.write(f"OK: the receiver answered in {took}; {github_waits}")

    def _post_ping(self, url: str) -> tuple[int, str, float]:
        if not url.startswith(("http://", "https://")):
            raise CommandError(f"--url must be an http:// or https:// URL, not {url!r}")
        body = json.dumps(
            {"zen": "Self-test from hookrunner.", "hook_id": 0, "sender": {"login": "selftest"}}
        ).encode()
        request = urllib.request.Request(  # noqa: S310  the scheme is checked above
            url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": "hookrunner-selftest",
                "X-GitHub-Event": "ping",
                "X-GitHub-Delivery": f"selftest-{uuid.uuid4()}",
                "X-Hub-Signature-256": github.sign(settings.WEBHOOK_SECRET, body),
            },
        )
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=GITHUB_TIMEOUT_SECONDS) as response:  # noqa: S310
                return response.status, response.read().decode(), time.monotonic() - started
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(), time.monotonic() - started
        except (urllib.error.URLError, TimeoutError) as error:
            reason = getattr(error, "reason", error)
            raise CommandError(f"could not reach {url}: {reason}") from None
