"""SIGTERM stops every server as cleanly as SIGINT: :mod:`myservice.wsgi.shutdown`.

* Unit: when :func:`~myservice.wsgi.shutdown.exit_on_sigterm` installs its handler (main
  thread, SIG_DFL), when it leaves SIGTERM alone (a server's handler, SIG_IGN, another
  thread), idempotence for several applications, and what the handler does (in a child
  interpreter where it must end the process).
* End to end: ``paster serve``, ``myservice-api`` and ``gunicorn --paste`` under a load of
  POSTs get SIGTERM; each exits with status 0 and every acknowledged create has its audit
  line and its access-log line.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from myservice.wsgi import shutdown

from .helpers import (
    BIN,
    REQUEST_ID_HEADER,
    STARTUP_DEADLINE,
    Server,
    copy_etc,
    create_token,
    free_port,
    serving,
    wait_until,
)


class App:
    """Stands for a built application (weakly referenced by the handler)."""


@pytest.fixture
def sigterm_default() -> Iterator[None]:
    """SIGTERM at SIG_DFL for the test; the disposition it had is put back afterwards."""
    before = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


# -- installing the handler ----------------------------------------------------------------


@pytest.mark.usefixtures("sigterm_default")
def test_installs_a_handler_when_sigterm_is_default_in_the_main_thread():
    app = App()
    assert shutdown.exit_on_sigterm(app) is True
    handler = signal.getsignal(signal.SIGTERM)
    assert isinstance(handler, shutdown.ExitOnSigterm)
    assert list(handler.apps) == [app]


@pytest.mark.usefixtures("sigterm_default")
def test_a_second_application_joins_the_installed_handler():
    first, second = App(), App()
    assert shutdown.exit_on_sigterm(first) is True
    handler = signal.getsignal(signal.SIGTERM)
    assert shutdown.exit_on_sigterm(second) is True
    assert signal.getsignal(signal.SIGTERM) is handler
    assert set(handler.apps) == {first, second}


@pytest.mark.usefixtures("sigterm_default")
def test_a_handler_installed_by_the_server_is_left_alone():
    def server_handler(signum, frame):  # gunicorn's worker, myservice-api
        raise AssertionError("not called here")

    signal.signal(signal.SIGTERM, server_handler)
    assert shutdown.exit_on_sigterm(App()) is False
    assert signal.getsignal(signal.SIGTERM) is server_handler


@pytest.mark.usefixtures("sigterm_default")
def test_an_ignored_sigterm_stays_ignored():
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    assert shutdown.exit_on_sigterm(App()) is False
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN


@pytest.mark.usefixtures("sigterm_default")
def test_an_application_built_in_another_thread_installs_nothing():
    results: list[bool] = []
    thread = threading.Thread(target=lambda: results.append(shutdown.exit_on_sigterm(App())))
    thread.start()
    thread.join()
    assert results == [False]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


@pytest.mark.usefixtures("sigterm_default")
def test_the_handler_raises_system_exit_and_puts_back_the_default():
    app = App()
    shutdown.exit_on_sigterm(app)
    handler = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as info:
        handler(signal.SIGTERM, None)
    assert info.value.code is None  # exit status 0
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # a second SIGTERM kills


# -- the handler in a process of its own --------------------------------------------------

CHILD = textwrap.dedent(
    """
    import atexit, os, signal, sys, time
    from myservice.wsgi import shutdown

    class App:
        pass

    app = App()
    atexit.register(print, "atexit ran", flush=True)
    assert shutdown.exit_on_sigterm(app)
    if sys.argv[1] == "gone":
        del app
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(60)
    print("not stopped", flush=True)
    """
)


def _run_child(mode: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", CHILD, mode],
        capture_output=True,
        text=True,
        timeout=STARTUP_DEADLINE,
        check=False,
    )


def test_sigterm_with_a_live_application_is_a_normal_exit():
    done = _run_child("alive")
    assert (done.returncode, done.stdout, done.stderr) == (0, "atexit ran\n", "")


def test_sigterm_once_every_application_is_gone_takes_the_default_action():
    done = _run_child("gone")
    assert (done.returncode, done.stdout, done.stderr) == (-signal.SIGTERM, "", "")


# -- end to end: SIGTERM under load ---------------------------------------------------------

ACCESS_201 = re.compile(
    r' INFO myservice\.access \[(req-[0-9a-f-]{36})\] \S+ \S+ "POST /v1/users" status 201 '
)
#: acknowledged creates to wait for before SIGTERM, so the signal lands under load
BEFORE_SIGTERM = 150


def _paster(port: int) -> list[str]:
    return [str(BIN / "paster"), "serve", "api-paste.ini", f"http_port={port}"]


def _myservice_api(port: int) -> list[str]:
    return [str(BIN / "myservice-api"), "--port", str(port), "api-paste.ini"]


def _gunicorn(port: int) -> list[str]:
    return [str(BIN / "gunicorn"), "--paste", "api-paste.ini", "-w", "2", "-b", f"127.0.0.1:{port}"]


class Load:
    """Threads POSTing users until the server stops answering; ``acked`` collects the
    request id of every 201."""

    def __init__(self, server: Server, token: str, threads: int = 8) -> None:
        self.acked: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._post, args=(server, token, n)) for n in range(threads)
        ]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def count(self) -> int:
        with self._lock:
            return len(self.acked)

    def _post(self, server: Server, token: str, index: int) -> None:
        client = server.client(token)
        try:
            for n in range(1_000_000):
                if self._stop.is_set():
                    return
                res = client.request("POST", "/v1/users", {"user": {"name": f"load-{index}-{n}"}})
                if res.status != 201:
                    return
                with self._lock:
                    self.acked.append(res.headers[REQUEST_ID_HEADER])
        except (OSError, http.client.HTTPException):  # the server is gone
            return
        finally:
            client.close()


def _audited_creates(site: Path) -> list[str]:
    lines = (site / "state" / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    return [r["request_id"] for r in map(json.loads, lines) if r["event"] == "user.create"]


@pytest.mark.slow
@pytest.mark.parametrize("command", [_paster, _myservice_api, _gunicorn])
def test_sigterm_under_load_loses_no_acknowledged_line(
    tmp_path: Path, command: Callable[[int], list[str]]
):
    site = copy_etc(tmp_path / "etc")
    token = create_token(site / "myservice.conf", "admin")
    port = free_port()
    with serving(command(port), site, port) as server:
        with Load(server, token) as load:
            wait_until(lambda: load.count() >= BEFORE_SIGTERM, server.proc, server.log, "the load")
            os.kill(server.proc.pid, signal.SIGTERM)
            status = server.proc.wait(STARTUP_DEADLINE)
        output = server.output()
    assert status == 0, output[-3000:]
    assert "Traceback" not in output
    acked = load.acked
    assert len(acked) >= BEFORE_SIGTERM
    audited = _audited_creates(site)
    assert sorted(set(acked) - set(audited)) == []
    assert len(audited) == len(set(audited))  # one line per create
    logged = ACCESS_201.findall(output)
    assert sorted(set(acked) - set(logged)) == []
