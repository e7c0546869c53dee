"""gunicorn settings for hookrunner's receiver; every value can be set from the environment."""

import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
# gthread: measured to answer slow-closing clients without the sync worker's 2 s waits.
worker_class = "gthread"
# One process on SQLite (its writes are serialised in-process); more on PostgreSQL.
workers = int(os.environ.get("WEB_WORKERS", "1"))
# Measured with bench/receiver.py on 2 cores: 4 threads beat 8 (less contention for the
# interpreter lock) at concurrency 8 and 32 alike.
threads = int(os.environ.get("WEB_THREADS", "4"))
timeout = 30
graceful_timeout = 10
keepalive = 5
# gunicorn 27 opens a control socket by default at one fixed path; two instances on one
# machine would fight over it, and hookrunner does not use it.
control_socket_disable = True
accesslog = os.environ.get("ACCESS_LOG") or None
errorlog = "-"
wsgi_app = "runner.wsgi:application"
