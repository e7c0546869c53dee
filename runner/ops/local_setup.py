"""First-start state of the embedded setup: a data folder, generated secrets, an admin login."""

import os
import secrets
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
