#!/usr/bin/env bash
# Install (or upgrade) hookrunner from this checkout on Debian 12 or 13 as systemd services:
#   sudo deploy/install.sh
# On a fresh machine: installs git (and python3, python3-venv) from Debian, creates the
# hookrunner user and its folders, builds a virtual environment on Python 3.12+, writes
# /etc/hookrunner/hookrunner.env with fresh secrets, migrates the database, and enables
# and starts the units in ENABLE. Run again (to upgrade, after `git pull`): brings code,
# dependencies, units and database up to date and changes nothing else; an existing
# hookrunner.env or pipelines.yaml is never touched, nor which units are enabled. Then
# restart the services (README, "Deploying with systemd").
#
# Settings (environment variables):
#   APP_DIR=/opt/hookrunner  CONFIG_DIR=/etc/hookrunner  DATA_DIR=/var/lib/hookrunner
#   UNIT_DIR=/etc/systemd/system
#   PYTHON=/path/to/python3.13  the interpreter of the virtual environment (default: the
#                               first of python3.13, python3.12, python3 that is 3.12+)
#   ENABLE="unit ..."           units to enable and start. Default, only where no hookrunner
#                               unit is enabled yet: hookrunner-web.service,
#                               hookrunner-worker@default.service,
#                               hookrunner-worker@deploy.service, hookrunner-purge.timer.
#                               ENABLE= (empty) enables none.
#   MIGRATE=no                  do not migrate (a machine that only runs workers: the
#                               receiver's machine migrates the shared database)
#   DESTDIR=/some/folder        stage the files under it (packaging, inspection, tests): no
#                               user, package, virtual environment, database or service is
#                               touched, and the environment file gets no secrets
set -euo pipefail

SOURCE_DIR="$(cd "$(dirname "$0")/.." && pwd)"
APP_DIR="${APP_DIR:-/opt/hookrunner}"
CONFIG_DIR="${CONFIG_DIR:-/etc/hookrunner}"
DATA_DIR="${DATA_DIR:-/var/lib/hookrunner}"
UNIT_DIR="${UNIT_DIR:-/etc/systemd/system}"
DESTDIR="${DESTDIR:-}"
DEFAULT_ENABLE="hookrunner-web.service hookrunner-worker@default.service \
hookrunner-worker@deploy.service hookrunner-purge.timer"
SERVICE_USER=hookrunner
ENV_FILE="$CONFIG_DIR/hookrunner.env"
VENV="$APP_DIR/.venv"

say() { echo "install.sh: $*"; }
fail() {
    echo "install.sh: $*" >&2
    exit 1
}
apt_install() {
    command -v apt-get >/dev/null || return 1
    say "installing $* from Debian"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "$@" >/dev/null \
        || { apt-get update -q >/dev/null && apt-get install -y -q "$@" >/dev/null; }
}
is_python_3_12() { "$@" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; }

# The interpreter for the virtual environment: PYTHON, else the first 3.12+ found.
find_python() {
    local candidates=(python3.13 python3.12 python3) candidate path
    [ -z "${PYTHON:-}" ] || candidates=("$PYTHON")
    for candidate in "${candidates[@]}"; do
        path="$(command -v "$candidate")" && is_python_3_12 "$path" && echo "$path" && return
    done
    return 1
}

no_python() {
    local release=""
    [ -r /etc/os-release ] && release="$(. /etc/os-release && echo "${VERSION_ID:-}")"
    if [ -n "${PYTHON:-}" ]; then
        echo "install.sh: PYTHON=$PYTHON is not a Python 3.12 or newer." >&2
    else
        echo "install.sh: hookrunner needs Python 3.12 or newer, and none was found." >&2
    fi
    if [ "$release" = 12 ]; then
        cat >&2 <<'EOF'
Debian 12 (bookworm) has Python 3.11 only. Either upgrade the machine to Debian 13
(trixie), whose python3 is 3.13, and run this again; or install a Python 3.12+ where the
hookrunner user can run it (not under /root), for example with uv:
    curl -LsSf https://astral.sh/uv/install.sh | sh
    sudo UV_PYTHON_INSTALL_DIR=/opt/python ~/.local/bin/uv python install 3.13
and name it:
    sudo PYTHON="$(ls /opt/python/cpython-3.13*/bin/python3.13)" deploy/install.sh
EOF
    else
        cat >&2 <<'EOF'
Install one (Debian 13: apt-get install python3 python3-venv), or name one the hookrunner
user can run (not under /root):  sudo PYTHON=/path/to/python3.13 deploy/install.sh
EOF
    fi
    exit 1
}

# ---- Before anything changes: root, Python 3.12+ with venv, git. A staged install
# needs none of them.
if [ -z "$DESTDIR" ]; then
    [ "$(id -u)" -eq 0 ] || fail "run me as root (sudo $0), or set DESTDIR to stage files"
    # A minimal Debian 13 may lack python3 (3.13); Debian 12's (3.11) is explained below.
    find_python >/dev/null || [ -n "${PYTHON:-}" ] || command -v python3 >/dev/null \
        || apt_install python3 || true
    PY="$(find_python)" || no_python
    if ! "$PY" -c 'import ensurepip, venv' 2>/dev/null; then
        { [ -z "${PYTHON:-}" ] && apt_install python3-venv; } \
            || fail "$PY cannot create virtual environments (no ensurepip): install its venv"
    fi
    # Steps with checkout: true clone and fetch with git.
    command -v git >/dev/null || apt_install git ca-certificates \
        || fail "git is missing: install it"
fi

# ---- The user (home: DATA_DIR) and the folders.
if [ -z "$DESTDIR" ] && ! id "$SERVICE_USER" >/dev/null 2>&1; then
    say "creating the system user $SERVICE_USER"
    useradd --system --user-group --home-dir "$DATA_DIR" --no-create-home \
        --shell /usr/sbin/nologin "$SERVICE_USER"
fi
install -d -m 0755 "$DESTDIR$APP_DIR" "$DESTDIR$CONFIG_DIR" "$DESTDIR$UNIT_DIR"
# Not recursive: what is inside was made by the services.
owner=()
[ -n "$DESTDIR" ] || owner=(-o "$SERVICE_USER" -g "$SERVICE_USER")
install -d -m 0750 "${owner[@]}" "$DESTDIR$DATA_DIR"
if [ -z "$DESTDIR" ]; then
    runuser -u "$SERVICE_USER" -- "$PY" -c '' 2>/dev/null \
        || fail "the $SERVICE_USER user cannot run $PY (under /root?); name another: PYTHON=..."
fi

# ---- The code, owned by root: the services read it and never change it.
archive="$(mktemp)"
trap 'rm -f "$archive"' EXIT
tar -C "$SOURCE_DIR" --owner=0 --group=0 --mode=go-w,a+rX \
    --exclude=./.git --exclude=./.venv --exclude=./var --exclude=./.env --exclude=./build \
    --exclude=__pycache__ --exclude='*.egg-info' --exclude=.pytest_cache --exclude=.ruff_cache \
    -cf "$archive" .
tar -C "$DESTDIR$APP_DIR" --no-same-owner -xf "$archive"
# Files an earlier install put there that this checkout no longer has go (a removed
# migration would otherwise still run); nothing else in APP_DIR is touched.
manifest="$DESTDIR$APP_DIR/.installed-files"
tar -tf "$archive" | grep -v '/$' | LC_ALL=C sort > "$manifest.new"
if [ -f "$manifest" ]; then
    LC_ALL=C comm -23 "$manifest" "$manifest.new" | while IFS= read -r gone; do
        rm -f -- "$DESTDIR$APP_DIR/$gone"
    done
fi
mv "$manifest.new" "$manifest"

# ---- Configuration: written once, never overwritten; with this install's folders, and in
# a real install new secrets.
if [ ! -e "$DESTDIR$ENV_FILE" ]; then
    edits=(-e "s|^DATA_DIR=.*|DATA_DIR=$DATA_DIR|"
        -e "s|^PIPELINES_FILE=.*|PIPELINES_FILE=$CONFIG_DIR/pipelines.yaml|")
    if [ -z "$DESTDIR" ]; then
        for name in DJANGO_SECRET_KEY WEBHOOK_SECRET; do
            value="$("$PY" -c 'import secrets; print(secrets.token_urlsafe(32))')"
            edits+=(-e "s|^$name=\$|$name=$value|")
        done
    fi
    (umask 0137 && sed "${edits[@]}" "$SOURCE_DIR/deploy/hookrunner.env.example" \
        > "$DESTDIR$ENV_FILE.new")
    [ -n "$DESTDIR" ] || chgrp "$SERVICE_USER" "$DESTDIR$ENV_FILE.new"
    mv "$DESTDIR$ENV_FILE.new" "$DESTDIR$ENV_FILE"
    [ -n "$DESTDIR" ] || say "wrote $ENV_FILE with a new DJANGO_SECRET_KEY and WEBHOOK_SECRET"
fi
if [ ! -e "$DESTDIR$CONFIG_DIR/pipelines.yaml" ]; then
    install -m 0644 "$SOURCE_DIR/pipelines.yaml" "$DESTDIR$CONFIG_DIR/pipelines.yaml"
fi

# ---- Units, with the paths filled in. The template hookrunner-worker@.service replaced
# hookrunner-worker.service (below: a machine that has it gets the equivalent instance).
old_worker_unit=false
[ -e "$DESTDIR$UNIT_DIR/hookrunner-worker.service" ] && old_worker_unit=true
for unit in "$SOURCE_DIR"/systemd/*.service "$SOURCE_DIR"/systemd/*.timer; do
    target="$DESTDIR$UNIT_DIR/$(basename "$unit")"
    sed -e "s|@APP_DIR@|$APP_DIR|g" -e "s|@CONFIG_DIR@|$CONFIG_DIR|g" \
        -e "s|@DATA_DIR@|$DATA_DIR|g" "$unit" > "$target.new"
    chmod 0644 "$target.new"
    mv "$target.new" "$target"
done

if [ -n "$DESTDIR" ]; then
    rm -f "$DESTDIR$UNIT_DIR/hookrunner-worker.service"
    say "staged under $DESTDIR"
    exit 0
fi

# ---- The virtual environment: made once (again if the service user cannot run it),
# then brought to the pinned versions. Dependencies only: the code runs from APP_DIR.
if ! runuser -u "$SERVICE_USER" -- "$VENV/bin/python" -c 'import sys
sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
    say "creating the virtual environment $VENV with $PY"
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
fi
requirements="$(mktemp)"
trap 'rm -f "$archive" "$requirements"' EXIT
"$VENV/bin/python" -c 'import sys, tomllib
print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]))' \
    "$APP_DIR/pyproject.toml" > "$requirements"
say "installing the pinned dependencies into $VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check --no-input \
    -c "$APP_DIR/constraints.txt" -r "$requirements"
# The services cannot write APP_DIR: compile once what each start would compile again.
"$VENV/bin/python" -m compileall -q "$APP_DIR/runner"

# ---- Migrations, as the services would run them.
if [ "${MIGRATE:-yes}" != no ]; then
    say "migrating the database"
    CONFIG_DIR="$CONFIG_DIR" "$APP_DIR/deploy/manage.sh" migrate --no-input
fi

# ---- systemd: units loaded; enabled and started where none was yet, or as ENABLE says.
if [ ! -d /run/systemd/system ]; then
    rm -f "$UNIT_DIR/hookrunner-worker.service"
    say "systemd is not running: units are in $UNIT_DIR, none enabled or started"
    exit 0
fi
if [ "$old_worker_unit" = true ]; then
    if systemctl is-enabled --quiet hookrunner-worker.service; then
        # It took the queues of WORKER_QUEUES (default *); the instance name says them now.
        queues="$(sed -n 's/^WORKER_QUEUES=//p' "$ENV_FILE" | tail -n 1)"
        instance="$(echo "${queues:-*}" | tr , :)"
        [ "$instance" = "*" ] && instance=all
        ENABLE="${ENABLE-} hookrunner-worker@$instance.service"
        say "hookrunner-worker.service is replaced by hookrunner-worker@$instance.service"
    fi
    systemctl disable --now hookrunner-worker.service
    rm -f "$UNIT_DIR/hookrunner-worker.service"
fi
systemctl daemon-reload
if [ -z "${ENABLE+set}" ] && ! compgen -G "/etc/systemd/system/*.wants/hookrunner-*" >/dev/null
then
    ENABLE="$DEFAULT_ENABLE"
fi
if [ -n "${ENABLE:-}" ]; then
    say "enabling and starting $ENABLE"
    # shellcheck disable=SC2086  # a list of unit names
    systemctl enable --now $ENABLE
fi
cat <<EOF
install.sh: done. hookrunner runs as $SERVICE_USER from $APP_DIR, its state in $DATA_DIR.
  settings, secrets  $ENV_FILE (GitHub's webhook secret: WEBHOOK_SECRET there)
  pipelines          $CONFIG_DIR/pipelines.yaml
  status, logs       systemctl status 'hookrunner-*'    journalctl -u 'hookrunner-*' -f
After changing settings, and after an upgrade, restart:
  systemctl restart hookrunner-web.service 'hookrunner-worker@*.service'
EOF
