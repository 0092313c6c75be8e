"""Start a real server from a copy of ``etc/`` and talk HTTP to it (stdlib only).

Every process is started in its own session and killed with its whole group in ``finally``
(``paster serve --reload`` and ``myservice-api --reload`` run the server in a child process;
gunicorn has workers).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

REPO = Path(__file__).resolve().parents[2]
ETC = REPO / "etc"
BIN = Path(sys.executable).parent
#: a safety net against a hung server, not a performance expectation
STARTUP_DEADLINE = 120.0
REQUEST_ID_HEADER = "x-openstack-request-id"  # waitress title-cases it: compare lower-cased


def copy_etc(dest: Path) -> Path:
    """Copy the shipped ``api-paste.ini`` and ``myservice.conf`` into ``dest`` (state stays
    under ``dest/state``); return ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("api-paste.ini", "myservice.conf"):
        shutil.copy(ETC / name, dest / name)
    return dest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["MYSERVICE_PLUGIN_CACHE_DIR"] = str(tmp / "plugin-cache")
    return env


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes

    @property
    def json(self):
        return json.loads(self.body)


class Client:
    """HTTP/1.1 to 127.0.0.1:port, one persistent connection, reconnecting when needed."""

    def __init__(self, port: int, token: str | None = None, patient: bool = False) -> None:
        self.port = port
        self.token = token
        # a reloading server is briefly down while it restarts: retry refused connections
        self.patient = patient
        self._conn: http.client.HTTPConnection | None = None

    def request(
        self, method: str, path: str, body=None, headers: dict[str, str] | None = None
    ) -> Response:
        sent = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            sent.setdefault("Content-Type", "application/json")
        if self.token:
            sent.setdefault("X-Auth-Token", self.token)
        attempts = 150 if self.patient else 2
        for attempt in range(1, attempts + 1):
            if self._conn is None:
                self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                self._conn.request(method, path, body=data, headers=sent)
                raw = self._conn.getresponse()
                payload = raw.read()
            except (ConnectionError, http.client.RemoteDisconnected):
                self.close()
                if attempt == attempts:
                    raise
                if self.patient:
                    time.sleep(0.2)
                continue
            result = Response(raw.status, {k.lower(): v for k, v in raw.getheaders()}, payload)
            if raw.will_close:
                self.close()
            return result
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


@dataclass
class Server:
    proc: subprocess.Popen
    port: int
    log: Path
    patient: bool = False

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def client(self, token: str | None = None) -> Client:
        return Client(self.port, token, self.patient)


def answers(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/healthcheck")
        conn.getresponse().read()
        conn.close()
        return True
    except OSError:
        return False


def wait_until(predicate, proc: subprocess.Popen, log: Path, what: str) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE
    while not predicate():
        if proc.poll() is not None:
            pytest.fail(
                f"{what} exited with status {proc.returncode}:\n"
                + log.read_text(encoding="utf-8", errors="replace")
            )
        if time.monotonic() > deadline:
            pytest.fail(
                f"{what}: gave up waiting after {STARTUP_DEADLINE:.0f}s:\n"
                + log.read_text(encoding="utf-8", errors="replace")
            )
        time.sleep(0.2)


@contextlib.contextmanager
def serving(
    command: Sequence[str],
    cwd: Path,
    port: int,
    *,
    patient: bool = False,
    log_dir: Path | None = None,
    stdin: int = subprocess.DEVNULL,
) -> Iterator[Server]:
    """Run ``command`` until it answers ``GET /healthcheck`` on ``port``; kill it afterwards.

    ``patient``: the server reloads, its clients retry refused connections.  The server's
    output goes to a file in ``log_dir`` (default ``cwd``).  ``stdin``: a file descriptor
    (a terminal's, say) instead of ``/dev/null``."""
    log = (log_dir or cwd) / f"server-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            list(command),
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=stdin,
            env=child_env(log_dir or cwd),
            start_new_session=True,
        )
    try:
        wait_until(lambda: answers(port), proc, log, " ".join(command))
        yield Server(proc, port, log, patient)
    finally:
        stop(proc)


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the process group, SIGKILL it if it is still there after 15 s."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers (reloader children, workers)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(15)


def bump_mtime(path: Path) -> None:
    """Make ``path`` look modified to an mtime poller, whatever the clock resolution."""
    st = path.stat()
    later = max(time.time_ns(), st.st_mtime_ns) + 2_000_000_000
    os.utime(path, ns=(later, later))


def create_token(conf_file: Path, *roles: str) -> str:
    command = [
        str(BIN / "myservice-manage"),
        "--config-file",
        str(conf_file),
        "token",
        "create",
        "--user-id",
        "e2e-user",
        "--project-id",
        "e2e-project",
    ]
    for role in roles:
        command += ["--role", role]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert token and "\n" not in token
    return token


def list_all_users(client: Client, limit: int = 500) -> list[dict]:
    """Every user, following the ``next`` links of ``GET /v1/users``."""
    users: list[dict] = []
    path = f"/v1/users?limit={limit}"
    while path:
        res = client.request("GET", path)
        assert res.status == 200, res.body
        page = res.json
        users.extend(page["users"])
        nexts = [link["href"] for link in page.get("links", []) if link.get("rel") == "next"]
        if nexts:
            parts = urlsplit(nexts[0])
            path = parts.path + ("?" + parts.query if parts.query else "")
        else:
            path = ""
    return users


def create_users_concurrently(server: Server, token: str, prefix: str) -> None:
    """POST 8 x 200 users, one connection per thread, named ``{prefix}-{thread}-{n}``; then
    list them all and check that every created user is listed exactly once, none lost, none
    doubled, under the name it was created with.

    The first failed create stops that thread; all failures are reported with the tail of the
    server log."""
    threads, per_thread = 8, 200
    created: list[list[str]] = [[] for _ in range(threads)]
    errors: list[str] = []

    def worker(index: int) -> None:
        client = server.client(token)
        try:
            for n in range(per_thread):
                res = client.request(
                    "POST", "/v1/users", {"user": {"name": f"{prefix}-{index}-{n}"}}
                )
                if res.status != 201:
                    errors.append(f"{res.status} {res.body[:300]!r}")
                    return
                created[index].append(res.json["user"]["id"])
        except Exception as exc:  # reported below, with the server log
            errors.append(repr(exc))
        finally:
            client.close()

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert not errors, (errors[:5], server.output()[-3000:])

    client = server.client(token)
    try:
        listed = list_all_users(client, limit=250)
    finally:
        client.close()
    ids = [u["id"] for u in listed]
    assert len(ids) == threads * per_thread == 1600
    assert len(set(ids)) == 1600
    assert set(ids) == {i for chunk in created for i in chunk}
    assert {u["name"] for u in listed} == {
        f"{prefix}-{i}-{n}" for i in range(threads) for n in range(per_thread)
    }
