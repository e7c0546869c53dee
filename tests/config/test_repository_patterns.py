import pytest

from runner.config.repository_patterns import (
    common_repository,
    covers,
    covers_every,
    is_exact,
    specificity,
)


@pytest.mark.parametrize(
    ("first", "second", "shared"),
    [
        ("acme/*", "*/shop", "acme/shop"),
        ("acme/*", "other/*", None),
        ("acme/*", "acme/*", "acme/a"),
        ("acme/web-*", "acme/*-api", "acme/web-api"),
        ("acme/[ab]", "acme/[bc]", "acme/b"),
        ("acme/[ab]", "acme/[!ab]", None),
        ("Acme/Shop", "acme/*", "Acme/Shop"),
        ("acme/shop", "ACME/SHOP", "acme/shop"),
        ("acme/shop", "acme/shop-old", None),
        ("acme/a!b", "acme/*", None),
        ("*/*", "?/x*", "a/x"),
    ],
)
def test_two_patterns_share_a_repository_when_one_name_fits_both(first, second, shared):
    assert common_repository(first, second) == shared
    assert (common_repository(second, first) is None) == (shared is None)
    if shared is not None:
        assert covers(first, shared) and covers(second, shared)


@pytest.mark.parametrize(
    ("outer", "inner", "covered"),
    [
        ("acme/*", "acme/shop", True),
        ("acme/shop", "acme/*", False),
        ("acme/*", "acme/web-*", True),
        ("acme/web-*", "acme/*", False),
        ("*/*", "[a-c]*/[!x]", True),
        ("acme/x?*", "acme/x*", False),
        ("acme/[a-z]*", "acme/[a-c]*", True),
        ("ACME/*", "acme/Shop", True),
    ],
)
def test_one_pattern_covers_another_when_it_covers_every_repository_of_it(outer, inner, covered):
    assert covers_every(outer, inner) is covered


def test_a_walk_past_its_bound_finds_nothing_rather_than_running_on():
    # The repositories of both exist, but telling takes more states than any real pattern.
    endless = "*/*a" + "?" * 20
    assert common_repository(endless, "*/*b" + "?" * 20) is None
    assert not covers_every(endless, endless)


def test_an_exact_name_is_more_specific_than_a_wildcard_then_literal_characters_count():
    assert is_exact("acme/shop") and not is_exact("acme/sho?")
    ranked = sorted(["*/*", "acme/shop", "acme/*", "acme/shop-*"], key=specificity)
    assert ranked == ["*/*", "acme/*", "acme/shop-*", "acme/shop"]
