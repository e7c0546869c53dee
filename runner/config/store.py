"""The pipelines configuration in force: re-read when its file changes, no restart.

A broken edit keeps the last valid configuration running, logs why, and keeps the error
for admin to show. The file is looked at (one stat) at most once per check interval.
"""

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from runner.config.pipelines import Config
from runner.config.pipelines_file import PipelinesError, load_pipelines
from runner.config.yaml_nodes import Problem

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileVersion:
    mtime_ns: int
    size: int
    inode: int


class PipelinesStore:
    def __init__(self, path: Path, check_interval: float) -> None:
        self.path = path
        self.check_interval = check_interval
        self.config: Config | None = None
        self.problems: list[Problem] = []
        self._version: FileVersion | None = None
        self._next_check = 0.0
        self._lock = threading.Lock()

    @property
    def error(self) -> str:
        """What is wrong with the file now, one problem a line; "" when it is valid."""
        return "\n".join(str(problem) for problem in self.problems)

    def current(self) -> Config:
        """The configuration in force; PipelinesError only if none was ever valid."""
        if time.monotonic() >= self._next_check:
            with self._lock:
                self._reload_if_changed()
        if self.config is None:
            raise PipelinesError(self.problems)
        return self.config

    def _reload_if_changed(self) -> None:
        self._next_check = time.monotonic() + self.check_interval
        version = self._file_version()
        if version is not None and version == self._version:
            return
        self._version = version
        try:
            config = load_pipelines(self.path, os.environ)
        except PipelinesError as error:
            self.problems = error.problems
            kept = "keeping the last valid one" if self.config else "no pipeline will run"
            logger.error("pipelines file %s is invalid, %s:\n%s", self.path, kept, error)
            return
        self.config, self.problems = config, []
        logger.info("pipelines loaded from %s", self.path)

    def _file_version(self) -> FileVersion | None:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return FileVersion(stat.st_mtime_ns, stat.st_size, stat.st_ino)


_store: PipelinesStore | None = None
_store_lock = threading.Lock()


def pipelines_store() -> PipelinesStore:
    """The process's store, for the file settings name now."""
    global _store
    path = Path(settings.PIPELINES_FILE)
    store = _store
    if store is not None and store.path == path:
        return store
    with _store_lock:
        if _store is None or _store.path != path:
            _store = PipelinesStore(path, settings.PIPELINES_CHECK_SECONDS)
        return _store


def current_pipelines() -> Config:
    return pipelines_store().current()


def pipelines_in_force() -> Config | None:
    """The configuration in force, or None while the file was never valid (store.error)."""
    try:
        return current_pipelines()
    except PipelinesError:
        return None
