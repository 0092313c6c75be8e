"""The ``audit`` hook: one JSON line per event appended to ``[audit] path``.

Each line is ``{"event", "timestamp", "request_id", "user_id", "project_id", "resource"}``
(keys sorted, UTF-8, no embedded newline).  The file is safe to share between threads and
processes (gunicorn workers) and stays valid JSON Lines even when a writer is killed
(``kill -9``) mid-load:

* the file is opened ``O_APPEND`` for every event (so log rotation by rename just works) and
  each line is written with **one** ``os.write`` of the complete line, under an exclusive
  ``fcntl.flock`` (a kill between syscalls leaves either the whole line or none of it);
* if a previous writer left the file without a final newline (e.g. a disk that filled up),
  the new line starts with one, so the damage stays confined to that line;
* ``os.fsync`` follows each write, so a line reported written survives a crash of the host.

The parent directory is created (mode 0700) and the file (mode 0600) on the first event.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from pathlib import Path
from typing import Any

from myservice.hooks.base import Event, Hook, HookConfigError

LOG = logging.getLogger(__name__)

__all__ = ["AuditHook", "append_line"]


def append_line(path: str | os.PathLike[str], line: bytes) -> None:
    """Append ``line`` (one complete line ending with ``\\n``) to ``path`` atomically with
    respect to other writers using this function, in this or another process; then fsync."""
    if not line.endswith(b"\n") or b"\n" in line[:-1]:
        raise ValueError("append_line() needs exactly one line ending with a newline")
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line
            written = os.write(fd, line)
            while written < len(line):  # only on a full disk or a >2 GiB line
                written += os.write(fd, line[written:])
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.fsync(fd)
    finally:
        os.close(fd)


class AuditHook(Hook):
    """Appends each event to the JSON Lines file ``[audit] path``."""

    name = "audit"

    def __init__(self, conf: Any) -> None:
        super().__init__(conf)
        raw = conf.audit.path
        if not raw:
            raise HookConfigError(
                f"{conf.source('audit', 'path')}: [audit] path: expected the path of the "
                "audit log file, got an empty value (default: %(state_path)s/audit.jsonl)"
            )
        self.path = Path(raw)

    def __call__(self, event: Event) -> None:
        record = event.as_dict()
        line = json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        data = (line + "\n").encode("utf-8")
        try:
            append_line(self.path, data)
        except FileNotFoundError:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            append_line(self.path, data)
