"""Loaded with `-p` before Django reads its settings: tests never touch var/, real secrets
or the example pipelines.yaml at the root, which is the user's to edit."""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="hookrunner-test-"))
os.environ.setdefault("DJANGO_SECRET_KEY", "test-django-secret-key")
os.environ.setdefault("WEBHOOK_SECRET", "test-webhook-secret")
(Path(os.environ["DATA_DIR"]) / "static").mkdir(parents=True, exist_ok=True)
# A file, not memory: live-server threads and subprocesses then each get their own
# connection, as in production, instead of sharing one in-memory connection.
os.environ.setdefault("TEST_SQLITE_NAME", str(Path(os.environ["DATA_DIR"]) / "test.sqlite3"))
# Every process a test starts inherits it (serve, gunicorn, workers), unless told another.
os.environ["PIPELINES_FILE"] = str(Path(__file__).parent / "fixtures" / "pipelines.yaml")
