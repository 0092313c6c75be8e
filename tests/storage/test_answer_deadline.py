"""``answer_deadline.DeadlineConnection`` against a peer that never answers, without a
PostgreSQL server: a fake one speaks the start-up part of the protocol, then stays silent
with the connection open (a stuck pooler or proxy, a stopped server process)."""

from __future__ import annotations

import os
import socket
import struct
import threading

import psycopg
import pytest

from myservice.storage.answer_deadline import DeadlineConnection, NoAnswer

from .outcome import outcome_of


def _message(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("!i", len(payload) + 4) + payload


def _read_exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("client went away")
        data += chunk
    return data


class SilentServer:
    """Accepts one connection, completes the start-up (trust authentication), then reads
    whatever the client sends and never answers, until :meth:`close`."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.queries = threading.Event()  # set once the client sent something after start-up
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            (length,) = struct.unpack("!i", _read_exactly(conn, 4))
            _read_exactly(conn, length - 4)  # StartupMessage (sslmode=disable: no SSLRequest)
            parameters = {
                b"client_encoding": b"UTF8",
                b"server_encoding": b"UTF8",
                b"server_version": b"15.0",
                b"standard_conforming_strings": b"on",
                b"DateStyle": b"ISO, MDY",
                b"integer_datetimes": b"on",
            }
            reply = _message(b"R", struct.pack("!i", 0))  # AuthenticationOk
            for name, value in parameters.items():
                reply += _message(b"S", name + b"\0" + value + b"\0")
            reply += _message(b"K", struct.pack("!ii", 4242, 1))
            reply += _message(b"Z", b"I")  # ReadyForQuery, idle
            conn.sendall(reply)
            conn.settimeout(0.05)
            while not self._stop.is_set():
                try:
                    if conn.recv(65536):
                        self.queries.set()  # read and acknowledged by TCP; never answered
                    else:
                        return
                except TimeoutError:
                    continue

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.listener.close()


@pytest.fixture
def silent(monkeypatch):
    # the libpq environment of whoever runs the tests must not change the conversation
    # (PGGSSENCMODE, PGREQUIREAUTH, PGCHANNELBINDING...)
    for name in [name for name in os.environ if name.startswith("PG")]:
        monkeypatch.delenv(name)
    server = SilentServer()
    yield server
    server.close()


def _connect(server: SilentServer) -> DeadlineConnection:
    return DeadlineConnection.connect(
        host="127.0.0.1",
        port=server.port,
        user="u",
        dbname="d",
        sslmode="disable",
        gssencmode="disable",
        target_session_attrs="any",
        connect_timeout=10,
    )


def test_a_query_that_gets_no_answer_closes_the_connection(silent):
    conn = _connect(silent)
    conn.answer_timeout = 0.5
    outcome = outcome_of(lambda: conn.execute("SELECT 1"))
    assert isinstance(outcome, NoAnswer), outcome
    assert isinstance(outcome, psycopg.OperationalError)  # a disconnect, for SQLAlchemy
    assert str(outcome) == (
        "no answer from the database server within 0.5 s ([storage] query_timeout and its "
        "grace); the connection was closed"
    )
    assert silent.queries.is_set()  # the query was sent: the wait was for its answer
    assert conn.closed


def test_without_a_deadline_the_connection_keeps_waiting(silent):
    conn = _connect(silent)  # answer_timeout None: psycopg's own wait, unbounded
    box: list = []
    thread = threading.Thread(
        target=lambda: box.append(_try(lambda: conn.execute("SELECT 1"))), daemon=True
    )
    thread.start()
    assert silent.queries.wait(30)
    thread.join(1.0)  # still waiting a second after the query went out
    assert box == [] and thread.is_alive()
    silent.close()  # the peer goes away: the wait ends with a connection error
    thread.join(30)
    assert box and isinstance(box[0], psycopg.OperationalError), box


def _try(call):
    try:
        return call()
    except BaseException as exc:  # noqa: BLE001 - handed to the test
        return exc
