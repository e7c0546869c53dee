"""docs/settings.md's table against the code: every variable hookrunner reads from the
environment is documented there, and every variable documented there is read."""

import ast
import importlib.util
import re
from pathlib import Path

# The env_* helpers settings.py reads its settings through.
HELPERS = {"env_str", "env_bool", "env_int", "env_float", "env_list", "env_secret"}

# Settings read outside settings.py, with where each is read: a file of this repository,
# or a module of a dependency.
READ_ELSEWHERE = {
    # The serve command (`make run`): whether to create an admin login.
    "ADMIN_LOGIN": "runner/management/commands/serve.py",
    # deploy/gunicorn.conf.py: where gunicorn listens, with how many processes and
    # threads, and its access log. (serve and selftest read HOST and PORT as well.)
    "HOST": "deploy/gunicorn.conf.py",
    "PORT": "deploy/gunicorn.conf.py",
    "WEB_WORKERS": "deploy/gunicorn.conf.py",
    "WEB_THREADS": "deploy/gunicorn.conf.py",
    "ACCESS_LOG": "deploy/gunicorn.conf.py",
    # gunicorn's own config module: the proxies whose X-Forwarded-Proto it believes.
    "FORWARDED_ALLOW_IPS": "gunicorn.config",
}
# Variables the code reads by name that are no settings of hookrunner.
NOT_SETTINGS = {
    # The trigger command's default --actor: the user's login name.
    "USER",
    # git's HOME, where the worker's user keeps its SSH key for private repositories.
    "HOME",
}


def project_root() -> Path:
    for folder in Path(__file__).resolve().parents:
        if (folder / "pyproject.toml").is_file():
            return folder
    raise AssertionError("no pyproject.toml above this test")


def source_of(where: str) -> Path:
    """A path of this repository, or a module's file."""
    if where.endswith(".py"):
        return project_root() / where
    spec = importlib.util.find_spec(where)
    assert spec is not None and spec.origin, f"module {where} is not installed"
    return Path(spec.origin)


def _first_string(call: ast.Call) -> str | None:
    if call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
        return call.args[0].value
    return None


def _is_os_environ(node: ast.expr) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ"


def names_read(path: Path) -> set[str]:
    """Variables the file reads: the first string argument of every env_* helper call,
    and os.environ.get(NAME), os.environ[NAME], os.getenv(NAME)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Call):
            function = node.func
            called = function.attr if isinstance(function, ast.Attribute) else None
            if isinstance(function, ast.Name):
                called = function.id
            reads = called in HELPERS or called == "getenv"
            if called == "get" and isinstance(function, ast.Attribute):
                reads = _is_os_environ(function.value)
            if reads and (name := _first_string(node)) is not None:
                names.add(name)
        elif isinstance(node, ast.Subscript) and _is_os_environ(node.value):
            key = node.slice
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                names.add(key.value)
    return names


def documented() -> list[str]:
    """The backticked name in the first column of each row of docs/settings.md's table."""
    names = []
    for line in (project_root() / "docs" / "settings.md").read_text().splitlines():
        if not line.startswith("|"):
            continue
        first = line.strip("|").split("|")[0].strip()
        if first == "Variable" or set(first) <= {"-", ":", " "}:
            continue
        found = re.findall(r"`([^`]+)`", first)
        assert len(found) == 1, f"docs/settings.md: one `NAME` per row, not {first!r}"
        names.append(found[0])
    return names


def test_the_variables_read_elsewhere_are_read_where_this_test_says():
    for name, where in READ_ELSEWHERE.items():
        assert name in names_read(source_of(where)), f"{where} does not read {name}"


def test_no_other_code_reads_a_variable_by_name():
    """A variable read anywhere else must join READ_ELSEWHERE (and the table)."""
    root = project_root()
    known = names_read(root / "runner" / "settings.py") | set(READ_ELSEWHERE) | NOT_SETTINGS
    unknown = {
        f"{path.relative_to(root)}: {name}"
        for path in [*root.glob("runner/**/*.py"), *root.glob("deploy/*.py")]
        for name in names_read(path) - known
    }
    assert not unknown, "read, but unknown to this test: " + ", ".join(sorted(unknown))


def test_the_settings_table_documents_every_variable_read_and_nothing_else():
    table = documented()
    repeated = sorted({name for name in table if table.count(name) > 1})
    assert not repeated, f"docs/settings.md lists these more than once: {', '.join(repeated)}"
    read = names_read(project_root() / "runner" / "settings.py") | set(READ_ELSEWHERE)
    undocumented = sorted(read - set(table))
    unread = sorted(set(table) - read)
    assert not undocumented and not unread, (
        "docs/settings.md's table is out of step with the code:\n"
        f"  read but undocumented: {', '.join(undocumented) or 'none'}\n"
        f"  documented but never read: {', '.join(unread) or 'none'}"
    )
