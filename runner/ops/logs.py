"""How the server log is written (settings.LOGGING): one line per record whatever the
values in it, and every request error with the delivery it was about.

Values logged come from deliveries (a ref, a sender, a header) and a signed ref may hold a
newline: written as it is, it would forge a log line. The formatter escapes control
characters in a record's arguments and in the messages of its exceptions, and leaves the
traceback's own lines (and the code's own format strings) as they are. Only stdlib here:
logging is configured before Django's apps are ready.
"""

import contextlib
import logging
import re
from collections.abc import Iterator, Mapping
from numbers import Number
from typing import Any

# C0 controls (newline, carriage return, escape, ...), DEL and C1 controls, the Unicode
# line and paragraph separators, and lone surrogates (no UTF-8 log file takes them).
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# The request header that names a GitHub delivery, added to each request error.
DELIVERY_HEADER = "X-GitHub-Delivery"


def escape_controls(text: str) -> str:
    """`text` with every control character written as an escape: \\n, \\x1b, \\u2028."""
    if not CONTROL.search(text):
        return text
    return CONTROL.sub(_escape, text)


def _escape(found: re.Match) -> str:
    character = found.group()
    if character in SHORT_ESCAPES:
        return SHORT_ESCAPES[character]
    code = ord(character)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


class _Escaped:
    """An argument shown escaped by %s and %r alike."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __str__(self) -> str:
        return escape_controls(str(self.value))

    def __repr__(self) -> str:
        return escape_controls(repr(self.value))


def _escaped_argument(value: Any) -> Any:
    if isinstance(value, str) and not CONTROL.search(value):
        return value
    if value is None or isinstance(value, Number):
        return value  # %d, %.1f and the like need the number itself
    return _Escaped(value)


class SafeFormatter(logging.Formatter):
    """A Formatter whose every record is one line, bar its traceback's own lines: control
    characters in arguments and exception messages are escaped. A request's error (Django's
    `django.request` records) also says which delivery it was about: delivery=ID, or -."""

    def format(self, record: logging.LogRecord) -> str:
        # A copy: other handlers, and anything holding the record, see it unchanged.
        safe = logging.makeLogRecord(record.__dict__)
        safe.exc_text = None
        if isinstance(safe.args, Mapping):
            safe.args = {key: _escaped_argument(value) for key, value in safe.args.items()}
        elif safe.args:
            safe.args = tuple(_escaped_argument(value) for value in safe.args)
        if not isinstance(safe.msg, str):
            safe.msg = _Escaped(safe.msg)
        delivery_id = _delivery_of(record)
        if delivery_id is not None:
            if isinstance(safe.args, Mapping):
                safe.msg = f"{safe.msg} delivery={delivery_id.replace('%', '%%')}"
            else:
                if not safe.args:  # the message is %-formatted from now on
                    safe.msg = str(safe.msg).replace("%", "%%")
                safe.msg = f"{safe.msg} delivery=%s"
                safe.args = (*(safe.args or ()), delivery_id)
        return super().format(safe)

    def formatException(self, exc_info) -> str:
        # Each message is escaped where the traceback shows it ("Type: message" and each
        # note on lines of their own), so that a message "\n" leaves the other lines be.
        text = super().formatException(exc_info) + "\n"
        for message, shown in _exception_texts(exc_info[1]):
            if CONTROL.search(message):
                text = text.replace(shown.format(message), shown.format(escape_controls(message)))
        return text.removesuffix("\n")


def _delivery_of(record: logging.LogRecord) -> str | None:
    """The delivery id of the request a record is about (escaped; "-" if it names none),
    or None for a record about no request."""
    headers = getattr(getattr(record, "request", None), "headers", None)
    if not isinstance(headers, Mapping):
        return None
    return escape_controls(str(headers.get(DELIVERY_HEADER) or "-"))


def _exception_texts(error: BaseException | None) -> Iterator[tuple[str, str]]:
    """The message and notes of `error`, of its causes and contexts and of a group's, each
    with how a traceback shows it."""
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        message = None
        with contextlib.suppress(Exception):  # the traceback says "str() failed" then
            message = str(current)
        if message is not None:
            yield message, ": {}\n"
        notes = getattr(current, "__notes__", None)
        if isinstance(notes, list):
            yield from ((note, "\n{}\n") for note in notes if isinstance(note, str))
        pending += [current.__cause__, current.__context__]
        pending += getattr(current, "exceptions", ())
