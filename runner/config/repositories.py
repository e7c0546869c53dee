"""pipelines.yaml's repository entries, and what the entries covering one repository give
it: their pipelines, each with the repository's settings, and the most specific entry's
secrets and token. Pure, no ORM."""

from dataclasses import dataclass, field, replace

from runner.config import repository_patterns
from runner.config.pipelines import Pipeline
from runner.config.yaml_nodes import Problem


@dataclass(frozen=True)
class RepositoryEntry:
    """One entry of pipelines.yaml's repositories: its pattern, its pipelines, and the
    settings it gives the repositories it covers. A setting it leaves out is empty (None
    for report_status): a less specific entry covering the same repository may give it."""

    pattern: str
    pipelines: tuple[Pipeline, ...]
    secret_env: str = ""
    secret: str = field(default="", repr=False)
    # The variable holding the GitHub token for commit statuses.
    token_env: str = ""
    # The default of the repository's pipelines that have no report_status of their own.
    report_status: bool | None = None
    clone_url: str = ""
    line: int = 0

    def covers(self, repository: str) -> bool:
        # GitHub treats owner and repository names case-insensitively.
        return repository_patterns.covers(self.pattern, repository)

    @property
    def place(self) -> str:
        return f"{self.pattern} (line {self.line})"


class AmbiguousPipelines(ValueError):
    """Two entries covering one repository define a pipeline of the same name."""


@dataclass(frozen=True)
class Repository:
    """What pipelines.yaml gives one repository: the pipelines of every entry that covers
    it, in file order, and each setting from the most specific of them that gives it (an
    exact owner/name before a wildcard, then the one with more literal characters, then
    the one higher in the file)."""

    name: str
    entries: tuple[RepositoryEntry, ...]

    @property
    def patterns(self) -> str:
        return ", ".join(entry.pattern for entry in self.entries)

    @property
    def secret_env(self) -> str:
        return self.giving("secret_env").secret_env

    @property
    def secret(self) -> str:
        return self.giving("secret_env").secret

    @property
    def token_env(self) -> str:
        return self.giving("token_env").token_env

    @property
    def clone_url(self) -> str:
        return self.giving("clone_url").clone_url

    @property
    def report_status(self) -> bool:
        return bool(self.giving("report_status").report_status)

    @property
    def pipelines(self) -> tuple[Pipeline, ...]:
        """Every entry's pipelines, given the repository's settings; AmbiguousPipelines if
        two entries define one name (the file's checks refuse that as it is read)."""
        defined_by: dict[str, RepositoryEntry] = {}
        clone_url, token_env, report_status = self.clone_url, self.token_env, self.report_status
        pipelines = []
        for entry in self.entries:
            for pipeline in entry.pipelines:
                if (other := defined_by.setdefault(pipeline.name, entry)) is not entry:
                    raise AmbiguousPipelines(
                        f"{self.name}: pipeline {pipeline.name} is defined by both "
                        f"{other.place} and {entry.place}"
                    )
                own = pipeline.report_status
                pipelines.append(
                    replace(
                        pipeline,
                        clone_url=clone_url,
                        token_env=token_env,
                        report_status=report_status if own is None else own,
                    )
                )
        return tuple(pipelines)

    def giving(self, setting: str) -> RepositoryEntry:
        """The most specific entry that gives `setting`; else the most specific one."""
        ranked = sorted(
            self.entries,
            key=lambda entry: repository_patterns.specificity(entry.pattern),
            reverse=True,  # which keeps entries ranked alike in file order
        )
        return next(
            (entry for entry in ranked if getattr(entry, setting) not in ("", None)), ranked[0]
        )


@dataclass(frozen=True)
class Config:
    repositories: tuple[RepositoryEntry, ...]
    source: str = ""
    # Not problems, but worth saying: a variable that is not set, for a command that reads
    # no secret's value (load_pipelines' warn_of_unset).
    warnings: tuple[Problem, ...] = ()

    def repository(self, name: str) -> Repository | None:
        """What the entries covering `name` give it; None if no entry covers it."""
        entries = tuple(entry for entry in self.repositories if entry.covers(name))
        return Repository(name, entries) if entries else None

    def covering(self, entry: RepositoryEntry) -> Repository:
        """The entries covering every repository `entry` covers, itself among them: what
        each of those repositories is given at least."""
        entries = tuple(
            other
            for other in self.repositories
            if other is entry or repository_patterns.covers_every(other.pattern, entry.pattern)
        )
        return Repository(entry.pattern, entries)
