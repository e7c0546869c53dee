"""Check out one commit into a run's workspace, through a per-repository mirror.

The first run of a repository clones a bare mirror; later runs only fetch into it, then
clone the workspace from it locally (hard links, no network). git runs through `sh` with
fixed arguments: the URL and sha reach it as arguments, never through a shell. Each git
runs in its pipeline's sandbox, with the network, writing only its run's folder and its
repository's mirror, reading a local repository it clones from and the server's git and
SSH settings (a deploy key), and seeing no other mirror.
"""

import contextlib
import dataclasses
import fcntl
import hashlib
import os
import queue
import re
import shutil
import signal
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

import sh

from runner.config.github import is_commit_sha
from runner.config.pipelines import Sandbox
from runner.execution.processes import ProcessOutcome, Stop, end_group, kill_group
from runner.execution.sandbox import confine

WAIT_SECONDS = 0.25
LOCK_POLL_SECONDS = 0.2
# What git and ssh read in the server's HOME: how to reach a private repository.
GIT_SETTINGS = (".ssh", ".gitconfig", ".git-credentials", ".config/git")


class _Stopped(Exception):
    """A timeout or a cancel ended the checkout."""

    def __init__(self, stop: Stop) -> None:
        super().__init__(stop.value)
        self.stop = stop


class _GitFailed(Exception):
    def __init__(self, exit_code: int) -> None:
        super().__init__(exit_code)
        self.exit_code = exit_code


class Checkout:
    """What `run` needs: where from and to, git's environment, and when to give up.

    `stop_reason()` says why the checkout must end now, or None while it may go on.
    `on_output` gets git's output (and b"" while it is quiet) in the caller's thread;
    `on_start` each git process id, for the reaper. `sandbox` is the pipeline's.
    """

    def __init__(
        self,
        *,
        url: str,
        sha: str,
        workspace: Path,
        mirrors: Path,
        env: Mapping[str, str],
        stop_reason: Callable[[], Stop | None],
        on_output: Callable[[bytes], None],
        on_start: Callable[[int], None],
        grace: float,
        sandbox: Sandbox,
    ) -> None:
        if not is_commit_sha(sha):
            # It reaches git as an argument, where something like --upload-pack=... would
            # be an option; callers check first, this makes sure.
            raise ValueError(f"not a commit sha: {sha!r}")
        self.url, self.sha, self.workspace = url, sha, workspace
        self.mirror = mirrors / mirror_name(url)
        self.partial = self.mirror.with_name(self.mirror.name + ".partial")
        self.stop_reason, self.on_output, self.on_start = stop_reason, on_output, on_start
        self.grace = grace
        # git fetches whatever the pipeline's steps may do.
        self.sandbox = dataclasses.replace(sandbox, network=True)
        self.home = env.get("HOME", "")
        self.output: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.options = dict(
            _env=dict(env), _bg=True, _bg_exc=False, _new_session=True, _tty_out=False,
            _err_to_out=True, _decode_errors="replace",
        )  # fmt: skip

    def run(self) -> ProcessOutcome:
        try:
            with self._mirror_locked():
                self._update_mirror()
                self._git(
                    "clone", "--quiet", "--no-checkout", "--", str(self.mirror), str(self.workspace)
                )
            self._git("-C", str(self.workspace), "remote", "set-url", "--", "origin", self.url)
            self._git("-C", str(self.workspace), "checkout", "--quiet", "--detach", self.sha)
            self._git("-C", str(self.workspace), "log", "-1", "--format=checked out %H %s")
        except _Stopped as stopped:
            return ProcessOutcome.stopped(stopped.stop)
        except _GitFailed as failed:
            return ProcessOutcome(failed.exit_code)
        return ProcessOutcome(0)

    def _update_mirror(self) -> None:
        cloned = (self.mirror / "HEAD").exists()
        self._say(f"{'fetching into the' if cloned else 'cloning a'} mirror of {self.url}")
        update_mirror(self.mirror, self.url, self._git)
        if not self._has_commit():
            # Not under any ref (a force-pushed branch, say); GitHub serves it by sha.
            self._git("-C", str(self.mirror), "fetch", "--quiet", "origin", self.sha)

    def _has_commit(self) -> bool:
        try:
            self._git(
                "-C", str(self.mirror), "cat-file", "-e", f"{self.sha}^{{commit}}", quiet=True
            )
        except _GitFailed:
            return False
        return True

    def _mirror_locked(self) -> "_FileLock":
        return mirror_locked(self.mirror, self._wait)

    def _git(self, *args: str, quiet: bool = False) -> None:
        """Run git to its end, passing its output on; _Stopped or _GitFailed if not 0."""
        program, *arguments = self._command(["git", *args])
        output = None if quiet else self.output.put
        command = sh.Command(program)(*arguments, _out=output, **self.options)
        self.on_start(command.pid)
        while True:
            try:
                command.wait(timeout=WAIT_SECONDS)
            except sh.TimeoutException:
                pass
            except sh.ErrorReturnCode as error:
                self._finish_output(command)
                raise _GitFailed(error.exit_code) from None
            else:
                self._finish_output(command)
                return
            try:
                self._wait()
            except _Stopped:
                _end_group(command, self.grace, self.sandbox.enabled)
                raise

    def _command(self, argv: list[str]) -> list[str]:
        if not self.sandbox.enabled:
            return argv
        run_folder = self.workspace.parent
        mirrors = [str(path) for path in (self.mirror, self.partial) if path.is_dir()]
        return confine(
            argv, self.sandbox, cwd=str(run_folder), writable=[str(run_folder), *mirrors],
            readonly=git_readable(self.url, self.home),
        )  # fmt: skip

    def _wait(self) -> None:
        """Between two looks at a running git or a held lock: output out, stop checked."""
        self._pass_output()
        if reason := self.stop_reason():
            raise _Stopped(reason)

    def _finish_output(self, command: sh.RunningCommand) -> None:
        # A wait with a timeout returns once git exits, before sh's reader thread has
        # handed over the last output; waiting on the process itself joins that thread.
        command.process.wait()
        # What git left in its group (an ssh it started) ends with it, as a step's does.
        kill_group(command.pid, signal.SIGKILL)
        self._pass_output()

    def _pass_output(self) -> None:
        received = []
        while not self.output.empty():
            received.append(self.output.get())
        self.on_output("".join(received).encode())

    def _say(self, line: str) -> None:
        self.on_output(f"hookrunner: {line}\n".encode())


def update_mirror(mirror: Path, url: str, git: Callable[..., object]) -> None:
    """Fetch into the bare mirror of `url`, or clone it first, through `git` (which runs
    git with those arguments, in its sandbox): a clone goes to `<mirror>.partial` and is
    renamed once whole, so an interrupted one is never taken for a mirror."""
    if (mirror / "HEAD").exists():
        git("-C", str(mirror), "fetch", "--quiet", "--prune", "origin")
        return
    partial = mirror.with_name(mirror.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    # Made here, empty, for the sandbox to show to git, which clones into it.
    partial.mkdir()
    # "--": a URL starting with "-" is a URL, never an option of git's.
    git("clone", "--quiet", "--mirror", "--", url, str(partial))
    partial.rename(mirror)


def mirror_name(url: str) -> str:
    """A folder name that says which repository it holds and differs for every URL."""
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", url.rstrip("/").removesuffix(".git"))[-60:]
    return f"{readable.strip('_.')}-{hashlib.sha256(url.encode()).hexdigest()[:12]}.git"


def mirror_locked(mirror: Path, wait: Callable[[], None]) -> "_FileLock":
    """The lock of `mirror`, held by whoever fetches into it or reads it; `wait` is called
    while another holds it (it raises to give up)."""
    mirror.parent.mkdir(parents=True, exist_ok=True)
    return _FileLock(mirror.with_name(mirror.name + ".lock"), wait)


def git_readable(url: str, home: str) -> list[str]:
    """What a sandboxed git reads besides the system: a local repository it fetches from,
    and the git and SSH settings in `home` (a deploy key)."""
    settings = [os.path.join(home, name) for name in GIT_SETTINGS] if home else []
    return [*_local_source(url), *settings]


def _local_source(url: str) -> list[str]:
    """The folder of a repository cloned from this machine (a path or a file:// URL)."""
    path = url.removeprefix("file://") if url.startswith("file://") else url
    return [path] if path.startswith("/") else []


def _end_group(command: sh.RunningCommand, grace: float, sandboxed: bool) -> None:
    """TERM to git's process group, KILL after `grace` (git's helpers, ssh, go too)."""
    # git leads its own session, so its pid names the group even after git itself exits.
    end_group(command.pid, grace, lambda: command.process.is_alive()[0], spare_leader=sandboxed)
    with contextlib.suppress(sh.ErrorReturnCode):
        command.wait()


class _FileLock:
    """One git at a time per mirror, also across processes on this machine."""

    def __init__(self, path: Path, wait: Callable[[], None]) -> None:
        self.path, self.wait = path, wait

    def __enter__(self) -> None:
        self.file = self.path.open("w")
        try:
            while not _try_lock(self.file):
                self.wait()
                time.sleep(LOCK_POLL_SECONDS)
        except BaseException:
            self.file.close()
            raise

    def __exit__(self, *exc_info: object) -> None:
        fcntl.flock(self.file, fcntl.LOCK_UN)
        self.file.close()


def _try_lock(file: IO[str]) -> bool:
    try:
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
