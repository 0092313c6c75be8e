"""A stoppable TCP forwarder standing between a database client and the real server.

Stopping it closes the listener and every live connection (as a server restart or a network cut
would); starting it again listens on the same port.  Freezing it holds every byte while keeping
the connections open (a hung server).  Used by the storage fault tests, the
API-level outage test (``tests/serving/test_databases.py``), the security tests and
``benchmarks/soak.py --db-outage``.
"""

from __future__ import annotations

import socket
import threading


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
        self._frozen = threading.Event()
        self._threads: list[threading.Thread] = []

    def freeze(self) -> None:
        """Stop relaying data but keep every connection open and acknowledged: a database
        that hangs, as seen from the client."""
        self._frozen.set()

    def thaw(self) -> None:
        """Relay again (the data held while frozen goes through)."""
        self._frozen.clear()

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
                while self._frozen.is_set() and not self._stopping.is_set():
                    self._stopping.wait(0.01)
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
