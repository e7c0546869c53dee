from django.conf import settings
from django.core.checks import Error, register


@register()
def webhook_secret_is_set(app_configs, **kwargs) -> list[Error]:
    if settings.WEBHOOK_SECRET:
        return []
    return [
        Error(
            "No webhook secret is configured: hookrunner would accept forged deliveries.",
            hint=(
                "Set WEBHOOK_SECRET (or WEBHOOK_SECRET_FILE) in the environment or in .env "
                "to the secret you enter on GitHub's webhook page; `make run` generates one "
                f"into {settings.WEBHOOK_SECRET_FILE}."
            ),
            id="hookrunner.E001",
        )
    ]


@register()
def django_secret_key_is_set(app_configs, **kwargs) -> list[Error]:
    if settings.SECRET_KEY:
        return []
    return [
        Error(
            "DJANGO_SECRET_KEY is not set.",
            hint="Set DJANGO_SECRET_KEY (or DJANGO_SECRET_KEY_FILE); `make run` generates one.",
            id="hookrunner.E002",
        )
    ]
