"""The pipelines files bench/faults.py swaps in while deliveries keep coming (issue 12,
item 5), and how it watches the receiver's memory meanwhile."""

import os
import threading
from pathlib import Path


def bomb_text(pipelines: str, size: int = 4700, levels: int = 6, fan_out: int = 10) -> str:
    """A merge-key bomb of about `size` bytes: a mapping, then `levels` mappings each
    merging the one before `fan_out` times, then the good `pipelines`."""
    merges = [
        f"  l{level}: &l{level} {{<<: [{', '.join([f'*l{level - 1}'] * fan_out)}]}}\n"
        for level in range(1, levels + 1)
    ]
    keys: list[str] = []
    while True:
        text = "x-bomb:\n" + f"  l0: &l0 {{{', '.join(keys)}}}\n" + "".join(merges) + pipelines
        if len(text) >= size:
            return text
        keys.append(f"key{len(keys):03d}: {len(keys)}")


def big_text(size: int = 9 * 1024 * 1024) -> str:
    """A well-formed pipelines file of `size` bytes: one pipeline for each of many
    repositories."""
    pipeline = "{{p: {{on: {{push: null}}, steps: [{{name: s, run: 'true'}}]}}}}"
    entry = "  org/repo{:07d}: {{pipelines: " + pipeline + "}}\n"
    count = size // len(entry.format(0)) + 1
    return "repositories:\n" + "".join(entry.format(i) for i in range(count))


def deep_text(depth: int = 10_000) -> str:
    return "repositories: " + "[" * depth + "]" * depth + "\n"


def replace_file(path: Path, text: str) -> None:
    """Swap the file in at once, as an editor saving it (or a deploy) does."""
    temporary = path.with_name(path.name + ".new")
    temporary.write_text(text)
    os.replace(temporary, path)


def process_tree(root: int) -> list[int]:
    """`root` and its children (gunicorn's master and its worker processes)."""
    pids = [root]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[1]) == root:
            pids.append(int(entry.name))
    return pids


def status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class PeakMemory(threading.Thread):
    """The peak VmHWM of a process tree, sampled every 0.1 s (a process replaced meanwhile
    keeps the peak it reached)."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.peaks: dict[int, int] = {}
        self.stopping = threading.Event()
        self.sample()

    def sample(self) -> None:
        for pid in process_tree(self.root):
            self.peaks[pid] = max(self.peaks.get(pid, 0), status_kb(pid, "VmHWM"))

    def run(self) -> None:
        while not self.stopping.wait(0.1):
            self.sample()

    def peak_mb(self) -> float:
        return max(self.peaks.values()) / 1024
