"""Which processes hold a server's open connections: a keep-alive connection stays with
the process that accepted it, so a bench level measures as many processes as got some."""

import os
from pathlib import Path

ESTABLISHED = "01"


def established_inodes(port: int) -> set[str]:
    """The socket inodes of established TCP connections whose local port is `port`."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        lines = Path(table).read_text().splitlines()[1:] if Path(table).exists() else []
        for line in lines:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == ESTABLISHED:
                inodes.add(fields[9])
    return inodes


def connections_per_process(port: int) -> list[int]:
    """How many of the connections to `port` each process holds, most first."""
    inodes = established_inodes(port)
    counts = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        held = 0
        try:
            for descriptor in os.scandir(f"/proc/{pid}/fd"):
                link = os.readlink(descriptor.path)
                held += link.startswith("socket:[") and link[8:-1] in inodes
        except OSError:
            continue  # gone, or not ours to read
        if held:
            counts.append(held)
    return sorted(counts, reverse=True)
