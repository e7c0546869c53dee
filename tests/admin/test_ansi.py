"""Terminal output as HTML: escaped always, colours as spans, other escapes gone."""

import pytest

from runner.admin.ansi import ansi_to_html


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
