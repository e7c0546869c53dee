"""First-start state of the embedded setup: a data folder and generated secrets."""

import os
import secrets
from pathlib import Path


def ensure_secret_file(path: Path) -> str:
    """The secret stored at `path`, generated (readable by its owner only) when absent."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    value = secrets.token_urlsafe(32)
    with os.fdopen(descriptor, "w") as file:
        file.write(value + "\n")
    return value
