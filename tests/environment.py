"""Loaded with `-p` before Django reads its settings: tests never touch var/ or real secrets."""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="hookrunner-test-"))
os.environ.setdefault("DJANGO_SECRET_KEY", "test-django-secret-key")
os.environ.setdefault("WEBHOOK_SECRET", "test-webhook-secret")
(Path(os.environ["DATA_DIR"]) / "static").mkdir(parents=True, exist_ok=True)
