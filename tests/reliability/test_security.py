"""Authentication and authorisation against a served instance, and secrets that never leak.

* No token, a malformed one, an unknown one, a wrong secret for a real token id, an expired
  token and a revoked token: every write (POST/PATCH/DELETE) is answered 401 and nothing is
  written (users counted and compared before and after); the 401 answers are byte-identical
  apart from the request id, so they say nothing about which tokens exist.
* A ``reader`` token: every write is answered 403 in the same envelope shape; nothing written.
* A token revoked (or expiring) while the server runs stops working without a restart.
* A full scenario on PostgreSQL with a password in ``[storage] connection`` (reached through a
  stoppable TCP forwarder, so the database also goes away and comes back) with every logger at
  DEBUG: neither the token secrets nor the password appear in the server's output, in any
  response, in the audit log, or in the output of ``myservice-plugins`` and
  ``myservice-manage``.  PostgreSQL comes from ``MYSERVICE_TEST_POSTGRESQL_URL`` (skipped when
  unset, failing under ``CI=true``).
"""

from __future__ import annotations

import re
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from myservice import conf as config
from myservice.tokens import TokenStore
from tests.serving.helpers import (
    BIN,
    Client,
    Response,
    Server,
    copy_etc,
    create_token,
    free_port,
    list_all_users,
    serving,
)
from tests.storage.forwarder import Forwarder

#: a safety net for "takes effect while running", not a performance expectation
EFFECT_DEADLINE = 60.0
pytestmark = pytest.mark.slow

REQUEST_ID = re.compile(rb"req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _token_file(site: Path) -> Path:
    return Path(config.load(site / "myservice.conf").auth.token_file)


def _serve_command(site: Path, port: int) -> list[str]:
    return [str(BIN / "myservice-api"), "--port", str(port), "api-paste.ini"]


def _user_body(name: str) -> dict:
    return {"user": {"name": name, "email": f"{name}@example.org"}}


def _writes(user_id: str) -> list[tuple[str, str, dict | None]]:
    """Every kind of write, aimed at an existing user where one is needed."""
    return [
        ("POST", "/v1/users", _user_body(f"intruder-{secrets.token_hex(4)}")),
        ("PATCH", f"/v1/users/{user_id}", {"user": {"description": "changed"}}),
        ("PUT", f"/v1/users/{user_id}", _user_body("replaced")),
        ("DELETE", f"/v1/users/{user_id}", None),
    ]


def _without_request_id(body: bytes) -> bytes:
    return REQUEST_ID.sub(b"req-X", body)


class Site:
    """A served sqlite instance with tokens of every kind made before it started."""

    def __init__(self, server: Server, site: Path, tokens: dict[str, str]) -> None:
        self.server = server
        self.site = site
        self.tokens = tokens

    def client(self, kind: str | None = None) -> Client:
        return self.server.client(self.tokens[kind] if kind else None)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = copy_etc(tmp_path_factory.mktemp("security") / "etc")
    store = TokenStore(_token_file(root))
    admin, _ = store.create("admin-user", "p1", ["admin"])
    reader, _ = store.create("reader-user", "p1", ["reader"])
    # expired an hour ago (created two hours ago with a one-hour lifetime)
    expired, _ = store.create(
        "admin-user", "p1", ["admin"], expires_in=3600, now=time.time() - 7200
    )
    revoked, record = store.create("admin-user", "p1", ["admin"])
    store.revoke(record.token_id)
    real_id = admin.partition(".")[0]
    tokens = {
        "admin": admin,
        "reader": reader,
        "expired": expired,
        "revoked": revoked,
        "unknown": f"{secrets.token_hex(8)}.{secrets.token_urlsafe(32)}",
        "wrong-secret": f"{real_id}.{secrets.token_urlsafe(32)}",
        "malformed": "not-a-token",
    }
    port = free_port()
    with serving(_serve_command(root, port), root, port) as server:
        yield Site(server, root, tokens)


@pytest.fixture
def victim(site: Site) -> dict:
    res = site.client("admin").request("POST", "/v1/users", _user_body(f"v-{secrets.token_hex(4)}"))
    assert res.status == 201, res.body
    return res.json["user"]


def _snapshot(site: Site) -> list[dict]:
    return list_all_users(site.client("admin"))


REJECTED = ["expired", "revoked", "unknown", "wrong-secret", "malformed"]


@pytest.mark.parametrize("kind", [None, *REJECTED])
def test_bad_credentials_write_nothing(site: Site, victim: dict, kind: str | None) -> None:
    before = _snapshot(site)
    client = site.client(kind)
    for method, path, body in _writes(victim["id"]):
        res = client.request(method, path, body)
        assert res.status == 401, (method, path, res.status, res.body)
        assert res.headers["www-authenticate"].startswith("Token realm=")
    after = _snapshot(site)
    assert after == before
    assert victim in after


def test_reader_cannot_write(site: Site, victim: dict) -> None:
    before = _snapshot(site)
    client = site.client("reader")
    assert client.request("GET", f"/v1/users/{victim['id']}").status == 200  # it may read
    for method, path, body in _writes(victim["id"]):
        res = client.request(method, path, body)
        # PUT is no route: 405 comes before the policy, and writes nothing either
        expected = 405 if method == "PUT" else 403
        assert res.status == expected, (method, path, res.status, res.body)
    after = _snapshot(site)
    assert after == before
    assert victim in after


def _rejection(site: Site, kind: str | None, victim: dict) -> Response:
    return site.client(kind).request("PATCH", f"/v1/users/{victim['id']}", {"user": {}})


def test_401_answers_are_identical_whatever_the_token(site: Site, victim: dict) -> None:
    answers = {kind: _rejection(site, kind, victim) for kind in [None, *REJECTED]}
    reference = answers["wrong-secret"]
    assert reference.status == 401
    seen_ids = set()
    for kind, res in answers.items():
        assert res.status == 401, kind
        assert _without_request_id(res.body) == _without_request_id(reference.body), kind
        for header in ("content-type", "content-length", "www-authenticate"):
            assert res.headers.get(header) == reference.headers.get(header), (kind, header)
        request_id = res.json["errors"][0]["request_id"]
        assert request_id == res.headers["x-openstack-request-id"]
        seen_ids.add(request_id)
        # nothing of the presented token (nor of any real one) is echoed back
        for token in site.tokens.values():
            for part in token.split("."):
                assert part.encode() not in res.body, (kind, part)
    assert len(seen_ids) == len(answers)  # the only difference really is the request id


def test_403_has_the_401_envelope_shape(site: Site, victim: dict) -> None:
    unauthorized = _rejection(site, "revoked", victim)
    forbidden = _rejection(site, "reader", victim)
    assert (unauthorized.status, forbidden.status) == (401, 403)
    assert unauthorized.headers["content-type"] == forbidden.headers["content-type"]
    (e401,), (e403,) = unauthorized.json["errors"], forbidden.json["errors"]
    assert list(unauthorized.json) == list(forbidden.json) == ["errors"]
    assert sorted(e401) == sorted(e403) == ["code", "detail", "request_id", "status", "title"]
    assert e403["code"] == "myservice.forbidden"
    assert "admin" in e403["detail"]  # it names the role needed, and nothing about tokens
    assert "token" not in e403["detail"].lower()


def _until(predicate, what: str) -> None:
    deadline = time.monotonic() + EFFECT_DEADLINE
    while not predicate():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.2)


def test_token_revoked_while_running_stops_working(site: Site) -> None:
    conf_file = site.site / "myservice.conf"
    token = create_token(conf_file, "admin")
    client = site.server.client(token)
    _until(lambda: client.request("GET", "/v1/users?limit=1").status == 200, "new token accepted")
    done = subprocess.run(
        [str(BIN / "myservice-manage"), "--config-file", str(conf_file), "token", "revoke",
         token.partition(".")[0]],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    _until(lambda: client.request("GET", "/v1/users?limit=1").status == 401, "revocation seen")
    before = _snapshot(site)
    res = client.request("POST", "/v1/users", _user_body(f"late-{secrets.token_hex(4)}"))
    assert res.status == 401
    assert _snapshot(site) == before


def test_token_expiring_while_running_stops_working(site: Site) -> None:
    store = TokenStore(_token_file(site.site))
    token, _ = store.create("admin-user", "p1", ["admin"], expires_in=2)
    client = site.server.client(token)
    _until(lambda: client.request("GET", "/v1/users?limit=1").status == 401, "expiry seen")
    before = _snapshot(site)
    assert client.request("POST", "/v1/users", _user_body("too-late")).status == 401
    assert _snapshot(site) == before


# -- secrets never leak -----------------------------------------------------------------------


def _debug_everywhere(ini: Path) -> None:
    """Every logger of the copied ini at DEBUG (root included), plus SQLAlchemy's (which sets
    its own to WARNING when imported: SQL statements and pool events) and psycopg's."""
    text = ini.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^level = (INFO|WARNING)$", "level = DEBUG", text)
    assert text.count("level = DEBUG") >= 3
    text, count = re.subn(r"(?m)^keys = root, (.*)$", r"keys = root, \1, sqlalchemy, psycopg", text)
    assert count == 1
    for name in ("sqlalchemy", "psycopg"):
        text += f"\n[logger_{name}]\nlevel = DEBUG\nhandlers =\nqualname = {name}\n"
    ini.write_text(text, encoding="utf-8")


def _run(*command: str, cwd: Path) -> str:
    done = subprocess.run(
        list(command), cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    return f"$ {' '.join(command)}\n{done.returncode}\n{done.stdout}\n{done.stderr}"


@pytest.mark.postgresql
def test_no_token_or_password_in_logs_bodies_or_tools(tmp_path: Path, postgresql_url: str) -> None:
    password = "pw" + secrets.token_hex(12)
    real = sa.make_url(postgresql_url)
    forwarder = Forwarder(real.port)
    forwarder.start()
    try:
        _leak_scenario(tmp_path, real, password, forwarder)
    finally:
        forwarder.stop()


def _leak_scenario(tmp_path: Path, real: sa.URL, password: str, forwarder: Forwarder) -> None:
    site = copy_etc(tmp_path / "etc")
    url = real.set(host="127.0.0.1", port=forwarder.port, password=password)
    # the server has trust authentication here: any password is accepted, and it is still
    # sent, written in the configuration and available to every log line to leak
    (site / "myservice.conf").write_text(
        "[DEFAULT]\nstate_path = %(here)s/state\n\n[storage]\ndriver = postgresql\n"
        f"connection = {url.render_as_string(hide_password=False)}\nauto_upgrade = true\n"
        "connect_timeout = 2\npool_timeout = 2\n",
        encoding="utf-8",
    )
    _debug_everywhere(site / "api-paste.ini")
    conf_file = site / "myservice.conf"
    captured: list[str] = []

    admin = create_token(conf_file, "admin")
    reader = create_token(conf_file, "reader")
    secrets_ = [admin.partition(".")[2], reader.partition(".")[2]]
    wrong = f"{admin.partition('.')[0]}.{secrets.token_urlsafe(32)}"
    secrets_.append(wrong.partition(".")[2])

    port = free_port()
    with serving(_serve_command(site, port), site, port) as server:
        ok = server.client(admin)
        answers: list[Response] = []

        def call(client: Client, method: str, path: str, body=None) -> Response:
            res = client.request(method, path, body)
            answers.append(res)
            return res

        created = call(ok, "POST", "/v1/users", _user_body("leak-alice"))
        assert created.status == 201, created.body
        uid = created.json["user"]["id"]
        assert call(ok, "PATCH", f"/v1/users/{uid}", {"user": {"description": "d"}}).status == 200
        assert call(ok, "GET", f"/v1/users/{uid}").status == 200
        assert call(ok, "POST", "/v1/users", _user_body("leak-alice")).status == 409
        assert call(ok, "POST", "/v1/users", {"user": {"nme": "x"}}).status == 400
        assert call(ok, "GET", "/v1/users/nope").status == 404
        assert call(server.client(reader), "DELETE", f"/v1/users/{uid}").status == 403
        assert call(server.client(wrong), "GET", "/v1/users").status == 401
        assert call(Client(port, "Bearer-less"), "GET", "/v1/users").status == 401
        bearer = Client(port)
        res = bearer.request("GET", "/v1/users", headers={"Authorization": f"Bearer {wrong}"})
        answers.append(res)
        assert res.status == 401

        # the database goes away: 503s and error logs that mention the database
        forwarder.stop()
        assert call(ok, "GET", f"/v1/users/{uid}").status == 503
        assert call(ok, "POST", "/v1/users", _user_body("leak-bob")).status == 503
        assert call(Client(port), "GET", "/healthcheck").status == 503
        forwarder.start()
        _until(lambda: Client(port).request("GET", "/healthcheck").status == 200, "recovery")
        assert call(ok, "DELETE", f"/v1/users/{uid}").status == 204
        captured += [
            f"{r.status} {r.headers}\n{r.body.decode('utf-8', 'replace')}" for r in answers
        ]
        # the tools, at their most verbose
        plugins = str(BIN / "myservice-plugins")
        manage = str(BIN / "myservice-manage")
        captured.append(_run(plugins, "--debug", "list", cwd=site))
        captured.append(_run(plugins, "--debug", "pipeline", "api-paste.ini", cwd=site))
        captured.append(_run(plugins, "--debug", "check", cwd=site))
        captured.append(_run(manage, "--config-file", str(conf_file), "token", "list", cwd=site))
        captured.append(_run(manage, "--config-file", str(conf_file), "db", "current", cwd=site))
    server_log = server.output()
    captured.append(server_log)

    # a start-up against an unreachable database: the one-line error names the database
    forwarder.stop()
    port = free_port()
    failed = _run(*_serve_command(site, port), cwd=site)
    captured.append(failed)
    forwarder.start()

    audit = site / "state" / "audit.jsonl"
    captured.append(audit.read_text(encoding="utf-8"))

    # the capture is the real thing: DEBUG lines, the masked URL, the audited events
    assert " DEBUG " in server_log
    assert " INFO sqlalchemy.engine.Engine " in server_log  # the SQL statements, too
    assert "***" in server_log, "the outage was logged with the masked database URL"
    assert f":{forwarder.port}" in failed and "***" in failed, failed
    assert audit.read_text(encoding="utf-8").count("\n") == 3  # create, update, delete
    everything = "\n".join(captured)
    assert password not in everything
    for secret in secrets_:
        assert secret not in everything
