"""adnanh/webhook (Debian's `webhook`, 2.8) served as bench/receiver.py's peer: a hooks
file whose one hook checks the body's HMAC-SHA256 against X-Hub-Signature-256 and runs
/bin/true, on a free loopback port, answering 202 as hookrunner does."""

import contextlib
import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from bench.served import Target, free_loopback_port, stop, wait_until_listening

INSTALL_HINT = "apt-get install -y webhook (Debian's package of adnanh/webhook 2.8)"
HOOK_ID = "github"


def peer_binary() -> str | None:
    return shutil.which("webhook")


def write_hooks(folder: Path, secret: str) -> Path:
    """One hook: signature checked as GitHub signs, then `true` run for the delivery."""
    hook = {
        "id": HOOK_ID,
        "execute-command": "/bin/true",
        "http-methods": ["POST"],
        # The client counts 202s, hookrunner's answer to a push; webhook's default is 200.
        "success-http-response-code": 202,
        "trigger-rule": {
            "match": {
                "type": "payload-hmac-sha256",
                "secret": secret,
                "parameter": {"source": "header", "name": "X-Hub-Signature-256"},
            }
        },
    }
    path = folder / "hooks.json"
    path.write_text(json.dumps([hook]))
    return path


@contextlib.contextmanager
def peer_server(binary: str, secret: str, log: Path) -> Iterator[Target]:
    """webhook serving one hook on a free loopback port, stopped on the way out."""
    with tempfile.TemporaryDirectory(prefix="hookrunner-bench-peer-") as folder:
        target = Target("127.0.0.1", free_loopback_port(), f"/hooks/{HOOK_ID}", secret)
        hooks = write_hooks(Path(folder), secret)
        command = [binary, "-hooks", str(hooks), "-ip", target.host, "-port", str(target.port)]
        with log.open("ab") as output:
            server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        try:
            wait_until_listening(server, target)
            yield target
        finally:
            stop(server)
