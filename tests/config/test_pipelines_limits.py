"""Loading pipelines.yaml does bounded work: hostile or runaway YAML (a merge-key bomb, deep
nesting, a huge file, tags that do not construct) is a validation problem with its
file:line, like any other, never an exception, a stall or gigabytes of memory."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runner.config import yaml_limits
from runner.config.pipelines_file import PipelinesError, load_pipelines, parse_pipelines

BASE_DIR = Path(__file__).resolve().parents[2]

VALID = """\
repositories:
  acme/webapp:
    pipelines:
      test:
        on: {push: null}
        steps: [{name: test, run: make test}]
"""


def problems(text: str) -> list[str]:
    with pytest.raises(PipelinesError) as raised:
        parse_pipelines(text, "pipelines.yaml", {})
    return [str(problem) for problem in raised.value.problems]


def merge_bomb(levels: int = 6, width: int = 150) -> str:
    """`<<: [*a, *a, ...]` nested `levels` deep under the file's root: a few KB of text
    that stands for width**levels entries once the merges are flattened."""
    lines = ["a0: &a0 {" + ", ".join(f"k{i}: v" for i in range(10)) + "}"]
    for level in range(1, levels + 1):
        aliases = ", ".join([f"*a{level - 1}"] * width)
        lines.append(f"a{level}: &a{level} {{<<: [{aliases}]}}")
    lines.append(f"<<: *a{levels}")
    return "\n".join(lines) + "\n"


# Runs in a child process, which cannot grow past 1 GiB (a regression fails there instead
# of taking the machine): prints the problems, then the most memory the parse held at once
# in bytes (tracemalloc's peak: ru_maxrss would include the memory pytest had at the fork).
MEASURE = """\
import resource, sys, tracemalloc
resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30))
from runner.config.pipelines_file import PipelinesError, parse_pipelines
text = sys.stdin.read()
tracemalloc.start()
try:
    parse_pipelines(text, "bomb.yaml", {})
    print("accepted")
except PipelinesError as error:
    print(error)
except MemoryError:
    print("MemoryError")
print(tracemalloc.get_traced_memory()[1])
"""


def test_a_merge_key_bomb_is_refused_with_bounded_memory():
    bomb = merge_bomb()
    assert len(bomb) < 6000  # the size of the one that took the receiver to 2.9 GB
    measured = subprocess.run(
        [sys.executable, "-c", MEASURE],
        input=bomb,
        capture_output=True,
        text=True,
        cwd=BASE_DIR,
        timeout=300,  # a hang guard, not a speed target
    )
    assert measured.returncode == 0, measured.stderr
    *said, peak_bytes = measured.stdout.splitlines()
    assert len(said) == 1, said[:3]
    assert said[0].startswith("bomb.yaml:3: file: ")
    assert "more than 100,000 YAML nodes" in said[0]
    assert "alias *a1" in said[0]
    assert int(peak_bytes) < 100 * 2**20


def test_aliases_count_as_the_nodes_they_stand_for_each_time(monkeypatch):
    monkeypatch.setattr(yaml_limits, "MAX_NODES", 100)
    steps = ", ".join(["*step"] * 20)
    text = VALID + f"x-step: &step {{name: s, run: echo, env: {{A: '1', B: '2'}}}}\nx: [{steps}]\n"
    (problem,) = problems(text)
    assert problem.startswith("pipelines.yaml:8: file: alias *step takes the file past ")
    assert "more than 100 YAML nodes" in problem


def test_composed_nodes_are_counted(monkeypatch):
    monkeypatch.setattr(yaml_limits, "MAX_NODES", 100)
    items = "".join(f"  - {index}\n" for index in range(200))
    # VALID has 20 nodes, long: and its list 2 more: the 79th item, on line 86, is one too many.
    assert problems(f"{VALID}long:\n{items}") == [
        "pipelines.yaml:86: file: has more than 100 YAML nodes, the most a pipelines file may have"
    ]


def test_the_node_limit_stops_the_file_where_it_is_crossed():
    items = ",".join(["1"] * (yaml_limits.MAX_NODES + 1))
    (problem,) = problems(f"{VALID}long: [{items}]\n")
    assert problem.startswith("pipelines.yaml:7: file: has more than 100,000 YAML nodes")


def test_shared_anchors_and_merge_keys_within_the_limits_still_work():
    text = textwrap.dedent("""\
        repositories:
          acme/webapp:
            pipelines:
              test:
                <<: &defaults {timeout: 20m, runs_on: deploy}
                on: {push: null}
                steps: [&step {name: test, run: make test}]
              lint:
                <<: [*defaults]
                on: {push: null}
                steps: [*step]
        """)
    pipelines = parse_pipelines(text, "pipelines.yaml", {}).repositories[0].pipelines
    assert [(p.name, p.timeout, p.runs_on, p.steps[0].run) for p in pipelines] == [
        ("test", 1200, "deploy", "make test"),
        ("lint", 1200, "deploy", "make test"),
    ]


def test_deep_nesting_is_a_problem_with_its_line_not_a_recursion_error():
    text = VALID + "deep: " + "[" * 10_000 + "]" * 10_000 + "\n"
    (problem,) = problems(text)
    assert problem == (
        "pipelines.yaml:7: file: nests deeper than 100 levels, the most a pipelines file may have"
    )


def test_nesting_up_to_the_limit_is_read_and_one_more_level_is_not():
    # The root mapping is the first level, its values the second: 99 lists reach 100.
    def nested(lists: int) -> str:
        return VALID + "deep: " + "[" * lists + "]" * lists + "\n"

    unknown = "pipelines.yaml:7: file: unknown key 'deep' (allowed: repositories)"
    assert problems(nested(yaml_limits.MAX_DEPTH - 1)) == [unknown]
    (problem,) = problems(nested(yaml_limits.MAX_DEPTH))
    assert "nests deeper than 100 levels" in problem


def test_an_alias_counts_at_the_depth_it_stands_for():
    # Each anchor nests a level deeper than the one it names, though each sits on one line.
    lines = ["a0: &a0 [1]"] + [f"a{n}: &a{n} [*a{n - 1}]" for n in range(1, 120)]
    (problem,) = problems(VALID + "\n".join(lines) + "\n")
    assert problem.startswith("pipelines.yaml:105: file: nests deeper than 100 levels")


def test_a_merge_chain_cannot_outgrow_the_stack():
    lines = ["m0: &m0 {k: v}"] + [f"m{n}: &m{n} {{<<: *m{n - 1}}}" for n in range(1, 3000)]
    lines.append("<<: *m2999")
    (problem,) = problems(VALID + "\n".join(lines) + "\n")
    assert "nests deeper than 100 levels" in problem


def test_an_alias_inside_the_node_it_names_is_refused():
    (problem,) = problems(VALID + "loop: &loop [a, *loop]\n")
    assert problem == (
        "pipelines.yaml:7: file: alias *loop is used inside the node it names; "
        "a pipelines file cannot refer to itself"
    )


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path):
    path = tmp_path / "pipelines.yaml"
    path.write_text(VALID + "# padding\n" * (yaml_limits.MAX_FILE_BYTES // 10))
    with pytest.raises(PipelinesError) as raised:
        load_pipelines(path, {})
    (problem,) = (str(problem) for problem in raised.value.problems)
    size = path.stat().st_size
    assert problem == (
        f"{path}:0: file: is {size:,} bytes; a pipelines file may have at most 1,048,576 (1 MiB)"
    )


def test_a_file_at_the_size_limit_is_read(tmp_path):
    path = tmp_path / "pipelines.yaml"
    padding = yaml_limits.MAX_FILE_BYTES - len(VALID.encode())
    path.write_text(VALID + "#" * (padding - 1) + "\n")
    assert path.stat().st_size == yaml_limits.MAX_FILE_BYTES
    assert load_pipelines(path, {}).repositories[0].pattern == "acme/webapp"


@pytest.mark.parametrize(
    ("value", "line", "message"),
    [
        ("!!int abc", 6, "invalid literal for int()"),
        ("!!float x", 6, "could not convert string to float"),
        ("!!bool maybe", 6, "'maybe' is not a valid !!bool"),
        ("!!timestamp 2020-99-99", 6, "month must be in 1..12"),
        ("1" + "0" * 5000, 6, "Exceeds the limit (4300 digits)"),
        ("!!python/object:os.system x", 6, "could not determine a constructor"),
    ],
)
def test_a_scalar_that_does_not_construct_is_a_problem(value, line, message):
    text = VALID.replace("steps:", f"timeout: {value}\n        steps:")
    (problem,) = problems(text)
    assert problem.startswith(f"pipelines.yaml:{line}: ")
    assert message in problem


def test_a_merge_of_something_not_a_mapping_is_a_problem():
    text = VALID.replace("      test:\n", "      test:\n        <<: 5\n")
    assert problems(text) == [
        "pipelines.yaml:5: repositories.acme/webapp.pipelines.test: cannot merge: "
        "expected a mapping or list of mappings for merging, but found scalar"
    ]
