import re

import pytest

from runner.config.globs import BadGlob, compile_glob, matches_any


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
