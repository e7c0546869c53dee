"""What pipelines.yaml has hookrunner send out: commit statuses (report_status, which
needs a token_env) and notify: entries, each an http(s) URL with its on: and secret_env."""

from urllib.parse import urlsplit

from yaml.nodes import Node, ScalarNode, SequenceNode

from runner.config.pipelines import DEFAULT_NOTIFY_ON, NOTIFY_ON, Notify
from runner.config.pipelines_env import EnvReader
from runner.config.repositories import RepositoryEntry
from runner.config.yaml_nodes import NodeReader, node_under

NOTIFY_KEYS = {"url": True, "on": False, "secret_env": False}
REPORT_STATUS_PROBLEM = "report_status needs token_env: the variable holding a GitHub token"


class OutboundReader:
    """Checks report_status against token_env and reads notify: entries."""

    def __init__(self, nodes: NodeReader, env_reader: EnvReader) -> None:
        self.nodes = nodes
        self.env_reader = env_reader

    def check_token_env(
        self, entry: RepositoryEntry, nodes: dict[str, Node], default: Node | None, where: str
    ) -> None:
        """For an entry no token_env reaches: none of its pipelines may report statuses;
        the problem points at the report_status: true that asks for it."""
        for pipeline in entry.pipelines:
            own = pipeline.report_status
            if own if own is not None else entry.report_status:
                # A pipeline with no report_status of its own has the repository's.
                self.nodes.problem(
                    default if own is None else node_under(nodes[pipeline.name], "report_status"),
                    where,
                    REPORT_STATUS_PROBLEM,
                )
                return

    def notify(self, node: Node | None, where: str) -> tuple[Notify, ...]:
        """A list of {url, on, secret_env}; a plain URL stands for {url: URL}, and one
        entry alone counts as a list of one."""
        if node is None:
            return ()
        if isinstance(node, SequenceNode):
            if not node.value:
                self.nodes.problem(node, where, "is an empty list")
            items = [(item, f"{where}[{index}]") for index, item in enumerate(node.value)]
        else:
            items = [(node, where)]
        targets: list[Notify] = []
        for item, place in items:
            target = self.notify_target(item, place)
            if target is None:
                continue
            if any(other.url == target.url for other in targets):
                self.nodes.problem(item, place, f"duplicate url {target.url!r}")
                continue
            targets.append(target)
        return tuple(targets)

    def notify_target(self, node: Node, where: str) -> Notify | None:
        if isinstance(node, ScalarNode):
            url = self.url(node, where)
            return Notify(url) if url else None
        fields = self.nodes.mapping(node, where, NOTIFY_KEYS)
        if fields is None or "url" not in fields:
            return None
        url = self.url(fields["url"], f"{where}.url")
        on = self.nodes.string(fields.get("on"), f"{where}.on", DEFAULT_NOTIFY_ON)
        if on not in NOTIFY_ON:
            choices = ", ".join(NOTIFY_ON)
            self.nodes.problem(fields["on"], f"{where}.on", f"{on!r} is not one of {choices}")
        secret_env = ""
        if "secret_env" in fields:
            secret_env = self.env_reader.env_reference(fields["secret_env"], f"{where}.secret_env")
        return Notify(url, on, secret_env) if url else None

    def url(self, node: Node, where: str) -> str | None:
        """An http:// or https:// URL, or None once the problem is reported."""
        url = self.nodes.scalar(node, where, str, "a string")
        if url is not None and not _is_http_url(url):
            self.nodes.problem(node, where, f"{url!r} is not an http:// or https:// URL")
            return None
        return url


def _is_http_url(url: str) -> bool:
    if any(char.isspace() or not char.isprintable() for char in url):
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
