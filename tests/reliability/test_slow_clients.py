"""Slow and stalled clients cannot take the server away from everyone else.

waitress reads every request completely (headers and body, buffered) before it hands it to a
worker thread, so a client that sends slowly holds a connection, never a worker; and a
connection on which nothing arrives for ``channel_timeout`` seconds is closed (checked every
``cleanup_interval`` seconds).  Here ``myservice-api`` serves a copy of the shipped ini with
``channel_timeout = 2``, ``cleanup_interval = 1`` and ``threads = 2``, and raw sockets play
the slow clients.  The shipped values themselves are checked against the README.
"""

from __future__ import annotations

import configparser
import re
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.serving.helpers import BIN, ETC, REPO, Client, Server, copy_etc, free_port, serving

pytestmark = pytest.mark.slow

THREADS = 2
CHANNEL_TIMEOUT = 2
#: "closed before N seconds": generous, a hung server is what it catches, not a slow one
CLOSED_WITHIN = 60.0


def _server_main(ini: Path) -> configparser.SectionProxy:
    parser = configparser.RawConfigParser()
    parser.read(ini, encoding="utf-8")
    return parser["server:main"]


def test_shipped_timeouts_are_the_documented_ones() -> None:
    server = _server_main(ETC / "api-paste.ini")
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for option in ("channel_timeout", "cleanup_interval", "connection_limit", "threads"):
        documented = re.search(rf"`{option} = (\d+)`", readme)
        assert documented, f"README.md does not document [server:main] {option}"
        assert server[option] == documented.group(1), option
    assert int(server["channel_timeout"]) > 0
    assert int(server["cleanup_interval"]) <= int(server["channel_timeout"])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    site = copy_etc(tmp_path_factory.mktemp("slow") / "etc")
    ini = site / "api-paste.ini"
    text = ini.read_text(encoding="utf-8")
    for option, value in (
        ("channel_timeout", CHANNEL_TIMEOUT),
        ("cleanup_interval", 1),
        ("threads", THREADS),
    ):
        text, count = re.subn(rf"(?m)^{option} = \d+$", f"{option} = {value}", text)
        assert count == 1, option
    ini.write_text(text, encoding="utf-8")
    port = free_port()
    with serving([str(BIN / "myservice-api"), "--port", str(port), str(ini)], site, port) as srv:
        yield srv


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=CLOSED_WITHIN)
    return sock


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (or resets it)."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def _others_are_served(server: Server, rounds: int = 5) -> None:
    client = Client(server.port)
    try:
        for _ in range(rounds):
            assert client.request("GET", "/healthcheck").status == 200
            assert client.request("GET", "/v1/users").status == 401  # the pipeline, not just /
    finally:
        client.close()


def test_a_stalled_client_is_disconnected_and_others_are_served(server: Server) -> None:
    stalled = [_connect(server.port) for _ in range(THREADS * 3)]
    for sock in stalled:
        sock.sendall(b"GET /v1/users HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Auth-Token: ")
    started = time.monotonic()
    _others_are_served(server)
    for sock in stalled:
        with sock:
            assert _read_until_closed(sock) == b""  # closed without an answer
    assert time.monotonic() - started < CLOSED_WITHIN
    _others_are_served(server)


def test_a_silent_connection_is_closed(server: Server) -> None:
    with _connect(server.port) as sock:
        started = time.monotonic()
        assert _read_until_closed(sock) == b""
        assert time.monotonic() - started < CLOSED_WITHIN


def test_trickling_clients_hold_no_worker(server: Server) -> None:
    """Clients sending one byte a second (longer than channel_timeout in all) occupy no worker
    thread: others are served meanwhile, and each trickler gets its answer in the end."""
    count = THREADS * 3
    trickle = b"abcde"  # one byte a second: 5 s, more than twice channel_timeout
    answers: list[bytes] = [b""] * count
    errors: list[BaseException] = []

    def slow_client(index: int) -> None:
        try:
            with _connect(server.port) as sock:
                sock.sendall(b"GET /healthcheck HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                for byte in trickle:
                    time.sleep(1)
                    sock.sendall(bytes([byte]))
                sock.sendall(b"\r\nConnection: close\r\n\r\n")
                answers[index] = _read_until_closed(sock)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=slow_client, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.5)  # every trickler is connected and mid-request
        _others_are_served(server)
    finally:
        for thread in threads:
            thread.join(CLOSED_WITHIN)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads)
    for answer in answers:
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
