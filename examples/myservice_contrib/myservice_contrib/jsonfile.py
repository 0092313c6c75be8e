"""``jsonfile``: a storage driver keeping every user in one JSON file.

Enable it in ``etc/myservice.conf``::

    [storage]
    driver = jsonfile

    [plugin:jsonfile]
    # default: %(state_path)s/users.json; relative paths are relative to this file
    path = %(state_path)s/users.json
    # fsync the file and its directory on every write (default true)
    fsync = true

The file is ``{"format": 1, "users": [USER, ...]}`` in creation order, each ``USER`` holding
the user's fields (timestamps as ISO 8601 UTC), its ``metadata`` object.

Safety:

* **crash-safe**: a change writes the whole document to a temporary file in the same
  directory, ``fsync``-s it, ``os.replace``-s it over the file and ``fsync``-s the directory;
  the file is always either the old or the new document;
* **thread-safe**: one lock per driver instance around every operation;
* **process-safe**: every change holds an exclusive ``fcntl.flock`` on ``PATH.lock`` for its
  read-modify-write, and re-reads the file first when it changed (inode, size or mtime differ
  from what this instance last read); reads re-read a changed file too.  Several processes
  (gunicorn workers) may share one file on a local file system.

It rewrites the whole file on each change: it is meant for small installations and as a
template for the :class:`myservice.storage.base.StorageDriver` contract, not for thousands of
writes per second.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from myservice.conf import Config
from myservice.storage import common
from myservice.storage.base import (
    Conflict,
    MarkerNotFound,
    NotFound,
    StartupError,
    StorageDriver,
    Unavailable,
    User,
)
from myservice_contrib._options import parse_bool, resolve_path, section_options

LOG = logging.getLogger(__name__)

PLUGIN = "jsonfile"
FORMAT = 1
_FIELDS = common.PUBLIC_FIELDS

_Identity = tuple[int, int, int, int]  # device, inode, size, mtime_ns


def _identity(st: os.stat_result) -> _Identity:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _to_json(user: User) -> dict[str, Any]:
    out = {k: user[k] for k in _FIELDS}
    out["created_at"] = user["created_at"].isoformat()
    out["updated_at"] = user["updated_at"].isoformat()
    return out


def _from_json(raw: dict[str, Any]) -> User:
    user = {k: raw[k] for k in _FIELDS}
    user["created_at"] = datetime.fromisoformat(raw["created_at"])
    user["updated_at"] = datetime.fromisoformat(raw["updated_at"])
    return user


class _State:
    """The parsed document: users in creation order, indexes, metadata."""

    def __init__(self) -> None:
        self.users: list[User] = []
        self.metadata: dict[str, dict[str, str]] = {}
        self.by_id: dict[str, int] = {}
        self.by_name: dict[str, str] = {}

    @classmethod
    def parse(cls, doc: Any, where: str) -> _State:
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValueError(f"{where}: not a jsonfile document of format {FORMAT}")
        state = cls()
        for raw in doc.get("users", []):
            user = _from_json(raw)
            state.users.append(user)
            state.metadata[user["id"]] = dict(raw.get("metadata", {}))
        state.reindex()
        return state

    def reindex(self) -> None:
        self.by_id = {u["id"]: i for i, u in enumerate(self.users)}
        self.by_name = {u["name"]: u["id"] for u in self.users}

    def dump(self) -> bytes:
        users = [{**_to_json(u), "metadata": self.metadata[u["id"]]} for u in self.users]
        # ensure_ascii keeps any string (even a lone surrogate) encodable
        return json.dumps({"format": FORMAT, "users": users}, indent=1).encode("ascii")

    def index_of(self, user_id: Any) -> int:
        index = self.by_id.get(user_id) if isinstance(user_id, str) else None
        if index is None:
            raise NotFound(f"no user with id {user_id!r}")
        return index


class JSONFileDriver(StorageDriver):
    """Users in one JSON file.  See the module docstring for the file and its guarantees."""

    name = PLUGIN

    def __init__(self, conf: Config) -> None:
        super().__init__(conf)
        options = section_options(conf, PLUGIN, ("path", "fsync"), StartupError)
        self.path = resolve_path(conf, options.get("path", "%(state_path)s/users.json"))
        self.fsync = parse_bool(conf, PLUGIN, "fsync", options.get("fsync", "true"), StartupError)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self._lock = threading.RLock()
        self._state = _State()
        self._seen: _Identity | None = None

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Create the directory and an empty file if missing; refuse an unreadable file."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._locked_file():
                if not self.path.exists():
                    self._write(_State())
                self._refresh(force=True)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StartupError(
                f"[plugin:{PLUGIN}] path = {self.path}: cannot use this file: "
                f"{type(exc).__name__}: {exc} (fix or remove it, or set another path)"
            ) from exc
        LOG.info("jsonfile storage at %s", self.path)

    def check(self) -> None:
        with self._lock:
            self._refresh()

    # -- file handling -----------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked_file(self) -> Iterator[None]:
        """The instance lock and an exclusive flock on ``PATH.lock`` (other processes)."""
        with self._lock:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # releases the flock

    def _refresh(self, force: bool = False) -> None:
        """Re-read the file if it is not the version last read (caller holds ``_lock``)."""
        try:
            with open(self.path, "rb") as handle:
                identity = _identity(os.fstat(handle.fileno()))
                if not force and identity == self._seen:
                    return
                data = handle.read()
            self._state = _State.parse(json.loads(data), str(self.path))
            self._seen = identity
        # a read failed: whatever the call was, it has changed nothing (the API may then tell
        # the client to simply retry a write)
        except OSError as exc:
            raise Unavailable(
                f"cannot read {self.path}: {exc.strerror or exc}", nothing_written=True
            ) from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise Unavailable(
                f"{self.path} is not a valid jsonfile document: {exc}", nothing_written=True
            ) from exc

    def _write(self, state: _State) -> None:
        """Atomically replace the file with ``state`` (caller holds the file lock)."""
        directory = self.path.parent
        fd, tmp = tempfile.mkstemp(prefix=self.path.name + ".", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(state.dump())
                handle.flush()
                if self.fsync:
                    os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        if self.fsync:
            dir_fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        self._state = state
        self._seen = _identity(os.stat(self.path))

    @contextlib.contextmanager
    def _change(self) -> Iterator[_State]:
        """Read-modify-write: yields a copy of the current state to change; written on exit
        unless the block raised."""
        with self._locked_file():
            self._refresh()
            current = self._state
            draft = _State()
            draft.users = list(current.users)
            draft.metadata = dict(current.metadata)
            draft.by_id = current.by_id
            draft.by_name = current.by_name
            yield draft
            try:
                self._write(draft)
            except OSError as exc:
                raise Unavailable(f"cannot write {self.path}: {exc.strerror or exc}") from exc

    def _read(self) -> _State:
        with self._lock:
            self._refresh()
            return self._state

    # -- users -------------------------------------------------------------------------------

    def create_user(self, values: User) -> User:
        user = common.new_user(values)
        with self._change() as state:
            if user["name"] in state.by_name:
                raise Conflict(f"a user named {user['name']!r} already exists")
            state.users.append(user)
            state.metadata[user["id"]] = {}
            state.by_id = {**state.by_id, user["id"]: len(state.users) - 1}
            state.by_name = {**state.by_name, user["name"]: user["id"]}
        return dict(user)

    def get_user(self, user_id: str) -> User:
        state = self._read()
        return dict(state.users[state.index_of(user_id)])

    def list_users(
        self, limit: int, marker: str | None = None, name: str | None = None
    ) -> list[User]:
        state = self._read()
        start = 0
        if marker is not None:
            index = state.by_id.get(marker) if isinstance(marker, str) else None
            if index is None:
                raise MarkerNotFound(f"no user with id {marker!r}")
            start = index + 1
        out: list[User] = []
        for user in state.users[start:]:
            if len(out) >= limit:
                break
            if name is None or user["name"] == name:
                out.append(dict(user))
        return out

    def update_user(self, user_id: str, values: User) -> User:
        with self._change() as state:
            index = state.index_of(user_id)
            user = dict(state.users[index])
            new_name = values.get("name", user["name"])
            if new_name != user["name"]:
                if new_name in state.by_name:
                    raise Conflict(f"a user named {new_name!r} already exists")
                by_name = dict(state.by_name)
                del by_name[user["name"]]
                by_name[new_name] = user_id
                state.by_name = by_name
            for key in ("name", "email", "enabled", "description"):
                if key in values:
                    user[key] = values[key]
            user["updated_at"] = max(common.utcnow(), user["updated_at"])
            state.users[index] = user
        return dict(user)

    def delete_user(self, user_id: str) -> None:
        with self._change() as state:
            index = state.index_of(user_id)
            del state.users[index]
            del state.metadata[user_id]
            state.reindex()

    # -- metadata ----------------------------------------------------------------------------

    def get_metadata(self, user_id: str) -> dict[str, str]:
        state = self._read()
        state.index_of(user_id)
        return dict(state.metadata[user_id])

    def set_metadata_item(self, user_id: str, key: str, value: str) -> None:
        with self._change() as state:
            state.index_of(user_id)
            state.metadata[user_id] = {**state.metadata[user_id], key: value}

    def delete_metadata_item(self, user_id: str, key: str) -> None:
        with self._change() as state:
            state.index_of(user_id)
            items = dict(state.metadata[user_id])
            if key not in items:
                raise NotFound(f"user {user_id} has no metadata key {key!r}")
            del items[key]
            state.metadata[user_id] = items
