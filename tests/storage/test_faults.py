"""The database goes away and comes back: ``Unavailable`` meanwhile, the same driver recovers.

A tiny TCP forwarder stands between the driver and the real server; stopping it closes the
listener and every live connection (as a server restart or network cut would), starting it
again listens on the same port.
"""

from __future__ import annotations

import socket
import threading
import uuid

import pytest
import sqlalchemy as sa

from myservice.storage.base import StartupError, Unavailable
from myservice.storage.sql import MySQLDriver, PostgreSQLDriver, SQLDriver


class Forwarder:
    """Accepts on 127.0.0.1:<port> and pipes each connection to 127.0.0.1:<target>."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        listener.settimeout(0.05)
        self._listener = listener
        self._stopping.clear()
        thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        thread.start()
        self._threads.append(thread)

    def _accept(self, listener: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                pump = threading.Thread(target=self._pump, args=(src, dst), daemon=True)
                pump.start()
                self._threads.append(pump)

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                self._close(sock)

    def _close(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()

    def stop(self) -> None:
        """Close the listener and every live connection."""
        self._stopping.set()
        threads, self._threads = self._threads, []
        for thread in threads[:1]:  # the accept loop: no new connections after this
            thread.join()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            live = list(self._sockets)
        for sock in live:
            self._close(sock)
        for thread in threads:
            thread.join()


SERVERS = [
    pytest.param(
        (PostgreSQLDriver, "postgresql_url"), marks=pytest.mark.postgresql, id="postgresql"
    ),
    pytest.param((MySQLDriver, "mysql_url"), marks=pytest.mark.mysql, id="mysql"),
]


@pytest.fixture
def through_forwarder(request, tmp_path, make_conf):
    """(driver, forwarder): a started driver whose connections pass through a forwarder."""
    cls, fixture = request.param
    real = sa.make_url(request.getfixturevalue(fixture))
    forwarder = Forwarder(real.port)
    forwarder.start()
    url = real.set(host="127.0.0.1", port=forwarder.port)
    conf = make_conf(
        tmp_path,
        cls.name,
        url.render_as_string(hide_password=False),
        auto_upgrade=True,
        connect_timeout=2,
        pool_timeout=2,
    )
    driver: SQLDriver = cls(conf)
    driver.start()
    yield driver, forwarder
    driver.close()
    forwarder.stop()


def _user(name: str) -> dict:
    return {"name": name, "email": None, "enabled": True, "description": None}


@pytest.mark.parametrize("through_forwarder", SERVERS, indirect=True)
def test_database_down_then_back(through_forwarder):
    driver, forwarder = through_forwarder
    user = driver.create_user(_user(f"faults-{uuid.uuid4().hex}"))
    # several pooled connections exist when the cut happens
    threads = [threading.Thread(target=driver.get_user, args=(user["id"],)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    forwarder.stop()
    for call in (
        lambda: driver.get_user(user["id"]),
        lambda: driver.list_users(5),
        lambda: driver.create_user(_user(f"faults-{uuid.uuid4().hex}")),
        lambda: driver.set_metadata_item(user["id"], "k", "v"),
        driver.check,
    ):
        with pytest.raises(Unavailable) as info:
            call()
        assert driver.url_for_display in str(info.value)

    forwarder.start()
    driver.check()
    assert driver.get_user(user["id"]) == user
    driver.set_metadata_item(user["id"], "k", "v")
    assert driver.get_metadata(user["id"]) == {"k": "v"}
    assert driver.create_user(_user(f"faults-{uuid.uuid4().hex}"))["id"]


@pytest.mark.parametrize("through_forwarder", SERVERS, indirect=True)
def test_start_against_a_down_server_is_a_startup_error(through_forwarder, tmp_path, make_conf):
    driver, forwarder = through_forwarder
    forwarder.stop()
    fresh = type(driver)(driver.conf)
    with pytest.raises(StartupError) as info:
        fresh.start()
    assert "cannot use the database" in str(info.value)
    assert str(forwarder.port) in str(info.value)
    fresh.close()


def test_pool_timeout_is_unavailable(tmp_path, make_conf):
    conf = make_conf(tmp_path, "sqlite", pool_size=1, pool_timeout=0.1)
    from myservice.storage.sql import SQLiteDriver

    driver = SQLiteDriver(conf)
    driver.start()
    try:
        held = driver._engine.connect()  # the only connection of the pool
        try:
            with pytest.raises(Unavailable) as info:
                driver.list_users(1)
            assert "unavailable" in str(info.value)
            with pytest.raises(Unavailable):
                driver.check()
        finally:
            held.close()
        driver.check()
        assert driver.list_users(1) == []
    finally:
        driver.close()
