"""Steps and git in a bubblewrap sandbox (docs/sandbox.md): what they may see, whether
bwrap works on this machine, and the worker's own protection. No ORM.

A sandboxed command runs in its own PID namespace, so it sees no hookrunner process and
everything it starts dies with it; the system is read-only, /tmp its own, home folders
and hookrunner's own folders hidden, and only its run's folder (plus what its pipeline
names) writable.
"""

import ctypes
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

from django.conf import settings

from runner.config.pipelines import Sandbox
from runner.config.private_paths import HOMES, hookrunner_paths

INSTALL_HINT = "install Debian's bubblewrap package (apt-get install bubblewrap)"
PROBE_SECONDS = 10
PR_SET_DUMPABLE = 4
# Fresh, empty and the sandbox's own, as systemd's PrivateTmp makes them.
PRIVATE_TMP = ("/tmp", "/var/tmp")  # noqa: S108

# Settings' BWRAP values seen to start a sandbox: once it works, it is not asked again.
_works: set[str] = set()


def confine(
    argv: Sequence[str],
    sandbox: Sandbox,
    *,
    cwd: str,
    writable: Iterable[Path | str],
    readonly: Iterable[Path | str] = (),
    workdir: str = "",
) -> list[str]:
    """`argv` as a bwrap command line: `sandbox` and `workdir` say what the pipeline adds
    to the system (read-only), `writable` and `readonly` what this command needs of
    hookrunner's own (its run's folder, a mirror); `readonly` paths that do not exist
    are left out."""
    return [
        *_namespaces(sandbox),
        *_system(),
        *_pipeline_paths(sandbox, workdir),
        *_hidden(hookrunner_paths()),
        *_binds("--bind", writable),
        *_binds("--ro-bind-try", readonly),
        "--chdir", cwd, "--", *argv,
    ]  # fmt: skip


def _namespaces(sandbox: Sandbox) -> list[str]:
    # --die-with-parent: a worker that dies takes its steps along. Not --new-session:
    # steps have no terminal, and the stop signal reaches them through their group.
    args = [
        settings.BWRAP, "--die-with-parent", "--unshare-pid", "--unshare-ipc",
        "--unshare-uts", "--unshare-cgroup-try", "--cap-drop", "ALL",
    ]  # fmt: skip
    if not sandbox.network:
        args.append("--unshare-net")
    return args


def _system() -> list[str]:
    args = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    return args + _hidden(Path(path) for path in (*PRIVATE_TMP, *HOMES) if Path(path).exists())


def _pipeline_paths(sandbox: Sandbox, workdir: str) -> list[str]:
    # Before hookrunner's folders are hidden: a path that holds one still hides it.
    writable = [*sandbox.writable, *([workdir] if workdir else [])]
    return _binds("--ro-bind", sandbox.readonly) + _binds("--bind", writable)


def _hidden(paths: Iterable[Path]) -> list[str]:
    args = []
    for path in paths:
        args += ["--tmpfs", str(path)] if path.is_dir() else ["--ro-bind", "/dev/null", str(path)]
    return args


def _binds(option: str, paths: Iterable[Path | str]) -> list[str]:
    args = []
    for path in paths:
        args += [option, str(path), str(path)]
    return args


def sandbox_problem() -> str:
    """Why this machine cannot sandbox a step, saying what to do; "" when it can."""
    if settings.BWRAP in _works:
        return ""
    program = shutil.which(settings.BWRAP)
    if program is None:
        return f"bubblewrap is not installed ({settings.BWRAP} was not found): {INSTALL_HINT}"
    probe = [program, "--ro-bind", "/", "/", "--unshare-pid", "--proc", "/proc", "--dev", "/dev"]
    try:
        result = subprocess.run(
            [*probe, "--cap-drop", "ALL", "true"], capture_output=True, timeout=PROBE_SECONDS
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"{program} cannot start a sandbox: {error}"
    if result.returncode != 0:
        said = result.stderr.decode(errors="replace").strip().splitlines()
        return (
            f"{program} cannot start a sandbox: {said[-1] if said else result.returncode} "
            "(are user namespaces allowed? docs/sandbox.md)"
        )
    _works.add(settings.BWRAP)
    return ""


def make_undumpable() -> None:
    """Keep this process's memory and environment (its secrets) from other processes of
    its user: /proc/PID/environ and ptrace then need root's CAP_SYS_PTRACE."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) failed")
