#!/usr/bin/env bash
# Run manage.py of an installed hookrunner as its services do: as the hookrunner user, in
# APP_DIR, with nothing but hookrunner.env (read as systemd reads it) in the environment.
#   sudo /opt/hookrunner/deploy/manage.sh createsuperuser
#   sudo /opt/hookrunner/deploy/manage.sh purge --dry-run
# CONFIG_DIR (default /etc/hookrunner) says where hookrunner.env is.
set -euo pipefail

APP_DIR="$(cd "$(dirname "$0")/.." && pwd)"
ENV_FILE="${CONFIG_DIR:-/etc/hookrunner}/hookrunner.env"
SERVICE_USER=hookrunner

[ "$(id -u)" -eq 0 ] || { echo "manage.sh: run me as root (sudo $0 ...)" >&2; exit 1; }
home="$(getent passwd "$SERVICE_USER" | cut -d: -f6)"
# python-dotenv takes NAME=value lines, quotes and whole-line comments as systemd's
# EnvironmentFile= does (and, told so, expands no ${OTHER} either).
mapfile -d '' settings < <("$APP_DIR/.venv/bin/python" -c 'import sys
from dotenv import dotenv_values
for name, value in dotenv_values(sys.argv[1], interpolate=False).items():
    sys.stdout.write(f"{name}={value or str()}\0")' "$ENV_FILE")
cd "$APP_DIR"
exec runuser -u "$SERVICE_USER" -- env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$home" \
    LANG=C.UTF-8 "${settings[@]}" "$APP_DIR/.venv/bin/python" manage.py "$@"
