"""Which webhook secrets the receiver accepts, from settings and pipelines.yaml."""

from django.conf import settings

from runner.config.repositories import Config


def accepted_secrets(config: Config | None) -> list[str]:
    """Every secret some delivery may be signed with, each once: every one of them costs
    an HMAC of the body on each delivery."""
    per_repository = [entry.secret for entry in config.repositories] if config else []
    return list(dict.fromkeys(s for s in [settings.WEBHOOK_SECRET, *per_repository] if s))


def secret_fits(config: Config | None, secret: str, repository: str) -> bool:
    """Whether a delivery about `repository` may be signed with `secret`.

    A repository given a secret_env (by the most specific of the entries covering it that
    names one) accepts only that secret; deliveries with no repository (an organization's
    ping) accept any configured secret.
    """
    if not repository:
        return True
    covered = config.repository(repository) if config else None
    if covered is not None and covered.secret_env:
        return secret == covered.secret
    return secret == settings.WEBHOOK_SECRET
