"""What people who know GitHub Actions write in pipelines.yaml, answered with hookrunner's
own key: one spelt with `-` where hookrunner's has `_` (branches-ignore, tags-ignore,
paths-ignore, cancel-in-progress...), runs-on and timeout-minutes.

Each is a problem rather than a second spelling, so a file, its check_pipelines summary
and the documentation keep one name for each key. (`on: push` and `on: [push,
pull_request]` mean what they mean on GitHub: runner.config.pipelines_triggers reads them.)
"""

from collections.abc import Collection

from yaml.nodes import Node, ScalarNode


def actions_key_hint(key: str, value: Node, allowed: Collection[str]) -> str | None:
    """What to say of an unknown `key` that GitHub Actions knows; None if it does not."""
    if key == "runs-on" and "runs_on" in allowed:
        return _runs_on_hint(value)
    if key == "timeout-minutes" and "timeout" in allowed:
        return _timeout_hint(value)
    if key == "workflow_dispatch" and "manual" in allowed:
        return "hookrunner calls it manual (on: manual, with inputs as on GitHub)"
    if key == "options" and "choices" in allowed:
        return "hookrunner calls them choices"
    ours = key.replace("-", "_")
    if ours != key and ours in allowed:
        return f"hookrunner spells it {ours}"
    return None


def _runs_on_hint(value: Node) -> str:
    label = f" such as {value.value!r}" if isinstance(value, ScalarNode) and value.value else ""
    return (
        f"hookrunner's runs_on names a worker queue ('default' if left out), not a runner "
        f"label{label}: steps run on the machine of a worker taking that queue"
    )


def _timeout_hint(value: Node) -> str:
    minutes = value.value if isinstance(value, ScalarNode) and value.value.isdigit() else "20"
    return f"hookrunner's is timeout, a duration: timeout: {minutes}m"
