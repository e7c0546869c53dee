"""Which webhook secrets the receiver accepts, from settings and pipelines.yaml."""

from django.conf import settings

from runner.pipelines import Config
from runner.pipelines_file import PipelinesError
from runner.pipelines_store import current_pipelines


def _config() -> Config | None:
    try:
        return current_pipelines()
    except PipelinesError:
        return None


def accepted_secrets() -> list[str]:
    """Every secret some delivery may be signed with."""
    config = _config()
    per_repository = [entry.secret for entry in config.repositories] if config else []
    return [settings.WEBHOOK_SECRET, *per_repository]


def secret_fits(secret: str, repository: str) -> bool:
    """Whether a delivery about `repository` may be signed with `secret`.

    A repository whose entry names a secret_env accepts only that secret; deliveries with
    no repository (an organization's ping) accept any configured secret.
    """
    if not repository:
        return True
    config = _config()
    entry = config.entry_for(repository) if config else None
    if entry is not None and entry.secret_env:
        return secret == entry.secret
    return secret == settings.WEBHOOK_SECRET
