"""Helpers shared by the storage drivers: field names, limits, timestamps.

The driver toolkit - public and kept stable for third-party drivers too (the example
``jsonfile`` driver uses them): :data:`PUBLIC_FIELDS`, :func:`utcnow` and :func:`new_user`,
which builds the record ``create_user`` returns exactly as :mod:`myservice.storage.base`
specifies it.  Everything else here is an implementation detail of the built-in drivers
(memory and SQL), not part of the driver contract.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

#: keys of a user as returned by every driver
PUBLIC_FIELDS: tuple[str, ...] = (
    "id",
    "name",
    "email",
    "enabled",
    "description",
    "created_at",
    "updated_at",
)
#: keys ``update_user`` accepts
UPDATABLE: frozenset[str] = frozenset({"name", "email", "enabled", "description"})

ID_MAX = 36
NAME_MAX = 255
KEY_MAX = 255


def utcnow() -> datetime:
    """The current time as a timezone-aware UTC datetime (microsecond precision)."""
    return datetime.now(UTC)


def storable(value: Any, max_len: int) -> bool:
    """Whether ``value`` could be stored in a column of ``max_len`` characters.

    A string that cannot be stored (too long, a NUL character, a lone surrogate) cannot name
    an existing row, so lookups answer "not found" without asking the database - which would
    reject such strings with an error instead.
    """
    if not isinstance(value, str) or len(value) > max_len or "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def new_user(values: dict[str, Any]) -> dict[str, Any]:
    """A complete user record from the validated ``values`` of ``create_user``.

    Keys in :data:`PUBLIC_FIELDS` order: a new ``id`` (``str(uuid4())``), ``name`` as given,
    ``email`` and ``description`` (None when absent), ``enabled`` (a bool, True when absent),
    ``created_at`` equal to ``updated_at`` (:func:`utcnow`).  Other keys of ``values`` are
    ignored.  Nothing is stored: the driver stores the record (and checks that the name is
    unique) itself.
    """
    now = utcnow()
    return {
        "id": str(uuid.uuid4()),
        "name": values["name"],
        "email": values.get("email"),
        "enabled": bool(values.get("enabled", True)),
        "description": values.get("description"),
        "created_at": now,
        "updated_at": now,
    }


def changes(values: dict[str, Any]) -> dict[str, Any]:
    """The validated changes of ``update_user``; other keys are a caller bug."""
    unknown = set(values) - UPDATABLE
    if unknown:
        raise ValueError(
            f"update_user: cannot change {', '.join(sorted(unknown))} "
            f"(changeable: {', '.join(sorted(UPDATABLE))})"
        )
    out = dict(values)
    if "enabled" in out:
        out["enabled"] = bool(out["enabled"])
    return out
