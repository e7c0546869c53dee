import re

import pytest

from runner.config.globs import BadGlob, compile_glob, matches_any, never_matches


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        ("main", "main", True),
        ("main", "main2", False),
        ("release/*", "release/1", True),
        ("release/*", "release/1/2", False),
        ("release/*", "release/", True),
        ("release/**", "release/1/2", True),
        ("**", "feature/deep/branch", True),
        ("*", "feature/x", False),
        ("*", "main", True),
        ("feature/**/fix", "feature/a/b/fix", True),
        ("feature/**/fix", "feature/fix", True),
        ("**/migrate-*.sql", "migrate-1.sql", True),
        ("**/migrate-*.sql", "db/old/migrate-1.sql", True),
        ("**/migrate-*.sql", "db/migrate-1.sql.bak", False),
        ("docs/**", "docs", False),
        ("v*", "v1.2.0", True),
        ("v[12].*", "v1.0", True),
        ("v[12].*", "v3.0", False),
        ("v[!12].*", "v3.0", True),
        ("v1.?0", "v1.0", True),
        ("v10?", "v1", True),
        ("v10?", "v10", True),
        ("v1+", "v111", True),
        ("v1+", "v", False),
        ("a.b", "axb", False),
        ("$(rm -rf ~)", "$(rm -rf ~)", True),
    ],
)
def test_glob_follows_github_actions_rules(pattern, name, matches):
    assert compile_glob(pattern).matches(name) is matches


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("", "empty pattern"),
        ("!", "'!' must be followed by a pattern"),
        ("v[12", "'[' at position 2 is never closed"),
        ("?v", "'?' at position 1 has no character to act on"),
        ("*+", "'+' at position 2 has no character to act on"),
        ("a??", "'?' at position 3 has no character to act on"),
        ("a+?", "'?' at position 3 has no character to act on"),
        ("release\\", "'\\' at position 8 has no character to make literal"),
    ],
)
def test_bad_glob_says_what_is_wrong(pattern, problem):
    with pytest.raises(BadGlob, match=re.escape(problem)):
        compile_glob(pattern)


def test_later_negation_excludes_what_earlier_patterns_matched():
    globs = (compile_glob("release/**"), compile_glob("!release/**-alpha"))
    assert matches_any(globs, "release/1.0")
    assert not matches_any(globs, "release/1.0-alpha")


def test_a_positive_pattern_after_a_negation_includes_again():
    globs = (compile_glob("**"), compile_glob("!wip/*"), compile_glob("wip/keep"))
    assert matches_any(globs, "wip/keep")
    assert not matches_any(globs, "wip/other")


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        (r"releases/\*\*", "releases/**", True),
        (r"releases/\*\*", "releases/1", False),
        (r"v1.0\+", "v1.0+", True),
        (r"v1.0\+", "v1.00", False),
        (r"what\?", "what?", True),
        (r"what\?", "wha", False),
        (r"a\??", "a", True),
        (r"a\??", "a?", True),
        (r"c\++", "c+++", True),
        (r"\[draft]*", "[draft] x", True),
        (r"\[draft]*", "d x", False),
        (r"back\\slash", r"back\slash", True),
    ],
)
def test_a_backslash_makes_the_next_character_literal(pattern, name, matches):
    assert compile_glob(pattern).matches(name) is matches


def test_an_escaped_exclamation_mark_starts_a_pattern_instead_of_negating_it():
    glob = compile_glob(r"\!important")
    assert not glob.negated
    assert glob.matches("!important")
    assert not glob.matches("important")


def test_a_list_of_only_negations_never_matches_anything():
    only_negations = (compile_glob("!main"), compile_glob("!dev"))
    assert never_matches(only_negations)
    assert not any(matches_any(only_negations, name) for name in ("main", "feature", "dev"))
    assert not never_matches((compile_glob("**"), compile_glob("!main")))
    assert not never_matches((compile_glob(r"\!main"),))
    assert not never_matches(())
