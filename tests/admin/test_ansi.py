"""Terminal output as HTML: escaped always, colours as spans, other escapes gone."""

import pytest

from runner.admin.ansi import ansi_lines, ansi_to_html


def test_plain_text_is_only_escaped():
    assert ansi_to_html("a < b & c > d\n") == "a &lt; b &amp; c &gt; d\n"


def test_colours_become_spans_that_end_at_a_reset():
    assert ansi_to_html("\x1b[31mred\x1b[0m plain") == '<span class="ansi-red">red</span> plain'


def test_bold_and_bright_colours_combine():
    assert ansi_to_html("\x1b[1;92mok\x1b[22m still green\x1b[m") == (
        '<span class="ansi-bright-green ansi-bold">ok</span>'
        '<span class="ansi-bright-green"> still green</span>'
    )


def test_a_style_left_open_is_closed_at_the_end():
    assert ansi_to_html("\x1b[33mwarning") == '<span class="ansi-yellow">warning</span>'


def test_text_inside_a_colour_is_escaped_too():
    assert ansi_to_html("\x1b[31m<script>\x1b[0m") == '<span class="ansi-red">&lt;script&gt;</span>'


@pytest.mark.parametrize(
    "sequence",
    [
        "\x1b[2K",
        "\x1b[1A",
        "\x1b[?25l",
        "\x1b]0;window title\x07",
        "\x1b]8;;http://x\x1b\\",
        "\x1b(B",
    ],
    ids=["erase line", "cursor up", "hide cursor", "title", "hyperlink", "charset"],
)
def test_other_escape_sequences_are_dropped(sequence):
    assert ansi_to_html(f"a{sequence}b") == "ab"


def test_a_sequence_cut_off_at_the_end_is_dropped():
    assert ansi_to_html("done \x1b[3") == "done "


# Cases after ansi2html's own tests (tests/test_ansi2html.py: 256 colours, truecolour,
# attributes), written against this converter's classes and styles.
@pytest.mark.parametrize(
    ("text", "html"),
    [
        ("\x1b[38;5;33mblue", '<span style="color:#0087ff">blue</span>'),
        ("\x1b[48;5;31mon teal", '<span style="background-color:#0087af">on teal</span>'),
        ("\x1b[38;5;1mred", '<span class="ansi-red">red</span>'),
        ("\x1b[38;5;9mbright", '<span class="ansi-bright-red">bright</span>'),
        ("\x1b[38;5;244mgrey", '<span style="color:#808080">grey</span>'),
        ("\x1b[38;2;255;100;0morange", '<span style="color:#ff6400">orange</span>'),
        ("\x1b[48;2;1;2;3mdark", '<span style="background-color:#010203">dark</span>'),
        ("\x1b[38:2::10:20:30mcolons", '<span style="color:#0a141e">colons</span>'),
        ("\x1b[41mred ground", '<span class="ansi-bg-red">red ground</span>'),
        ("\x1b[104mbright ground", '<span class="ansi-bg-bright-blue">bright ground</span>'),
    ],
    ids=[
        "256 blue", "256 background", "256 low", "256 bright", "256 grey", "truecolour",
        "truecolour background", "colon form", "background", "bright background",
    ],
)  # fmt: skip
def test_256_colours_and_truecolour_keep_their_colour(text, html):
    assert ansi_to_html(text) == html


@pytest.mark.parametrize(
    ("code", "css_class"),
    [("2", "ansi-dim"), ("3", "ansi-italic"), ("4", "ansi-underline")],
)
def test_attributes_become_classes(code, css_class):
    assert ansi_to_html(f"\x1b[{code}mx\x1b[0m") == f'<span class="{css_class}">x</span>'


def test_attributes_end_each_at_its_own_code():
    assert ansi_to_html("\x1b[3;4mab\x1b[23mc\x1b[24md") == (
        '<span class="ansi-italic ansi-underline">ab</span><span class="ansi-underline">c</span>d'
    )


def test_reverse_swaps_foreground_and_background():
    assert ansi_to_html("\x1b[31;42;7mx") == '<span class="ansi-green ansi-bg-red">x</span>'


def test_reverse_of_default_colours_is_dark_on_light():
    assert ansi_to_html("\x1b[7mx\x1b[27my") == (
        '<span class="ansi-inverse-fg ansi-inverse-bg">x</span>y'
    )


def test_default_colour_codes_end_one_colour_only():
    assert ansi_to_html("\x1b[31;44mx\x1b[39my\x1b[49mz") == (
        '<span class="ansi-red ansi-bg-blue">x</span><span class="ansi-bg-blue">y</span>z'
    )


def test_a_colour_number_out_of_range_changes_nothing():
    assert ansi_to_html("\x1b[38;5;999mx\x1b[38;2;1mx") == "xx"


def test_a_progress_line_keeps_only_its_last_state():
    assert ansi_to_html("10%\r50%\r100%\ndone\n") == "100%\ndone\n"


def test_a_carriage_return_before_a_newline_keeps_the_line():
    assert ansi_to_html("windows line\r\nnext\r\r\n") == "windows line\nnext\n"


def test_a_colour_set_before_a_carriage_return_stays_in_force():
    assert ansi_to_html("\x1b[32m1/3\r2/3\r3/3\x1b[0m\n") == '<span class="ansi-green">3/3</span>\n'


def test_lines_come_each_with_their_own_spans():
    assert ansi_lines("\x1b[31mone\ntwo\x1b[0m\nthree") == [
        '<span class="ansi-red">one</span>',
        '<span class="ansi-red">two</span>',
        "three",
    ]


def test_lines_of_text_ending_in_a_newline_have_no_empty_last_line():
    assert ansi_lines("a\nb\n") == ["a", "b"]
    assert ansi_lines("") == []
