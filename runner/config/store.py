"""The pipelines configuration in force: re-read when its file changes, no restart.

A broken edit keeps the last valid configuration running, logs why, and keeps the error
for admin to show. The file is looked at (one stat) at most once per check interval.

No caller waits for a reload: a change seen is loaded in a background thread, one at a
time, while callers go on getting the last valid configuration. Only while there is none
yet (the first load, at start-up) does the caller load the file itself, since there is
nothing else to give it. What must see the file as it is now (a replay after an edit,
tests) calls newest(), which looks at once and waits for the load.
"""

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from runner.config.pipelines_file import PipelinesError, load_pipelines
from runner.config.repositories import Config
from runner.config.text import counted
from runner.config.yaml_nodes import Problem

logger = logging.getLogger(__name__)

# The problems kept (and shown on every admin page), the rest counted in one more line;
# manage.py check_pipelines lists them all.
KEPT_PROBLEMS = 100


@dataclass(frozen=True)
class FileVersion:
    mtime_ns: int
    size: int
    inode: int


NOT_LOOKED_AT = object()  # a version no file has, not even a missing one (None)


class PipelinesStore:
    def __init__(self, path: Path, check_interval: float) -> None:
        self.path = path
        self.check_interval = check_interval
        self.config: Config | None = None
        self.problems: list[Problem] = []
        self._version: object = NOT_LOOKED_AT  # of the file last loaded: a FileVersion, None
        self._next_check = 0.0
        self._lock = threading.Lock()  # held to look at the file, and for a first load
        self._reload: threading.Thread | None = None

    @property
    def error(self) -> str:
        """What is wrong with the file now, one problem a line; "" when it is valid."""
        return "\n".join(str(problem) for problem in self.problems)

    def current(self) -> Config:
        """The configuration in force; PipelinesError only if none was ever valid.

        Never waits for a reload once a configuration was valid: a changed file is loaded
        in the background and applies to the calls after that load."""
        if time.monotonic() >= self._next_check:
            self._look()
        if self.config is None:
            with self._lock:  # another caller may be loading the first one
                pass
        return self._in_force()

    def newest(self) -> Config:
        """The configuration of the file as it is now: looks at once, whatever the check
        interval, and waits for the load of a change. For what must see the latest edit,
        not for requests; PipelinesError if no version was ever valid."""
        self.wait_for_reload()
        self._next_check = 0.0
        self._look()  # any reload under way now started after this call: it is new enough
        self.wait_for_reload()
        return self._in_force()

    def wait_for_reload(self, timeout: float | None = None) -> bool:
        """Wait for a reload under way, if any; False if it still runs after `timeout`."""
        reload = self._reload
        if reload is None:
            return True
        reload.join(timeout)
        return not reload.is_alive()

    def _in_force(self) -> Config:
        config = self.config
        if config is None:
            raise PipelinesError(self.problems)
        return config

    def _look(self) -> None:
        """Start loading the file if it changed since it was last loaded."""
        with self._lock:
            if time.monotonic() < self._next_check:
                return  # another caller just looked
            self._next_check = time.monotonic() + self.check_interval
            if self._reload is not None and self._reload.is_alive():
                return  # one at a time; the next look after it sees any later change
            version = self._file_version()
            if version == self._version:
                return
            if self.config is None:
                self._load(version)
                return
            self._reload = threading.Thread(
                target=self._load, args=(version,), name="pipelines-reload", daemon=True
            )
            self._reload.start()

    def _load(self, version: FileVersion | None) -> None:
        try:
            config = load_pipelines(self.path, os.environ)
        except PipelinesError as error:
            self._refuse(version, error.problems)
            return
        except Exception as error:  # RecursionError, MemoryError, a bug: still a problem
            logger.exception("loading pipelines file %s failed", self.path)
            why = f"could not be loaded: {type(error).__name__}: {error}".rstrip(": ")
            self._refuse(version, [Problem(str(self.path), 0, "file", why)])
            return
        self.config, self.problems, self._version = config, [], version
        logger.info("pipelines loaded from %s", self.path)

    def _refuse(self, version: FileVersion | None, problems: list[Problem]) -> None:
        if len(problems) > KEPT_PROBLEMS:
            more = counted(len(problems) - KEPT_PROBLEMS, "more problem")
            summary = f"and {more} (manage.py check_pipelines lists them all)"
            problems = [*problems[:KEPT_PROBLEMS], Problem(str(self.path), 0, "file", summary)]
        self.problems, self._version = problems, version
        kept = "keeping the last valid one" if self.config else "no pipeline will run"
        error = "\n".join(str(problem) for problem in problems)
        logger.error("pipelines file %s is invalid, %s:\n%s", self.path, kept, error)

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
    """The configuration of the file as it is now, waiting for the load of a change: for
    start-up, replays and commands. Requests use pipelines_in_force, which never waits."""
    return pipelines_store().newest()


def pipelines_in_force() -> Config | None:
    """The configuration in force, or None while the file was never valid (store.error);
    never waits for a reload (but the first)."""
    try:
        return pipelines_store().current()
    except PipelinesError:
        return None
