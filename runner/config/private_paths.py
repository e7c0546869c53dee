"""The files and folders of hookrunner itself, which no step ever sees, and those a
sandbox hides unless a pipeline names them."""

import os
from pathlib import Path

from django.conf import settings
from django.db import connections

# Hidden from every step, as systemd's ProtectHome hides them: home folders hold keys
# and tokens (~/.ssh, ~/.aws). A pipeline's readonly or writable paths may show parts.
HOMES = ("/home", "/root", "/run/user")


def hookrunner_paths() -> tuple[Path, ...]:
    """hookrunner's data, configuration, code, database, workspaces and mirrors, plus
    SANDBOX_HIDDEN_PATHS: each resolved, the ones that exist."""
    paths = [
        Path(settings.DATA_DIR),
        Path(settings.WORKSPACES_DIR),
        Path(settings.MIRRORS_DIR),
        # The configuration folder: pipelines.yaml, and the env file beside it.
        Path(settings.PIPELINES_FILE).parent,
        # The code, with .env and its virtual environment.
        Path(settings.BASE_DIR),
        *_database_folders(),
        *(Path(path) for path in settings.SANDBOX_HIDDEN_PATHS),
    ]
    resolved = {Path(os.path.realpath(path)) for path in paths if path.is_absolute()}
    return tuple(sorted(path for path in resolved if path.exists()))


def inside_any(path: Path, folders: tuple[Path, ...]) -> Path | None:
    """The first of `folders` that is `path` or holds it (both resolved), or None."""
    real = Path(os.path.realpath(path))
    return next((folder for folder in folders if real.is_relative_to(folder)), None)


def _database_folders() -> list[Path]:
    """The folder of each SQLite database file: its journal and WAL files appear there
    and disappear, so the folder is hidden, not the files."""
    folders = []
    for connection in connections.all(initialized_only=False):
        if connection.vendor != "sqlite":
            continue
        for name in (connection.settings_dict.get("NAME"), _test_name(connection)):
            if name and str(name) != ":memory:" and not str(name).startswith("file:"):
                folders.append(Path(name).parent)
    return folders


def _test_name(connection) -> str | None:
    return (connection.settings_dict.get("TEST") or {}).get("NAME")
