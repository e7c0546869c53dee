"""Resolve what a person names to deploy (a branch, a tag, a full ref or a sha) to a
commit, through the repository's mirror: the commit a run then checks out is the one
the mirror had when the person asked, whatever is pushed meanwhile.

The mirror is the one checkout keeps, under the same lock; git runs in a sandbox that
writes only that mirror (the name a person typed reaches git as an argument, never as an
option, and the fetch runs whatever the server's git settings say). No sandbox, no look-up.
"""

import contextlib
import os
import re
import signal
import time
from pathlib import Path

import sh
from django.conf import settings

from runner.config.github import is_commit_sha
from runner.config.pipelines import SANDBOXED
from runner.execution.checkout import git_readable, mirror_locked, mirror_name, update_mirror
from runner.execution.processes import kill_group
from runner.execution.sandbox import confine, sandbox_problem
from runner.execution.step_env import DEFAULTS, GIT_ENV, INHERITED
from runner.runs.deployments import Commit, DeployRefused

# How long a look-up may take by default (from the command line): a first clone of a large
# repository into its mirror included. The lock's wait and every git command count.
GIT_SECONDS = 120
ABBREVIATED_SHA = re.compile(r"[0-9a-f]{7,64}")
# What git's revision syntax gives a meaning (main~1, v1^{tree}, HEAD@{1}, a:path): a
# name holding one would be read as an expression, not a branch or tag name.
NOT_IN_A_NAME = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{")
SEARCHED = ("refs/heads/", "refs/tags/")


def resolve(url: str, wanted: str, seconds: float = GIT_SECONDS) -> Commit:
    """The commit `wanted` names in the repository at `url`, fetched into its mirror
    first; DeployRefused if it names none, git cannot fetch, or it all takes longer than
    `seconds` (git is stopped then)."""
    _check_name(wanted)
    if problem := sandbox_problem():
        raise DeployRefused(
            f"cannot look up {wanted} in {url}: the sandbox cannot start: {problem}"
        )
    mirror = _Mirror(url, seconds)
    with mirror_locked(mirror.path, mirror.wait_for_lock):
        mirror.update()
        found = mirror.find(wanted)
        if found is None and is_commit_sha(wanted.lower()):
            # Not under any ref (a force-pushed branch, say); GitHub serves it by sha.
            mirror.fetch_commit(wanted.lower())
            found = mirror.find(wanted)
    if found is None:
        raise DeployRefused(f"no branch, tag or commit {wanted} in {url}")
    return found


def _check_name(wanted: str) -> None:
    if not wanted or wanted.startswith("-") or NOT_IN_A_NAME.search(wanted):
        raise DeployRefused(f"{wanted!r} is not a branch, tag or commit name")


class _Mirror:
    """The bare mirror of `url`, and git run on it in the sandbox."""

    def __init__(self, url: str, seconds: float) -> None:
        self.url = url
        self.path = Path(settings.MIRRORS_DIR) / mirror_name(url)
        self.partial = self.path.with_name(self.path.name + ".partial")
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds

    def wait_for_lock(self) -> None:
        if time.monotonic() > self.deadline:
            raise DeployRefused(f"the mirror of {self.url} stayed busy; try again")

    def update(self) -> None:
        update_mirror(self.path, self.url, self._fetch)

    def fetch_commit(self, sha: str) -> None:
        # Refused by a server that serves no unadvertised commit: then it is not there.
        self._git("-C", str(self.path), "fetch", "--quiet", "origin", sha)

    def find(self, wanted: str) -> Commit | None:
        """A full ref as given; a name as a branch, then a tag; else a sha (a prefix will do)."""
        refs = [wanted] if wanted.startswith("refs/") else [p + wanted for p in SEARCHED]
        for ref in refs:
            if sha := self._commit_of(ref):
                return Commit(sha, ref)
        if ABBREVIATED_SHA.fullmatch(wanted.lower()) and (sha := self._commit_of(wanted.lower())):
            return Commit(sha)
        return None

    def _commit_of(self, revision: str) -> str:
        exit_code, output = self._git(
            "-C", str(self.path), "rev-parse", "--verify", "--quiet", "--end-of-options",
            f"{revision}^{{commit}}",
        )  # fmt: skip
        return output.strip() if exit_code == 0 else ""

    def _fetch(self, *args: str) -> None:
        exit_code, output = self._git(*args)
        if exit_code != 0:
            lines = output.strip().splitlines()
            said = lines[-1] if lines else f"git exited with {exit_code}"
            raise DeployRefused(f"cannot fetch {self.url}: {said}")

    def _git(self, *args: str) -> tuple[int, str]:
        """git's exit code and output (stderr with it); DeployRefused if it takes too long."""
        program, *arguments = self._sandboxed(["git", *args])
        command = sh.Command(program)(
            *arguments, _env=_git_environment(), _bg=True, _bg_exc=False, _new_session=True,
            _tty_out=False, _err_to_out=True, _decode_errors="replace",
        )  # fmt: skip
        try:
            command.wait(timeout=max(self.deadline - time.monotonic(), 0.0))
        except sh.TimeoutException:
            # The sandbox's whole PID namespace ends with bwrap, git's helpers (ssh) too.
            kill_group(command.pid, signal.SIGKILL)
            with contextlib.suppress(sh.ErrorReturnCode):
                command.wait()
            raise DeployRefused(
                f"git took longer than {self.seconds:.0f}s on {self.url}: try again"
            ) from None
        except sh.ErrorReturnCode as error:
            return error.exit_code, error.stdout.decode(errors="replace")
        # A wait with a timeout returns once git exits, before sh's reader thread has
        # handed over the last output; waiting on the process itself joins that thread.
        command.process.wait()
        return 0, str(command)

    def _sandboxed(self, argv: list[str]) -> list[str]:
        mirrors = [str(path) for path in (self.path, self.partial) if path.is_dir()]
        return confine(
            argv, SANDBOXED, cwd="/", writable=mirrors,
            readonly=git_readable(self.url, os.environ.get("HOME", "")),
        )  # fmt: skip


def _git_environment() -> dict[str, str]:
    """The server's PATH, HOME (its git and SSH settings) and LANG, and nothing else."""
    base = {name: os.environ.get(name) or DEFAULTS.get(name, "") for name in INHERITED}
    return {**base, **GIT_ENV}
