"""``AuditHook`` keeps its file open between batches, and reopens the path when the file was
rotated (renamed) or removed, so no line goes to a file the path no longer names."""

from __future__ import annotations

import datetime as dt
import json
import os

from myservice.hooks.audit import AuditHook
from myservice.hooks.base import Event

from .conftest import make_hook_conf


def _event(i: int) -> Event:
    return Event(
        "user.create", {"id": str(i)}, f"req-{i}", "u", "p", dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    )


def _ids(path) -> list[str]:
    return [json.loads(line)["resource"]["id"] for line in path.read_text().splitlines()]


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def _hook(tmp_path):
    path = tmp_path / "audit" / "audit.jsonl"
    return path, AuditHook(make_hook_conf(tmp_path, audit={"path": str(path)}))


def test_descriptor_is_kept_between_batches_and_closed_by_close(tmp_path):
    path, hook = _hook(tmp_path)
    hook(_event(0))
    before = _open_fds()
    hook.call_batch([_event(1), _event(2)])
    hook(_event(3))
    assert _open_fds() == before  # no descriptor opened or closed per batch
    assert _ids(path) == ["0", "1", "2", "3"]
    hook.close()
    assert len(_open_fds()) == len(before) - 1


def test_rotation_by_rename_reopens_the_path(tmp_path):
    path, hook = _hook(tmp_path)
    try:
        hook(_event(0))
        rotated = path.with_name("audit.jsonl.1")
        os.rename(path, rotated)
        hook(_event(1))
        hook.call_batch([_event(2), _event(3)])
        assert _ids(rotated) == ["0"]
        assert _ids(path) == ["1", "2", "3"]
    finally:
        hook.close()


def test_removed_file_is_created_again(tmp_path):
    path, hook = _hook(tmp_path)
    try:
        hook(_event(0))
        path.unlink()
        hook(_event(1))
        assert _ids(path) == ["1"]
        path.unlink()
        path.parent.rmdir()
        hook(_event(2))
        assert _ids(path) == ["2"]
        assert oct(path.stat().st_mode & 0o777) == oct(0o600)
    finally:
        hook.close()
