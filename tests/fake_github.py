"""A small GitHub-API-shaped HTTP server on loopback, for tests: real HTTP, real JSON.

Every request is recorded (method, path, query, headers, JSON body). Answers come from a
script per route, one answer per request, the last repeated once the script runs out:

    with FakeGitHub() as github:
        github.statuses(502, 201)                 # a 502, then 201 for every later one
        github.deployments()                      # 201 {"id": 1}, then {"id": 2}, ...
        github.route("POST", "/notify", Answer(200, delay=2))   # any path, one line
        ... github.url ..., github.requests, github.requests_to("/notify")

An answer is an int (the status, with a JSON body fitting it) or an Answer (status, JSON
body, headers, a delay before answering: longer than the client's timeout, a timeout).
Unscripted paths answer 404 with GitHub's {"message": "Not Found"}.
"""

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

OWNER_REPO = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
# How many deployments get an id of their own from FakeGitHub.deployments() by default.
FIRST_IDS = 100


@dataclass(frozen=True)
class Answer:
    status: int = 200
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0

    def body(self) -> bytes:
        if self.json is not None:
            return json.dumps(self.json).encode()
        if self.status >= 400:
            return json.dumps({"message": HTTPStatus(self.status).phrase}).encode()
        return b"{}" if self.status != 204 else b""


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names as sent; look up with header()
    body: bytes
    json: Any
    at: float  # time.time() when it came

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    answers: list[Answer]
    served: int = 0

    def next_answer(self) -> Answer:
        answer = self.answers[min(self.served, len(self.answers) - 1)]
        self.served += 1
        return answer


class FakeGitHub:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.routes: list[Route] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "FakeGitHub":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    # Scripting. A route's pattern is a regular expression matching the whole path.

    def route(self, method: str, pattern: str, *answers: int | Answer) -> "FakeGitHub":
        """Answer METHOD requests to paths matching `pattern` with `answers`, in order;
        a later route for the same requests takes over."""
        scripted = [a if isinstance(a, Answer) else Answer(a) for a in answers or (200,)]
        with self.lock:
            self.routes.insert(0, Route(method.upper(), re.compile(pattern), scripted))
        return self

    def statuses(self, *answers: int | Answer) -> "FakeGitHub":
        """POST /repos/{owner}/{repo}/statuses/{sha} (GitHub answers 201)."""
        return self.route("POST", rf"{OWNER_REPO}/statuses/(?P<sha>\w+)", *answers)

    def deployments(self, *answers: int | Answer) -> "FakeGitHub":
        """POST /repos/{owner}/{repo}/deployments; by default 201 with the ids 1, 2, 3...
        in turn (ids past FIRST_IDS repeat the last)."""
        ids = answers or tuple(Answer(201, {"id": n}) for n in range(1, FIRST_IDS + 1))
        return self.route("POST", rf"{OWNER_REPO}/deployments", *ids)

    def deployment_statuses(self, *answers: int | Answer) -> "FakeGitHub":
        """POST /repos/{owner}/{repo}/deployments/{id}/statuses (GitHub answers 201)."""
        pattern = rf"{OWNER_REPO}/deployments/(?P<deployment>\d+)/statuses"
        return self.route("POST", pattern, *answers)

    def hook_deliveries(self, *answers: int | Answer) -> "FakeGitHub":
        """GET /repos/{owner}/{repo}/hooks/{id}/deliveries (a JSON list per page)."""
        return self.route("GET", rf"{OWNER_REPO}/hooks/(?P<hook>\d+)/deliveries", *answers)

    def redeliveries(self, *answers: int | Answer) -> "FakeGitHub":
        """POST /repos/{owner}/{repo}/hooks/{id}/deliveries/{id}/attempts (202)."""
        pattern = rf"{OWNER_REPO}/hooks/(?P<hook>\d+)/deliveries/(?P<delivery>\d+)/attempts"
        return self.route("POST", pattern, *answers)

    # Looking at what came.

    def requests_to(self, path_pattern: str, method: str | None = None) -> list[Recorded]:
        with self.lock:
            return [
                r
                for r in self.requests
                if re.fullmatch(path_pattern, r.path) and method in (None, r.method)
            ]

    def answer_for(self, method: str, path: str) -> Answer:
        with self.lock:
            for route in self.routes:
                if route.method == method and route.pattern.fullmatch(path):
                    return route.next_answer()
        return Answer(404)

    def record(self, recorded: Recorded) -> None:
        with self.lock:
            self.requests.append(recorded)


def _handler_for(github: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def handle_request(self) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            try:
                parsed = json.loads(body) if body else None
            except ValueError:
                parsed = None
            recorded = Recorded(
                self.command, split.path, parse_qs(split.query), dict(self.headers.items()),
                body, parsed, time.time(),
            )  # fmt: skip
            github.record(recorded)
            answer = github.answer_for(self.command, split.path)
            if answer.delay:
                time.sleep(answer.delay)
            payload = answer.body()
            try:
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (a timeout test)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_request

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output quiet

    return Handler
