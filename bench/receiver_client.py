"""bench/receiver.py's client: signed requests built up front, sent on keep-alive
HTTP/1.1 connections by asyncio clients, each answer read and timed."""

import asyncio
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from bench.served import Target
from bench.sockets import connections_per_process
from runner.config.github import sign

HEAD_END = b"\r\n\r\n"


@dataclass
class LevelResult:
    concurrency: int
    requests: int = 0
    accepted: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    # The connections each server process held, most first.
    spread: list[int] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0

    def percentile_ms(self, fraction: float) -> float:
        """Nearest-rank percentile of the measured latencies, in milliseconds."""
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        rank = max(math.ceil(fraction * len(ordered)), 1)
        return ordered[rank - 1] * 1000


class ProtocolError(Exception):
    """An answer that is not a well-formed HTTP/1.1 response."""


def build_requests(target: Target, body: bytes, delivery_ids: list[str]) -> list[bytes]:
    """Complete request bytes, one per delivery id, signed and ready to write."""
    signature = sign(target.secret, body)
    host = target.host if ":" not in target.host else f"[{target.host}]"
    return [
        (
            f"POST {target.path} HTTP/1.1\r\n"
            f"Host: {host}:{target.port}\r\n"
            "User-Agent: GitHub-Hookshot/bench\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            "X-GitHub-Event: push\r\n"
            f"X-GitHub-Delivery: {delivery_id}\r\n"
            f"X-Hub-Signature-256: {signature}\r\n"
            "\r\n"
        ).encode()
        + body
        for delivery_id in delivery_ids
    ]


class Connection:
    """One keep-alive HTTP/1.1 connection, reopened when the server closes it."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.target.host, self.target.port)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def send(self, request: bytes) -> int:
        """The status code of the answer to `request`; raises on a broken connection."""
        if self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        self.writer.write(request)
        await self.writer.drain()
        status, headers = parse_head(await self.reader.readuntil(HEAD_END))
        await read_body(self.reader, headers)
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    version, _, rest = status_line.partition(" ")
    if not version.startswith("HTTP/1.") or not rest[:3].isdigit():
        raise ProtocolError(f"bad status line {status_line!r}")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    return int(rest[:3]), headers


async def read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return await read_chunked(reader)
    if "content-length" not in headers:
        raise ProtocolError("answer has neither Content-Length nor chunked encoding")
    return await reader.readexactly(int(headers["content-length"]))


async def read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks = []
    while size := int((await reader.readline()).split(b";")[0], 16):
        chunks.append(await reader.readexactly(size))
        await reader.readline()
    await reader.readuntil(b"\r\n")  # the empty line after the last chunk (no trailers)
    return b"".join(chunks)


async def client(
    connection: Connection, requests: Iterator[bytes], result: LevelResult | None
) -> int:
    """Send requests from the shared iterator until it is empty; the 202s it got."""
    accepted = 0
    for request in requests:
        started = time.perf_counter()
        try:
            status = await connection.send(request)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ProtocolError):
            connection.close()
            status = 0
        elapsed = time.perf_counter() - started
        accepted += status == 202
        if result is not None:
            result.requests += 1
            result.latencies.append(elapsed)
            result.errors += status != 202
    return accepted


async def run_level(
    target: Target, concurrency: int, warmup: list[bytes], measured: list[bytes]
) -> tuple[LevelResult, int]:
    """The measured result of one level, and the 202s of warm-up and measured requests."""
    connections = [Connection(target) for _ in range(concurrency)]
    await asyncio.gather(*(connection.open() for connection in connections))
    try:
        warm = iter(warmup)
        warm_accepted = await asyncio.gather(*(client(c, warm, None) for c in connections))
        result = LevelResult(concurrency, spread=connections_per_process(target.port))
        pending = iter(measured)
        started = time.perf_counter()
        accepted = await asyncio.gather(*(client(c, pending, result) for c in connections))
        result.seconds = time.perf_counter() - started
        result.accepted = sum(accepted)
    finally:
        for connection in connections:
            connection.close()
    return result, result.accepted + sum(warm_accepted)
