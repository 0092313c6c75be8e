"""Signals of ``myservice-api``: SIGHUP is ignored (one WARNING) in plain mode; with
``--reload`` it restarts the child, and the parent never leaves its child behind (SIGTERM,
SIGINT, even SIGKILL of the parent)."""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from myservice.cmd import api
from tests.serving.helpers import (
    BIN,
    STARTUP_DEADLINE,
    Server,
    copy_etc,
    create_token,
    free_port,
    serving,
)


def _wait_for(predicate: Callable[[], object], what: str, server: Server | None = None) -> None:
    """Poll ``predicate`` until true; fail after the liveness deadline (not a timing check)."""
    deadline = time.monotonic() + STARTUP_DEADLINE
    while not predicate():
        if time.monotonic() > deadline:
            tail = server.output()[-3000:] if server is not None else ""
            pytest.fail(f"gave up waiting for {what}\n{tail}")
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    """``pid`` exists and is not a zombie (Linux /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _children(pid: int) -> list[int]:
    """The live processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def _only_child(server: Server) -> int:
    _wait_for(lambda: len(_children(server.proc.pid)) == 1, "the one child", server)
    return _children(server.proc.pid)[0]


# -- unit ------------------------------------------------------------------------------------


def test_ignore_hangup_warns_once_from_its_own_thread(caplog):
    handler = api.IgnoreHangup()
    with caplog.at_level(logging.WARNING, logger=api.LOG.name):
        handler(signal.SIGHUP, None)
        handler(signal.SIGHUP, None)
        handler.close()  # joins the thread: its warning is logged by now
    records = [r for r in caplog.records if r.name == api.LOG.name]
    assert [(r.levelno, r.getMessage()) for r in records] == [(logging.WARNING, api.HUP_WARNING)]
    assert records[0].threadName == "myservice-api-sighup"


def test_ignore_hangup_close_without_sighup_logs_nothing(caplog):
    handler = api.IgnoreHangup()
    with caplog.at_level(logging.DEBUG, logger=api.LOG.name):
        handler.close()
    assert [r for r in caplog.records if r.name == api.LOG.name] == []


def test_restart_reason(tmp_path):
    reloader = api.Reloader([], tmp_path / "api-paste.ini")
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    assert reloader._restart_reason({a: 1}, {a: 1}) is None
    reloader._on_hangup(signal.SIGHUP, None)
    assert reloader._restart_reason({a: 1}, {a: 1}) == "SIGHUP received"
    assert reloader._restart_reason({a: 1}, {a: 1}) is None  # one restart per SIGHUP
    reloader._on_hangup(signal.SIGHUP, None)
    assert reloader._restart_reason({a: 1}, {a: 2, b: 1}) == f"SIGHUP received and {a}, {b} changed"
    assert reloader._restart_reason({a: 2}, {b: 1}) == f"{b}, {a} changed"
    assert reloader._restart_reason({a: 2}, {a: 2}) is None


@pytest.fixture
def built_with(monkeypatch, tmp_path):
    """Run ``api.main`` on a copy of ``etc/`` with ``after_load(app)`` called once the real
    application is built (instead of serving); returns ``(main's status, calls)`` where
    ``calls`` holds what ``after_load`` returned.  The ini's logging sections are not
    applied (they would replace this process's logging)."""
    from myservice.wsgi import loader

    monkeypatch.setattr(api, "configure_logging", lambda ini: None)
    ini = copy_etc(tmp_path / "etc") / "api-paste.ini"
    real_load_app = loader.load_app

    def run(after_load: Callable[[object], object]) -> tuple[int, list[object]]:
        calls: list[object] = []

        def load_app(path):
            app = real_load_app(path)
            try:
                calls.append(after_load(app))
            finally:
                api._close(app)
            raise api.ConfigError("stop here")

        monkeypatch.setattr(loader, "load_app", load_app)
        return api.main(["--port", "0", str(ini)]), calls

    return run


def test_sigterm_is_handled_before_the_application_is_built(built_with):
    before = (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP))
    status, seen = built_with(
        lambda app: (signal.getsignal(signal.SIGTERM), type(signal.getsignal(signal.SIGHUP)))
    )
    assert status == 2
    # the urlmap factory found myservice-api's handler and left it alone
    assert seen == [(api._exit_on_signal, api.IgnoreHangup)]
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)) == before


def test_sigterm_while_starting_is_a_clean_stop(built_with):
    def interrupted(app):
        signal.getsignal(signal.SIGTERM)(signal.SIGTERM, None)  # as if SIGTERM came now

    before = signal.getsignal(signal.SIGTERM)
    status, _ = built_with(interrupted)
    assert status == 0
    assert signal.getsignal(signal.SIGTERM) == before


# -- end to end --------------------------------------------------------------------------------


def _post(server: Server, token: str, name: str) -> str:
    client = server.client(token)
    try:
        res = client.request("POST", "/v1/users", {"user": {"name": name}})
    finally:
        client.close()
    assert res.status == 201, res.body
    return res.headers["x-openstack-request-id"]


def _audited(site: Path) -> set[str]:
    lines = (site / "state" / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    return {json.loads(line)["request_id"] for line in lines}


def _plain(tmp_path: Path) -> tuple[Path, str, int, list[str]]:
    """A copy of ``etc/``, an admin token, a free port and the ``myservice-api`` command."""
    site = copy_etc(tmp_path / "etc")
    token = create_token(site / "myservice.conf", "admin")
    port = free_port()
    return site, token, port, [str(BIN / "myservice-api"), "--port", str(port), "api-paste.ini"]


@pytest.mark.slow
def test_plain_sighup_is_ignored_with_one_warning(tmp_path):
    site, token, port, command = _plain(tmp_path)
    with serving(command, site, port) as server:
        first = _post(server, token, "before-hup")
        os.kill(server.proc.pid, signal.SIGHUP)
        second = _post(server, token, "after-one-hup")
        os.kill(server.proc.pid, signal.SIGHUP)
        third = _post(server, token, "after-two-hups")
        _wait_for(lambda: api.HUP_WARNING in server.output(), "the warning", server)
        assert server.proc.poll() is None
        os.kill(server.proc.pid, signal.SIGTERM)
        status = server.proc.wait(STARTUP_DEADLINE)
        output = server.output()
    assert status == 0, output[-3000:]
    assert output.count(api.HUP_WARNING) == 1, output[-3000:]
    assert f" WARNING myservice.cmd.api [-] {api.HUP_WARNING}\n" in output
    assert {first, second, third} <= _audited(site)


@pytest.mark.slow
def test_sighup_from_a_closing_terminal_stops_cleanly(tmp_path):
    # started by hand in a shell: stdin is a terminal, whose closing sends SIGHUP
    site, token, port, command = _plain(tmp_path)
    leader, follower = os.openpty()
    try:
        with serving(command, site, port, stdin=follower) as server:
            created = _post(server, token, "before-hangup")
            # a closing terminal sends SIGHUP more than once (the shell to its jobs, then the
            # kernel to the foreground group), milliseconds apart
            os.kill(server.proc.pid, signal.SIGHUP)
            time.sleep(0.01)
            os.kill(server.proc.pid, signal.SIGHUP)
            status = server.proc.wait(STARTUP_DEADLINE)
            output = server.output()
    finally:
        os.close(leader)
        os.close(follower)
    assert status == 0, output[-3000:]
    assert api.HUP_WARNING not in output
    assert created in _audited(site)  # a clean stop: the queued audit event was written


def _reloading(tmp_path: Path):
    site = copy_etc(tmp_path / "etc")
    port = free_port()
    command = [str(BIN / "myservice-api"), "--reload", "--port", str(port), "api-paste.ini"]
    return serving(command, site, port, patient=True)


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_reload_sighup_restarts_the_child_and_stopping_leaves_none(tmp_path, stop):
    with _reloading(tmp_path) as server:
        old = _only_child(server)
        os.kill(server.proc.pid, signal.SIGHUP)
        # "SIGHUP received and FILE changed" if someone edits myservice meanwhile
        _wait_for(lambda: "myservice-api: SIGHUP received" in server.output(), "it", server)
        _wait_for(lambda: not _alive(old), "the old child to stop", server)
        new = _only_child(server)
        assert new != old
        res = server.client().request("GET", "/healthcheck")
        assert res.status == 200
        assert server.proc.poll() is None
        os.kill(server.proc.pid, stop)
        status = server.proc.wait(STARTUP_DEADLINE)
        assert not _alive(new), server.output()[-3000:]
    assert status == 0


@pytest.mark.slow
def test_reload_child_stops_when_the_parent_is_killed(tmp_path):
    with _reloading(tmp_path) as server:
        child = _only_child(server)
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait(STARTUP_DEADLINE)
        _wait_for(lambda: not _alive(child), "the orphaned child to stop", server)
