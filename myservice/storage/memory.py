"""``memory``: a process-local driver for tests and demos.  Data is lost at exit.

Same semantics as the SQL drivers (exact name matching, creation order, keyset markers,
timezone-aware UTC timestamps); every method holds one lock, so it is safe under threads.
It is not shared between processes: do not use it behind several gunicorn workers.
"""

from __future__ import annotations

import itertools
import threading

from myservice.conf import Config
from myservice.storage import common
from myservice.storage.base import Conflict, MarkerNotFound, NotFound, StorageDriver, User


class MemoryDriver(StorageDriver):
    """Users and their metadata in dicts, guarded by one lock."""

    name = "memory"

    def __init__(self, conf: Config) -> None:
        super().__init__(conf)
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self._by_seq: dict[int, User] = {}  # insertion (= creation) order
        self._seq_by_id: dict[str, int] = {}
        self._seq_by_name: dict[str, int] = {}
        self._metadata: dict[int, dict[str, str]] = {}

    def check(self) -> None:
        """Always healthy."""

    def _seq_of(self, user_id: str) -> int:
        seq = self._seq_by_id.get(user_id) if isinstance(user_id, str) else None
        if seq is None:
            raise NotFound(f"no user with id {user_id!r}")
        return seq

    def create_user(self, values: User) -> User:
        user = common.new_user(values)
        with self._lock:
            if user["name"] in self._seq_by_name:
                raise Conflict(f"a user named {user['name']!r} already exists")
            seq = next(self._seq)
            self._by_seq[seq] = user
            self._seq_by_id[user["id"]] = seq
            self._seq_by_name[user["name"]] = seq
            self._metadata[seq] = {}
            return dict(user)

    def get_user(self, user_id: str) -> User:
        with self._lock:
            return dict(self._by_seq[self._seq_of(user_id)])

    def list_users(
        self, limit: int, marker: str | None = None, name: str | None = None
    ) -> list[User]:
        with self._lock:
            after = 0
            if marker is not None:
                after = self._seq_by_id.get(marker, 0) if isinstance(marker, str) else 0
                if not after:
                    raise MarkerNotFound(f"marker {marker!r} names no user")
            if name is not None:
                seq = self._seq_by_name.get(name)
                found = [] if seq is None or seq <= after else [self._by_seq[seq]]
                return [dict(u) for u in found[:limit]]
            out: list[User] = []
            for seq, user in self._by_seq.items():
                if len(out) >= limit:
                    break
                if seq > after:
                    out.append(dict(user))
            return out

    def update_user(self, user_id: str, values: User) -> User:
        new = common.changes(values)
        with self._lock:
            seq = self._seq_of(user_id)
            user = self._by_seq[seq]
            new_name = new.get("name", user["name"])
            if new_name != user["name"] and new_name in self._seq_by_name:
                raise Conflict(f"a user named {new_name!r} already exists")
            updated = {**user, **new, "updated_at": common.utcnow()}
            del self._seq_by_name[user["name"]]
            self._seq_by_name[new_name] = seq
            self._by_seq[seq] = updated
            return dict(updated)

    def delete_user(self, user_id: str) -> None:
        with self._lock:
            seq = self._seq_of(user_id)
            user = self._by_seq.pop(seq)
            del self._seq_by_id[user_id]
            del self._seq_by_name[user["name"]]
            del self._metadata[seq]

    def get_metadata(self, user_id: str) -> dict[str, str]:
        with self._lock:
            return dict(self._metadata[self._seq_of(user_id)])

    def set_metadata_item(self, user_id: str, key: str, value: str) -> None:
        with self._lock:
            self._metadata[self._seq_of(user_id)][key] = value

    def delete_metadata_item(self, user_id: str, key: str) -> None:
        with self._lock:
            items = self._metadata[self._seq_of(user_id)]
            if key not in items:
                raise NotFound(f"user {user_id!r} has no metadata key {key!r}")
            del items[key]
