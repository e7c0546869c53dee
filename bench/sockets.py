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
    """How many of the connections to `port` each process holds, most first. A child
    forked a moment ago holds its parent's too: each is counted once, with the lower pid."""
    unclaimed = established_inodes(port)
    counts = []
    for pid in sorted(filter(str.isdigit, os.listdir("/proc")), key=int):
        held = unclaimed & {link[8:-1] for link in _socket_links(pid)}
        if held:
            counts.append(len(held))
            unclaimed -= held
    return sorted(counts, reverse=True)


def _socket_links(pid: str) -> list[str]:
    """What the process's socket descriptors point to ("socket:[INODE]")."""
    try:
        descriptors = list(os.scandir(f"/proc/{pid}/fd"))
    except OSError:
        return []  # gone, or not ours to read
    links = []
    for descriptor in descriptors:
        try:
            links.append(os.readlink(descriptor.path))
        except OSError:
            continue  # closed while we looked
    return [link for link in links if link.startswith("socket:[")]
