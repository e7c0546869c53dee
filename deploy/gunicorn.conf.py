"""gunicorn settings for hookrunner's receiver; every value can be set from the environment.

The receiver must answer GitHub within its 10 s, and answers in about a millisecond of
Python: it verifies the signature, stores the delivery and its runs in one transaction and
says 202; the runs themselves happen in the workers. Figures: bench/README.md.
"""

import sys

from django.core.exceptions import ImproperlyConfigured

# Importable as the application is: gunicorn puts its working directory on sys.path first.
from runner.config.env import env_int, env_str

# Read as settings.py reads its settings: an empty value is unset (an empty HOST would
# listen on every interface), and a malformed one stops gunicorn with one line naming it
# instead of gunicorn's "Failed to read config file" and a traceback.
try:
    bind = env_str("HOST", "127.0.0.1") + ":" + env_str("PORT", "8000")
    # About one process per core, each with its own interpreter lock: a delivery is
    # mostly Python. On SQLite too, as writers queue on a file lock (runner.models.db)
    # instead of SQLite's busy sleeps, which gave two processes a p99 of 749 ms.
    workers = env_int("WEB_WORKERS", 2)
    # Measured with bench/receiver.py on 2 cores: 4 threads beat 8 (less contention for
    # the interpreter lock) at concurrency 8 and 32 alike. Keep-alive connections stay
    # with the process that accepted them, often all with one: then it serves as one
    # process with 4 threads did.
    threads = env_int("WEB_THREADS", 4)
    accesslog = env_str("ACCESS_LOG") or None
except ImproperlyConfigured as error:
    sys.exit(str(error))
# gthread: measured to answer slow-closing clients without the sync worker's 2 s waits; a
# request's own waits (the commit's fsync, a slow upload) hold one thread, not the process.
# No gevent/eventlet: nothing here waits long enough to pay for monkey-patching Django's
# database drivers.
worker_class = "gthread"
# A process that has not told the arbiter it lives for this long is restarted. gthread's
# own loop tells it, whatever its request threads do: a slow request is not cut short.
timeout = 30
# On SIGTERM (systemctl stop), requests get this long; the unit's TimeoutStopSec is 30.
graceful_timeout = 10
# Idle keep-alive connections are held 5 s (in gthread's poller, not in a thread).
keepalive = 5
# gunicorn 27 opens a control socket by default at one fixed path; two instances on one
# machine would fight over it, and hookrunner does not use it.
control_socket_disable = True
# X-Forwarded-Proto is believed from FORWARDED_ALLOW_IPS (gunicorn's own variable, default
# 127.0.0.1 and ::1: a proxy on this machine), so Django sees HTTPS behind deploy/nginx.conf.
errorlog = "-"
wsgi_app = "runner.wsgi:application"
