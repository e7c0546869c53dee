"""First-start state of the embedded setup: a data folder, generated secrets, an admin login."""

import errno
import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

ADMIN_USERNAME = "admin"


def ensure_secret_file(path: Path) -> str:
    """The secret stored at `path`, generated (readable by its owner only) when absent."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    value = secrets.token_urlsafe(32)
    with os.fdopen(descriptor, "w") as file:
        file.write(value + "\n")
    return value


@dataclass(frozen=True)
class AdminLogin:
    """A superuser to log in as (None: there is none); `password` only when just created."""

    username: str | None
    password: str | None = None


def first_superuser() -> str | None:
    users = get_user_model()
    return (
        users.objects.filter(is_superuser=True)
        .order_by("pk")
        .values_list(users.USERNAME_FIELD, flat=True)
        .first()
    )


def ensure_admin_login(create: bool = True) -> AdminLogin:
    """The first superuser; with `create` and none at all, `admin` with a random password.

    The password is returned to be shown once and is kept nowhere but in the database,
    hashed. A user already named `admin` that is no superuser is left alone.
    """
    existing = first_superuser()
    if existing is not None or not create:
        return AdminLogin(existing)
    password = secrets.token_urlsafe(12)
    try:
        with transaction.atomic():
            get_user_model().objects.create_superuser(ADMIN_USERNAME, password=password)
    except IntegrityError:
        return AdminLogin(first_superuser())
    return AdminLogin(ADMIN_USERNAME, password)


def port_taken(host: str, port: int) -> str | None:
    """Why gunicorn could not listen on `host`:`port`, saying what to change; None if it
    can. Checked before anything starts: gunicorn alone would retry, then only say that
    a child process exited."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            # As gunicorn binds: a port whose old connections linger is not taken.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host.strip("[]"), port))
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            return (
                f"port {port} on {host} is already in use (another hookrunner, or another "
                f"server); stop it, or choose another port: PORT={port + 1} make run"
            )
        return f"cannot listen on {host}:{port}: {error.strerror}; set HOST and PORT"
    return None
