"""Terminal output as HTML: escaped, with ANSI colours as spans and other escapes dropped.

Test runners and build tools colour their output; shown raw, "\\x1b[31m" is garbage.
Colours (SGR 30-37, 90-97, bold) become `<span class="ansi-...">`; every other escape
sequence (cursor moves, titles, erase) is removed. Pure, no Django beyond SafeString.
"""

import html
import re

from django.utils.safestring import SafeString, mark_safe

# CSI sequences (ESC [ params final), OSC sequences (ESC ] ... BEL or ESC \), an
# unfinished CSI cut off at the very end, and other escapes (ESC intermediates final).
ESCAPE = re.compile(
    r"\x1b\[([0-?]*)[ -/]*([@-~])"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b\[[0-?]*[ -/]*$"
    r"|\x1b[ -/]*[0-~]?"
)
COLOURS = ("black", "red", "green", "yellow", "blue", "magenta", "cyan", "white")


def ansi_to_html(text: str) -> SafeString:
    # html.escape leaves ESC alone, so the sequences are still there to convert.
    escaped = html.escape(text, quote=False)
    if "\x1b" not in escaped:
        return mark_safe(escaped)  # noqa: S308 - escaped just now
    converter = _Converter()
    return mark_safe(ESCAPE.sub(converter.replace, escaped) + converter.close())  # noqa: S308


class _Converter:
    """Turns each escape into the span tags that change the style in force.

    Logs repeat the same few codes thousands of times, so each (style, code) pair is
    worked out once."""

    def __init__(self) -> None:
        self.style: tuple[str, bool] = ("", False)
        self.known: dict[tuple[tuple[str, bool], str], tuple[tuple[str, bool], str]] = {}

    def replace(self, match: re.Match) -> str:
        if match.group(2) != "m":
            return ""
        key = (self.style, match.group(1))
        if key not in self.known:
            after = _apply(self.style, match.group(1))
            self.known[key] = (after, _close(self.style) + _open(after))
        self.style, tags = self.known[key]
        return tags

    def close(self) -> str:
        return _close(self.style)


def _apply(style: tuple[str, bool], params: str) -> tuple[str, bool]:
    colour, bold = style
    for code in (int(part) if part.isdigit() else 0 for part in params.split(";")):
        if code == 0:
            colour, bold = "", False
        elif code in (1, 22):
            bold = code == 1
        elif 30 <= code <= 37:
            colour = COLOURS[code - 30]
        elif 90 <= code <= 97:
            colour = f"bright-{COLOURS[code - 90]}"
        elif code == 39:
            colour = ""
    return colour, bold


def _open(style: tuple[str, bool]) -> str:
    colour, bold = style
    classes = " ".join(filter(None, (colour and f"ansi-{colour}", bold and "ansi-bold")))
    return f'<span class="{classes}">' if classes else ""


def _close(style: tuple[str, bool]) -> str:
    return "</span>" if any(style) else ""
