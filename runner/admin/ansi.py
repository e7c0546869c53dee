"""Terminal output as HTML, as a terminal showed it: escaped, with ANSI styles as spans and
other escapes dropped.

Test runners and build tools colour their output; shown raw, "\\x1b[31m" is garbage.
SGR styles become spans: the 16 colours (foreground and background) and the attributes
(bold, dim, italic, underline, reverse) as `ansi-...` classes, 256-colour and truecolour
as inline colours. A progress line redrawn with `\\r` keeps only its last state. Every
other escape sequence (cursor moves, titles, erase) is removed. Output is cut into lines,
each with its own spans, so any line can be shown alone. Pure, no Django beyond
SafeString.

ansi2html (PyPI) does much of this, but works on whole documents and knows no `\\r`; the
cases of its tests for 256 colours, truecolour and attributes are in tests/admin/
test_ansi.py, held against this converter.
"""

import html
import re
from typing import NamedTuple

from django.utils.safestring import SafeString, mark_safe

# CSI sequences (ESC [ params final), OSC sequences (ESC ] ... BEL or ESC \), an
# unfinished CSI cut off at the very end, and other escapes (ESC intermediates final).
ESCAPE = re.compile(
    r"\x1b\[([0-?]*)[ -/]*([@-~])"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b\[[0-?]*[ -/]*$"
    r"|\x1b[ -/]*[0-~]?"
)
SGR = re.compile(r"\x1b\[([0-?]*)m")
COLOURS = ("black", "red", "green", "yellow", "blue", "magenta", "cyan", "white")
# xterm's 256-colour palette: a 6x6x6 cube from 16, then 24 greys from 232.
CUBE_LEVELS = (0, 95, 135, 175, 215, 255)
ATTRIBUTES = {1: "bold", 2: "dim", 3: "italic", 4: "underline", 7: "reverse"}
ATTRIBUTES_OFF = {22: ("bold", "dim"), 23: ("italic",), 24: ("underline",), 27: ("reverse",)}


class Style(NamedTuple):
    # A colour is "" (the terminal's own), a class name ("red", "bright-red") or "#rrggbb".
    fg: str = ""
    bg: str = ""
    bold: bool = False
    dim: bool = False
    italic: bool = False
    underline: bool = False
    reverse: bool = False


PLAIN = Style()


def ansi_to_html(text: str) -> SafeString:
    """`text` as HTML, its newlines kept."""
    if "\x1b" not in text and "\r" not in text:
        return mark_safe(html.escape(text, quote=False))  # noqa: S308 - escaped just now
    lines = ansi_lines(text)
    ending = "\n" if text.endswith("\n") else ""
    return mark_safe("\n".join(lines) + ending)  # noqa: S308 - each line is escaped


def ansi_lines(text: str, style: Style = PLAIN) -> list[SafeString]:
    """`text` cut into lines (a last newline ends the last line), each as HTML with the
    spans of the style in force, starting from `style`."""
    if not text:
        return []
    lines = text.removesuffix("\n").split("\n")
    if "\x1b" not in text and "\r" not in text:
        return [mark_safe(html.escape(line, quote=False)) for line in lines]  # noqa: S308
    converter = _Converter(style)
    return [converter.line(line) for line in lines]


class _Converter:
    """Turns each escape into the span tags that change the style in force.

    Logs repeat the same few codes thousands of times, so each (style, code) pair is
    worked out once."""

    def __init__(self, style: Style) -> None:
        self.style = style
        self.known: dict[tuple[Style, str], Style] = {}

    def line(self, line: str) -> SafeString:
        # The cursor went back to the start: what was drawn before is drawn over, but the
        # style it set is still in force.
        *drawn_over, last = line.rstrip("\r").split("\r")
        for part in drawn_over:
            for params in SGR.findall(part):
                self.style = self._after(params)
        opened = _open(self.style)
        # html.escape leaves ESC alone, so the sequences are still there to convert.
        body = ESCAPE.sub(self._replace, html.escape(last, quote=False))
        return mark_safe(opened + body + _close(self.style))  # noqa: S308 - escaped above

    def _replace(self, match: re.Match) -> str:
        if match.group(2) != "m":
            return ""
        before, self.style = self.style, self._after(match.group(1))
        return "" if before == self.style else _close(before) + _open(self.style)

    def _after(self, params: str) -> Style:
        key = (self.style, params)
        if key not in self.known:
            self.known[key] = _apply(self.style, params)
        return self.known[key]


def _apply(style: Style, params: str) -> Style:
    codes = params.split(";")
    while codes:
        code = codes.pop(0)
        if ":" in code:  # ISO 8613-6 sub-parameters: 38:5:N, 38:2::R:G:B
            style = _extended(style, code.split(":"))
        elif code in ("38", "48"):
            style = _extended(style, [code, *_take_colour(codes)])
        else:
            style = _simple(style, int(code) if code.isdigit() else 0)
    return style


def _take_colour(codes: list[str]) -> list[str]:
    """The parameters of a 38 or 48 taken from the front of `codes`."""
    size = {"5": 2, "2": 4}.get(codes[0] if codes else "", 1)
    taken = codes[:size]
    del codes[:size]
    return taken


def _extended(style: Style, parts: list[str]) -> Style:
    colour = _colour_of(parts[1:])
    if colour is None:
        return style
    return style._replace(fg=colour) if parts[0] == "38" else style._replace(bg=colour)


def _colour_of(parts: list[str]) -> str | None:
    numbers = [int(part) for part in parts[1:] if part.isdigit()]
    if parts[:1] == ["5"] and len(numbers) == 1 and numbers[0] <= 255:
        return _palette(numbers[0])
    if parts[:1] == ["2"] and len(numbers) >= 3 and all(n <= 255 for n in numbers[-3:]):
        return "#{:02x}{:02x}{:02x}".format(*numbers[-3:])
    return None


def _palette(number: int) -> str:
    if number < 8:
        return COLOURS[number]
    if number < 16:
        return f"bright-{COLOURS[number - 8]}"
    if number < 232:
        cube = number - 16
        levels = (CUBE_LEVELS[cube // 36], CUBE_LEVELS[cube // 6 % 6], CUBE_LEVELS[cube % 6])
        return "#{:02x}{:02x}{:02x}".format(*levels)
    grey = 8 + 10 * (number - 232)
    return f"#{grey:02x}{grey:02x}{grey:02x}"


def _simple(style: Style, code: int) -> Style:
    if code == 0:
        return PLAIN
    if code in ATTRIBUTES:
        return style._replace(**{ATTRIBUTES[code]: True})
    if code in ATTRIBUTES_OFF:
        return style._replace(**dict.fromkeys(ATTRIBUTES_OFF[code], False))
    if 30 <= code <= 37 or 90 <= code <= 97:
        return style._replace(fg=_palette(code % 10 + (8 if code >= 90 else 0)))
    if 40 <= code <= 47 or 100 <= code <= 107:
        return style._replace(bg=_palette(code % 10 + (8 if code >= 100 else 0)))
    if code == 39:
        return style._replace(fg="")
    if code == 49:
        return style._replace(bg="")
    return style


def _open(style: Style) -> str:
    if style == PLAIN:
        return ""
    fg, bg = (style.bg, style.fg) if style.reverse else (style.fg, style.bg)
    classes, css = [], []
    for colour, kind, prefix, inverse in (
        (fg, "color", "ansi-", "ansi-inverse-fg"),
        (bg, "background-color", "ansi-bg-", "ansi-inverse-bg"),
    ):
        if colour.startswith("#"):
            css.append(f"{kind}:{colour}")
        elif colour:
            classes.append(prefix + colour)
        elif style.reverse:
            classes.append(inverse)
    attributes = ("bold", "dim", "italic", "underline")
    classes += [f"ansi-{name}" for name in attributes if getattr(style, name)]
    html_attributes = [f'class="{" ".join(classes)}"'] if classes else []
    if css:
        html_attributes.append(f'style="{";".join(css)}"')
    return f"<span {' '.join(html_attributes)}>"


def _close(style: Style) -> str:
    return "" if style == PLAIN else "</span>"
