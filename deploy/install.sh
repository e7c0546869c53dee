#!/usr/bin/env bash
# Install hookrunner from this checkout as a systemd service.
#   sudo deploy/install.sh
# Paths can be changed with APP_DIR, CONFIG_DIR and DATA_DIR. With DESTDIR set, files are
# staged under it (for packaging or inspection) and no user, service or venv is touched.
set -euo pipefail

SOURCE_DIR="$(cd "$(dirname "$0")/.." && pwd)"
APP_DIR="${APP_DIR:-/opt/hookrunner}"
CONFIG_DIR="${CONFIG_DIR:-/etc/hookrunner}"
DATA_DIR="${DATA_DIR:-/var/lib/hookrunner}"
UNIT_DIR="${UNIT_DIR:-/etc/systemd/system}"
DESTDIR="${DESTDIR:-}"

install -d "$DESTDIR$APP_DIR" "$DESTDIR$CONFIG_DIR" "$DESTDIR$DATA_DIR" "$DESTDIR$UNIT_DIR"
tar -C "$SOURCE_DIR" --exclude=.venv --exclude=var --exclude=.git --exclude=.env -cf - . \
    | tar -C "$DESTDIR$APP_DIR" -xf -

if [ ! -e "$DESTDIR$CONFIG_DIR/hookrunner.env" ]; then
    install -m 0640 "$SOURCE_DIR/deploy/hookrunner.env.example" "$DESTDIR$CONFIG_DIR/hookrunner.env"
fi
if [ ! -e "$DESTDIR$CONFIG_DIR/pipelines.yaml" ]; then
    install -m 0644 "$SOURCE_DIR/pipelines.yaml" "$DESTDIR$CONFIG_DIR/pipelines.yaml"
fi
for unit in "$SOURCE_DIR"/systemd/*.service "$SOURCE_DIR"/systemd/*.timer; do
    [ -e "$unit" ] || continue
    sed -e "s|@APP_DIR@|$APP_DIR|g" -e "s|@CONFIG_DIR@|$CONFIG_DIR|g" -e "s|@DATA_DIR@|$DATA_DIR|g" \
        "$unit" > "$DESTDIR$UNIT_DIR/$(basename "$unit")"
done

if [ -n "$DESTDIR" ]; then
    echo "staged under $DESTDIR"
    exit 0
fi

id hookrunner >/dev/null 2>&1 || useradd --system --home-dir "$DATA_DIR" --shell /usr/sbin/nologin hookrunner
chown -R hookrunner:hookrunner "$DATA_DIR"
chgrp hookrunner "$CONFIG_DIR/hookrunner.env"
make -C "$APP_DIR" .venv/bin/.installed
systemctl daemon-reload
echo "Edit $CONFIG_DIR/hookrunner.env (DJANGO_SECRET_KEY, WEBHOOK_SECRET, ALLOWED_HOSTS), then:"
echo "  systemctl enable --now hookrunner-web hookrunner-worker hookrunner-purge.timer"
