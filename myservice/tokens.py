"""The API token store: a JSON file of hashed tokens, managed with ``myservice-manage token``.

A token handed to a client is ``<token_id>.<secret>``.  The file keeps, per ``token_id``, only
the SHA-256 of the secret, plus ``user_id``, ``project_id``, ``roles`` (list), ``created_at``,
``expires_at`` (``null``: never) and ``revoked``; so a copy of the file cannot be used to call
the API.  Secrets are compared with :func:`hmac.compare_digest`.

File format (``version`` 1)::

    {"version": 1, "tokens": {"<token_id>": {"secret_sha256": "...", "user_id": "...",
      "project_id": "...", "roles": ["admin"], "created_at": "2025-01-01T00:00:00Z",
      "expires_at": null, "revoked": false}}}

Writes are atomic (a temporary file in the same directory, then ``os.replace``), the file has
mode ``0600``, and concurrent writers are serialised by ``fcntl.flock`` on ``<file>.lock``.
A missing file means "no tokens".
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from myservice.conf import ConfigError
from myservice.suggest import did_you_mean

FORMAT_VERSION = 1


class TokenStoreError(ConfigError):
    """The token file is unreadable or malformed, or a token operation is impossible.
    The message names the file and is meant for the operator as is."""


class TokenFileUnreadable(TokenStoreError):
    """The token file could not be read or stat'ed (an ``OSError``: permissions, I/O, too
    many open files): perhaps passing, unlike a file whose content is not valid."""


@dataclass(frozen=True)
class TokenRecord:
    """One stored token (never its secret).  Times are POSIX timestamps (UTC)."""

    token_id: str
    secret_sha256: str
    user_id: str
    project_id: str
    roles: tuple[str, ...]
    created_at: float
    expires_at: float | None = None
    revoked: bool = False

    def is_valid(self, now: float) -> bool:
        """Not revoked and not expired at ``now``."""
        return not self.revoked and (self.expires_at is None or now < self.expires_at)

    def to_json(self) -> dict:
        return {
            "secret_sha256": self.secret_sha256,
            "user_id": self.user_id,
            "project_id": self.project_id,
            "roles": list(self.roles),
            "created_at": format_time(self.created_at),
            "expires_at": None if self.expires_at is None else format_time(self.expires_at),
            "revoked": self.revoked,
        }


def format_time(ts: float) -> str:
    """``ts`` as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: object, where: str) -> float:
    if not isinstance(text, str):
        raise TokenStoreError(f"{where}: expected a time like 2025-01-31T12:00:00Z, got {text!r}")
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise TokenStoreError(
            f"{where}: expected a time like 2025-01-31T12:00:00Z, got {text!r}"
        ) from None


def hash_secret(secret: str) -> str:
    """Hex SHA-256 of a token secret."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def split_token(token: str) -> tuple[str, str] | None:
    """``(token_id, secret)`` of a token string, or ``None`` if it is not of that form."""
    token_id, sep, secret = token.partition(".")
    if not sep or not token_id or not secret:
        return None
    return token_id, secret


def verify(
    records: Mapping[str, TokenRecord], token: str, now: float | None = None
) -> TokenRecord | None:
    """The record a presented ``token`` authenticates, or ``None`` (unknown id, wrong secret,
    revoked or expired: callers must not tell these apart in their answer)."""
    parts = split_token(token)
    if parts is None:
        return None
    record = records.get(parts[0])
    if record is None:
        return None
    if not hmac.compare_digest(
        hashlib.sha256(parts[1].encode("utf-8", "surrogateescape")).hexdigest(),
        record.secret_sha256,
    ):
        return None
    if not record.is_valid(time.time() if now is None else now):
        return None
    return record


def _record(token_id: str, data: object, where: str) -> TokenRecord:
    where = f"{where}: token {token_id!r}"
    if not isinstance(data, dict):
        raise TokenStoreError(f"{where}: expected an object, got {type(data).__name__}")
    for key in ("secret_sha256", "user_id", "project_id"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise TokenStoreError(f"{where}: field {key!r} must be a non-empty string")
    roles = data.get("roles")
    if not isinstance(roles, list) or not all(isinstance(r, str) and r for r in roles):
        raise TokenStoreError(f"{where}: field 'roles' must be a list of non-empty strings")
    revoked = data.get("revoked", False)
    if not isinstance(revoked, bool):
        raise TokenStoreError(f"{where}: field 'revoked' must be true or false")
    expires = data.get("expires_at")
    return TokenRecord(
        token_id=token_id,
        secret_sha256=data["secret_sha256"],
        user_id=data["user_id"],
        project_id=data["project_id"],
        roles=tuple(roles),
        created_at=_parse_time(data.get("created_at"), f"{where}: field 'created_at'"),
        expires_at=None
        if expires is None
        else _parse_time(expires, f"{where}: field 'expires_at'"),
        revoked=revoked,
    )


class TokenStore:
    """The token file at ``path``.  Instances hold no cached state: every call reads the file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")

    # -- reading ---------------------------------------------------------------------------

    def stamp(self) -> tuple[int, int, int] | None:
        """``(inode, size, mtime_ns)`` of the file, ``None`` if missing: changes on every write."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TokenFileUnreadable(f"{self.path}: cannot read token file: {exc}") from None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def load(self) -> dict[str, TokenRecord]:
        """Every record by token id; ``{}`` if the file does not exist.

        Raises :class:`TokenStoreError` naming the file (and the token and field) when the file
        cannot be read or is not a valid token file."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise TokenFileUnreadable(f"{self.path}: cannot read token file: {exc}") from None
        except UnicodeDecodeError as exc:  # its content, not a passing failure
            raise TokenStoreError(f"{self.path}: not UTF-8 text: {exc}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TokenStoreError(f"{self.path}: not valid JSON: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("tokens"), dict):
            raise TokenStoreError(
                f"{self.path}: not a token file: expected an object with a 'tokens' object"
            )
        if data.get("version") != FORMAT_VERSION:
            raise TokenStoreError(
                f"{self.path}: unsupported token file version {data.get('version')!r}, "
                f"expected {FORMAT_VERSION}"
            )
        where = str(self.path)
        return {tid: _record(tid, rec, where) for tid, rec in data["tokens"].items()}

    # -- writing ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise TokenStoreError(f"{self.lock_path}: cannot create lock file: {exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _write(self, records: Mapping[str, TokenRecord]) -> None:
        data = {
            "version": FORMAT_VERSION,
            "tokens": {tid: rec.to_json() for tid, rec in sorted(records.items())},
        }
        text = json.dumps(data, indent=2, sort_keys=True) + "\n"
        try:
            fd, tmp = tempfile.mkstemp(
                dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp"
            )
        except OSError as exc:
            raise TokenStoreError(f"{self.path}: cannot write token file: {exc}") from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                os.fchmod(handle.fileno(), 0o600)
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise TokenStoreError(f"{self.path}: cannot write token file: {exc}") from None

    def create(
        self,
        user_id: str,
        project_id: str,
        roles: list[str] | tuple[str, ...],
        expires_in: float | None = None,
        now: float | None = None,
    ) -> tuple[str, TokenRecord]:
        """Add a token; returns ``(token, record)``.  ``token`` is the only copy of the secret.

        ``expires_in`` is in seconds (``None``: never expires)."""
        for label, value in (("user id", user_id), ("project id", project_id)):
            if not value or not value.isprintable() or value != value.strip():
                raise TokenStoreError(
                    f"{label} must be a non-empty printable string without surrounding "
                    f"spaces, got {value!r}"
                )
        if not roles:
            raise TokenStoreError("at least one role is required (e.g. --role reader)")
        for role in roles:
            if not role or "," in role or not role.isprintable() or role != role.strip():
                raise TokenStoreError(
                    f"role {role!r} is not valid: expected a non-empty name without commas "
                    "or spaces around it (e.g. admin, reader)"
                )
        if expires_in is not None and expires_in <= 0:
            raise TokenStoreError(f"expiry must be a positive number of seconds, got {expires_in}")
        now = time.time() if now is None else now
        secret = secrets.token_urlsafe(32)
        with self._locked():
            records = self.load()
            token_id = secrets.token_hex(8)
            while token_id in records:  # pragma: no cover - 64 random bits
                token_id = secrets.token_hex(8)
            record = TokenRecord(
                token_id=token_id,
                secret_sha256=hash_secret(secret),
                user_id=user_id,
                project_id=project_id,
                roles=tuple(dict.fromkeys(roles)),
                created_at=float(int(now)),
                expires_at=None if expires_in is None else float(int(now + expires_in)),
            )
            records[token_id] = record
            self._write(records)
        return f"{token_id}.{secret}", record

    def purge(self, now: float) -> list[TokenRecord]:
        """Remove every record that can no longer authenticate (revoked, or expired at
        ``now``) and return them, oldest first; the file is rewritten only if one is
        removed.  Safe beside a running service, which reloads the file."""
        with self._locked():
            records = self.load()
            gone = [record for record in records.values() if not record.is_valid(now)]
            if gone:
                for record in gone:
                    del records[record.token_id]
                self._write(records)
        return sorted(gone, key=lambda record: (record.created_at, record.token_id))

    def revoke(self, token_id: str) -> TokenRecord:
        """Mark ``token_id`` revoked (idempotent); returns the updated record."""
        with self._locked():
            records = self.load()
            record = records.get(token_id)
            if record is None:
                hint = did_you_mean(token_id, records)
                raise TokenStoreError(
                    f"{self.path}: no token with id {token_id!r}{hint} "
                    "(see 'myservice-manage token list')"
                )
            if not record.revoked:
                record = TokenRecord(**{**record.__dict__, "revoked": True})
                records[token_id] = record
                self._write(records)
        return record
