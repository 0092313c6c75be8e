"""The audit hook: JSON Lines that stay valid across threads, processes and kill -9."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from myservice.hooks import Event, HookConfigError
from myservice.hooks import audit as audit_mod
from myservice.hooks.audit import AuditHook, append_line, append_lines, repair_tail

from .conftest import make_hook_conf

# A writer process: THREADS threads each appending COUNT events (COUNT < 0: forever) with a
# ~4 KiB resource, through the real hook.  Prints "ready" once the first line is written.
WRITER = textwrap.dedent(
    """
    import datetime as dt, os, sys, threading
    from pathlib import Path
    from myservice import conf as config
    from myservice.hooks import Event
    from myservice.hooks.audit import AuditHook

    path, threads, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    conf = config.defaults(str(Path(path).parent)).with_overrides(
        "audit", {"path": path}, "writer")
    hook = AuditHook(conf)
    ready = threading.Event()

    def work(t):
        i = 0
        while count < 0 or i < count:
            hook(Event("user.create", {"pid": os.getpid(), "thread": t, "i": i,
                                       "pad": "x" * 4096, "text": "h\\u00e9\\n\\"q\\""},
                       f"req-{os.getpid()}-{t}-{i}", "u", "p",
                       dt.datetime.now(dt.UTC)))
            ready.set()
            i += 1

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    ready.wait()
    print("ready", flush=True)
    for w in workers:
        w.join()
    """
)


def _event(i: int = 0, **resource) -> Event:
    return Event(
        name="user.update",
        resource={"id": f"u{i}", **resource},
        request_id=f"req-{i}",
        user_id="alice",
        project_id="proj",
        timestamp=dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=dt.UTC),
    )


def _lines(path: Path) -> list[dict]:
    data = path.read_bytes()
    assert data.endswith(b"\n")
    return [json.loads(line) for line in data.decode("utf-8").split("\n")[:-1]]


def _audit(tmp_path: Path, path: Path) -> AuditHook:
    return AuditHook(make_hook_conf(tmp_path, audit={"path": str(path)}))


def test_one_line_per_event_with_every_field(tmp_path):
    path = tmp_path / "deep" / "er" / "audit.jsonl"
    hook = _audit(tmp_path, path)
    hook(_event(1, name="bob\nnewline", note="é"))
    hook(_event(2))
    records = _lines(path)
    assert records == [
        {
            "event": "user.update",
            "timestamp": "2024-05-01T12:00:00+00:00",
            "request_id": "req-1",
            "user_id": "alice",
            "project_id": "proj",
            "resource": {"id": "u1", "name": "bob\nnewline", "note": "é"},
        },
        {
            "event": "user.update",
            "timestamp": "2024-05-01T12:00:00+00:00",
            "request_id": "req-2",
            "user_id": "alice",
            "project_id": "proj",
            "resource": {"id": "u2"},
        },
    ]
    assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0


def test_line_is_compact_sorted_utf8(tmp_path):
    path = tmp_path / "audit.jsonl"
    _audit(tmp_path, path)(_event(3, zeta="é", alpha=[1, {"b": 2, "a": None}]))
    assert (
        path.read_bytes()
        == (
            '{"event":"user.update","project_id":"proj","request_id":"req-3","resource":'
            '{"alpha":[1,{"a":null,"b":2}],"id":"u3","zeta":"é"},'
            '"timestamp":"2024-05-01T12:00:00+00:00","user_id":"alice"}\n'
        ).encode()
    )


def test_default_path_is_under_state_path(tmp_path):
    hook = AuditHook(make_hook_conf(tmp_path))
    hook(_event())
    assert len(_lines(tmp_path / "state" / "audit.jsonl")) == 1


def test_empty_path_is_a_precise_error(tmp_path):
    conf = make_hook_conf(tmp_path).with_overrides("audit", {"path": ""}, "my.conf")
    with pytest.raises(HookConfigError, match=r"my.conf: \[audit\] path: expected the path"):
        AuditHook(conf)


def test_a_torn_last_line_is_dropped_by_the_next_write(tmp_path, caplog):
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b'{"ok":1}\n{"event":"user.create","resource":{"id":"u0"')  # killed here
    hook = _audit(tmp_path, path)
    assert path.read_bytes() == b'{"ok":1}\n'  # repaired at start-up
    path.write_bytes(b'{"ok":1}\n{"ev')  # and torn again while the hook runs
    hook(_event(1))
    records = _lines(path)
    assert [r.get("request_id") for r in records] == [None, "req-1"]
    assert any(
        "torn line" in r.getMessage() and "4 bytes" in r.getMessage() for r in caplog.records
    )


def test_a_file_that_is_one_torn_line_becomes_empty(tmp_path):
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b"x" * 70000)
    assert repair_tail(path) == 70000
    assert path.read_bytes() == b""
    assert repair_tail(tmp_path / "missing.jsonl") == 0


def test_append_line_rejects_partial_or_multiple_lines(tmp_path):
    for bad in (b"no newline", b"two\nlines\n"):
        with pytest.raises(ValueError, match="exactly one line"):
            append_line(tmp_path / "x", bad)


def test_a_batch_is_one_write_and_one_fsync(tmp_path, monkeypatch):
    path = tmp_path / "audit.jsonl"
    hook = _audit(tmp_path, path)
    hook(_event(0))
    path.write_bytes(path.read_bytes() + b'{"torn')  # a writer was killed mid-line
    calls: list[str] = []
    real_write, real_fsync = os.write, os.fsync

    def write(fd, data):
        calls.append("write")
        return real_write(fd, data)

    def fsync(fd):
        calls.append("fsync")
        return real_fsync(fd)

    monkeypatch.setattr(audit_mod.os, "write", write)
    monkeypatch.setattr(audit_mod.os, "fsync", fsync)
    hook.call_batch([_event(i, note="line\nbreak") for i in range(1, 6)])
    assert calls == ["write", "fsync"]
    # the torn tail was repaired first; every line is complete, in order
    assert [r["request_id"] for r in _lines(path)] == [f"req-{i}" for i in range(6)]


def test_append_lines_rejects_partial_lines_and_writes_nothing(tmp_path):
    path = tmp_path / "x"
    with pytest.raises(ValueError, match="complete lines"):
        append_lines(path, [b"one\n", b"two"])
    with pytest.raises(ValueError, match="complete lines"):
        append_lines(path, [b"one\ntwo\n"])
    assert not path.exists()
    append_lines(path, [])
    assert not path.exists()


def test_threads_share_one_file(tmp_path):
    path = tmp_path / "audit.jsonl"
    hook = _audit(tmp_path, path)

    def work(t: int) -> None:
        for i in range(25):
            hook(_event(t * 1000 + i, pad="y" * 3000))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = sorted(r["request_id"] for r in _lines(path))
    assert ids == sorted(f"req-{t * 1000 + i}" for t in range(8) for i in range(25))


def _writer(path: Path, threads: int, count: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(threads), str(count)],
        stdout=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_two_processes_write_exactly_n_valid_lines(tmp_path):
    path = tmp_path / "audit.jsonl"
    procs = [_writer(path, 3, 40), _writer(path, 3, 40)]
    for proc in procs:
        proc.communicate(timeout=120)
        assert proc.returncode == 0
    records = _lines(path)
    assert len(records) == 2 * 3 * 40
    keys = {(r["resource"]["pid"], r["resource"]["thread"], r["resource"]["i"]) for r in records}
    assert len(keys) == 240
    assert {pid for pid, _, _ in keys} == {p.pid for p in procs}
    assert all(r["resource"]["text"] == 'hé\n"q"' for r in records)


@pytest.mark.slow
def test_kill_9_mid_load_leaves_valid_json_lines(tmp_path):
    path = tmp_path / "audit.jsonl"
    proc = _writer(path, 4, -1)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.3)  # let the threads write concurrently for a moment
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    # Only the end of the file can be torn (a multi-page write() is cut by SIGKILL between
    # pages): every newline-terminated line parses.
    raw = path.read_bytes()
    complete = raw[: raw.rfind(b"\n") + 1]
    assert complete, "the writer wrote nothing before it was killed"
    assert all(json.loads(line) for line in complete.decode("utf-8").splitlines())
    # The next start of the hook (service restart) repairs the tail: every line parses.
    hook = _audit(tmp_path, path)
    records = _lines(path)
    assert len(records) == complete.count(b"\n")
    assert all(r["resource"]["pad"] == "x" * 4096 for r in records)
    # a later writer appends cleanly after the killed one
    hook(_event(7))
    assert _lines(path)[-1]["request_id"] == "req-7"
