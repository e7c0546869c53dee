import os
from pathlib import Path

from django.conf import settings
from django.core.checks import Error, register

from runner.config.pipelines_file import PipelinesError, load_pipelines


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
def pipelines_file_is_valid(app_configs, **kwargs) -> list[Error]:
    try:
        load_pipelines(Path(settings.PIPELINES_FILE), os.environ)
    except PipelinesError as error:
        return [
            Error(
                f"{settings.PIPELINES_FILE} is invalid:\n{error}",
                hint="Fix the lines above; `manage.py check_pipelines` lists every problem.",
                id="hookrunner.E002",
            )
        ]
    return []
