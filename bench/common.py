"""What every bench script prints the same way: targets, load, where server output goes."""

import os
import tempfile
from pathlib import Path


def met(condition: bool) -> str:
    return "target met" if condition else "target NOT met"


def print_load(when: str) -> None:
    print(f"load average {when}: " + " ".join(f"{n:.2f}" for n in os.getloadavg()), flush=True)


def output_log(name: str) -> Path:
    """A fresh file for the output of the processes a bench starts, kept after it ends."""
    descriptor, path = tempfile.mkstemp(prefix=f"hookrunner-bench-{name}-", suffix=".log")
    os.close(descriptor)
    return Path(path)
