"""What every test and every process a test starts runs against."""

import os
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def test_no_process_of_the_tests_reads_the_example_pipelines_file_users_edit():
    code = "import django; django.setup(); from django.conf import settings; "
    code += "print(settings.PIPELINES_FILE)"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "runner.settings"}
    started = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
        cwd=BASE_DIR,
    )  # fmt: skip
    assert Path(started.stdout.strip()) == BASE_DIR / "tests" / "fixtures" / "pipelines.yaml"
