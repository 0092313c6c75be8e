"""The ``audit`` hook: one JSON line per event appended to ``[audit] path``.

Each line is ``{"event", "timestamp", "request_id", "user_id", "project_id", "resource"}``
(keys sorted, UTF-8, no embedded newline).  The file is safe to share between threads and
processes (gunicorn workers) and stays valid JSON Lines when a writer is killed (``kill -9``)
mid-load:

* the file is opened ``O_APPEND`` and the complete lines are written with **one**
  ``os.write``, under an exclusive ``fcntl.flock``, so lines of concurrent writers never
  interleave.  :class:`AuditHook` keeps its descriptor open between batches and reopens the
  path when it no longer names the open file (``st_dev``/``st_ino`` differ, or it was removed:
  log rotation by rename just works) and in a forked child (``flock`` locks belong to the open
  file, which a fork would share); the module functions open the file for every call;
* ``os.fsync`` follows each write, so a line reported written survives a crash of the host.
* **Group commit.**  The dispatcher hands the hook every event pending in its queue at once
  (:meth:`AuditHook.call_batch`): they become one ``os.write`` of several complete lines under
  one ``flock``, and one ``fsync`` -- so a burst of N events costs one fsync, not N.
* One ``write()`` is *not* atomic against ``SIGKILL`` on Linux: the kernel checks for a fatal
  signal between the pages it copies, so a killed writer can leave the first pages of its
  line (and no newline) at the end of the file.  That line belongs to an event whose hook never
  returned (for a batch, its complete lines before the torn one stay, and are valid).  Only
  the end of the file can be torn (every writer holds the lock while writing),
  and it is repaired -- truncated back to the last newline, with a WARNING saying how many
  bytes were dropped -- under the lock by the next write and by every :class:`AuditHook` at
  start-up.  So after a restart, and after every write, every line of the file parses.

The parent directory is created (mode 0700) and the file (mode 0600) on the first event.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from myservice.hooks.base import Event, Hook, HookConfigError

LOG = logging.getLogger(__name__)

__all__ = ["AuditHook", "append_line", "append_lines", "repair_tail"]


def append_line(path: str | os.PathLike[str], line: bytes) -> None:
    """Append ``line`` (one complete line ending with ``\\n``) to ``path``, excluding every
    other writer using this function (threads or processes) with ``flock``; repair a torn end
    of file first (see the module docstring); then fsync."""
    if not line.endswith(b"\n") or b"\n" in line[:-1]:
        raise ValueError("append_line() needs exactly one line ending with a newline")
    _append(path, line)


def append_lines(path: str | os.PathLike[str], lines: Sequence[bytes]) -> None:
    """Append ``lines`` (each one complete line ending with ``\\n``), in order, with one
    ``write`` under one ``flock`` and one ``fsync`` (group commit); otherwise as
    :func:`append_line`."""
    for line in lines:
        if not line.endswith(b"\n") or b"\n" in line[:-1]:
            raise ValueError("append_lines() needs complete lines, each ending with a newline")
    if lines:
        _append(path, b"".join(lines))


def _open(path: str | os.PathLike[str]) -> int:
    return os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)


def _append(path: str | os.PathLike[str], data: bytes) -> None:
    fd = _open(path)
    try:
        _append_fd(fd, path, data)
    finally:
        os.close(fd)


def _append_fd(fd: int, path: str | os.PathLike[str], data: bytes) -> None:
    """Lock, repair a torn end, write ``data`` with one ``write``, unlock, ``fsync``."""
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        _repair_locked(fd, path)
        written = os.write(fd, data)
        while written < len(data):  # only on a full disk or a >2 GiB write
            written += os.write(fd, data[written:])
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
    os.fsync(fd)


def repair_tail(path: str | os.PathLike[str]) -> int:
    """Truncate a torn last line of ``path`` (one without a final newline) under the lock.

    Returns the number of bytes removed (0 if the file is intact or does not exist)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return 0
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            removed = _repair_locked(fd, path)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
        if removed:
            os.fsync(fd)
        return removed
    finally:
        os.close(fd)


def _repair_locked(fd: int, path: str | os.PathLike[str]) -> int:
    size = os.fstat(fd).st_size
    if not size or os.pread(fd, 1, size - 1) == b"\n":
        return 0
    keep = size
    while keep > 0:  # find the last newline, reading backwards in blocks
        start = max(0, keep - _BLOCK)
        chunk = os.pread(fd, keep - start, start)
        index = chunk.rfind(b"\n")
        if index >= 0:
            keep = start + index + 1
            break
        keep = start
    os.ftruncate(fd, keep)
    LOG.warning(
        "Audit log %s ended with a torn line (a writer was killed mid-write); dropped its %d bytes",
        path,
        size - keep,
    )
    return size - keep


_BLOCK = 65536

#: one encoder for every line (``json.dumps`` with options builds a new one per call)
_ENCODE = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode


class AuditHook(Hook):
    """Appends each event to the JSON Lines file ``[audit] path``."""

    name = "audit"

    #: the dispatcher waits this long for more events to join a batch (group commit): under
    #: load one fsync per 20 ms per process instead of one per event; it only delays the line
    #: (the response is already sent), and widens what a kill -9 can lose by as much.  20 ms
    #: rather than 5: gunicorn POST +4-8% (fewer batches, wake-ups and fsyncs; round 6 of
    #: benchmarks/README.md)
    batch_linger = 0.02

    def __init__(self, conf: Any) -> None:
        super().__init__(conf)
        raw = conf.audit.path
        if not raw:
            raise HookConfigError(
                f"{conf.source('audit', 'path')}: [audit] path: expected the path of the "
                "audit log file, got an empty value (default: %(state_path)s/audit.jsonl)"
            )
        self.path = Path(raw)
        # the open audit file: (descriptor, pid that opened it, (st_dev, st_ino)), or None
        self._open: tuple[int, int, tuple[int, int]] | None = None
        self._lock = threading.Lock()  # an abandoned call may overlap the next one
        try:
            repair_tail(self.path)
        except OSError as exc:  # e.g. not writable yet: the first event will say so
            LOG.warning("Cannot check the audit log %s: %s", self.path, exc)

    def __call__(self, event: Event) -> None:
        self._write([self._line(event)])

    def call_batch(self, events: Sequence[Event]) -> None:
        """Append the lines of several events with one write and one fsync (group commit)."""
        self._write([self._line(event) for event in events])

    @staticmethod
    def _line(event: Event) -> bytes:
        return (_ENCODE(event.as_dict()) + "\n").encode("utf-8")

    def _write(self, lines: list[bytes]) -> None:
        data = b"".join(lines)
        with self._lock:
            try:
                fd = self._descriptor()
            except FileNotFoundError:
                self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                fd = self._descriptor()
            _append_fd(fd, self.path, data)

    def _descriptor(self) -> int:
        """The open descriptor of ``path``; reopened when ``path`` now names another file (or
        none: rotated or removed) or in a forked child.  Caller holds ``_lock``."""
        current = self._open
        pid = os.getpid()
        if current is not None:
            fd, owner, ident = current
            if owner == pid:
                try:
                    st = os.stat(self.path)
                except FileNotFoundError:
                    st = None
                if st is not None and (st.st_dev, st.st_ino) == ident:
                    return fd
                os.close(fd)
            # in a forked child the parent's descriptor is left alone (the parent owns it)
            self._open = None
        fd = _open(self.path)
        st = os.fstat(fd)
        self._open = (fd, pid, (st.st_dev, st.st_ino))
        return fd

    def close(self) -> None:
        """Close the audit file (the next event, if any, opens it again)."""
        with self._lock:
            current, self._open = self._open, None
            if current is not None and current[1] == os.getpid():
                os.close(current[0])
