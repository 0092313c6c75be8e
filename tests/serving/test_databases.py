"""The shipped application over the real database servers (``postgresql``, ``mysql``).

* The database goes down while the application runs: the API answers 503 in the error
  envelope (and ``/healthcheck`` 503) and the same application serves again once the database
  is back, with no restart.  In-process (WebTest over the app built from ``etc/api-paste.ini``),
  its connection passing through :class:`~tests.storage.forwarder.Forwarder`.
* No lost writes: 8 client threads x 200 ``POST /v1/users`` through a served ``myservice-api``
  end with exactly 1,600 distinct users, counted through the API and in the database itself.
* Several processes: two ``myservice-api`` over one database see each other's writes at once,
  and a duplicate name across them is a 409.

Every test works in a schema (PostgreSQL) or database (MySQL) of its own; the served tests
create it the operator's way, ``myservice-manage db upgrade``, before starting the server.
The sqlite driver's concurrency is covered in ``test_serve.py``.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import webtest
from paste.deploy import loadapp

from myservice.middleware.request_id import is_request_id
from myservice.storage.schema import users
from myservice.tokens import TokenStore
from myservice.wsgi.faults import REQUEST_ID_HEADER

from ..storage.forwarder import Forwarder
from .helpers import (
    BIN,
    ETC,
    Server,
    child_env,
    copy_etc,
    create_token,
    create_users_concurrently,
    free_port,
    list_all_users,
    serving,
)

DATABASES = [
    pytest.param(("postgresql", "postgresql_fresh_url"), marks=pytest.mark.postgresql, id="pg"),
    pytest.param(("mysql", "mysql_fresh_url"), marks=pytest.mark.mysql, id="mysql"),
]


@pytest.fixture(params=DATABASES)
def database(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(driver name, URL of an empty schema/database private to this test)."""
    driver, fixture = request.param
    return driver, request.getfixturevalue(fixture)


def _count_rows(url: str) -> tuple[int, int]:
    """(rows, distinct ids) of the users table, asked of the database directly."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            query = sa.select(sa.func.count(), sa.func.count(sa.distinct(users.c.id)))
            rows, distinct = conn.execute(query.select_from(users)).one()
    finally:
        engine.dispose()
    return rows, distinct


def _assert_envelope(status: int, headers: dict[str, str], body: dict, expected: int) -> dict:
    """``body`` is the error envelope of ``expected`` with the response's request id."""
    assert status == expected, body
    rid = headers[REQUEST_ID_HEADER.lower()]
    assert is_request_id(rid)
    error = body["errors"][0]
    assert error["status"] == expected
    assert (
        error["code"] == {409: "myservice.conflict", 503: "myservice.service_unavailable"}[expected]
    )
    assert error["request_id"] == rid
    return error


# -- the database goes away and comes back, seen through the API --------------------------------


@pytest.fixture
def app_through_forwarder(
    database: tuple[str, str], tmp_path: Path, make_conf: Callable[..., object]
) -> Iterator[tuple[webtest.TestApp, Forwarder]]:
    """(WebTest app from the shipped ini, the forwarder its database connections pass, token)."""
    driver, url = database
    real = sa.make_url(url)
    forwarder = Forwarder(real.port)
    forwarder.start()
    through = real.set(host="127.0.0.1", port=forwarder.port).render_as_string(hide_password=False)
    make_conf(
        tmp_path,
        driver,
        through,
        auto_upgrade=True,
        connect_timeout=2,
        pool_timeout=2,
        state_path=str(tmp_path / "state"),
    )
    secret, _ = TokenStore(tmp_path / "state" / "tokens.json").create("u1", "p1", ["admin"])
    app = loadapp(
        f"config:{ETC / 'api-paste.ini'}",
        global_conf={"config_file": str(tmp_path / "myservice.conf")},
    )
    try:
        yield webtest.TestApp(app, extra_environ={"HTTP_X_AUTH_TOKEN": secret}), forwarder
    finally:
        app.close()
        forwarder.stop()


def _503(res: webtest.TestResponse) -> dict:
    headers = {k.lower(): v for k, v in res.headerlist}
    return _assert_envelope(res.status_int, headers, res.json, 503)


def test_database_down_then_back_through_the_api(app_through_forwarder):
    client, forwarder = app_through_forwarder
    before = client.post_json("/v1/users", {"user": {"name": "before-outage"}}, status=201)
    user_id = before.json["user"]["id"]
    # several pooled connections are open when the cut happens
    for _ in range(3):
        client.get(f"/v1/users/{user_id}", status=200)
    assert client.get("/healthcheck", status=200).text == "OK"

    forwarder.stop()
    res = client.get("/v1/users", status=503)
    # the client is told to retry, and nothing about where the database is
    assert _503(res)["detail"] == "The storage backend is unavailable right now; retry later."
    assert str(forwarder.port) not in res.text
    _503(client.get(f"/v1/users/{user_id}", status=503))
    _503(client.post_json("/v1/users", {"user": {"name": "during-outage"}}, status=503))
    assert client.get("/healthcheck", status=503).text.startswith("Service Unavailable: ")
    error = _503(client.get("/healthcheck", headers={"Accept": "application/json"}, status=503))
    assert error["detail"] == "the storage backend is unavailable"

    forwarder.start()  # the same application object, no restart
    assert client.get("/healthcheck", status=200).text == "OK"
    listed = client.get("/v1/users", status=200).json["users"]
    assert [u["name"] for u in listed] == ["before-outage"]  # the refused POST wrote nothing
    after = client.post_json("/v1/users", {"user": {"name": "after-outage"}}, status=201)
    assert (
        client.get(f"/v1/users/{after.json['user']['id']}", status=200).json["user"]["name"]
        == "after-outage"
    )


# -- served processes ------------------------------------------------------------------------


def _site(tmp_path: Path, make_conf: Callable[..., object], driver: str, url: str) -> Path:
    """A copy of ``etc/`` whose config names ``driver`` at ``url``, its schema created with
    ``myservice-manage db upgrade`` (the server drivers do not upgrade on their own)."""
    site = copy_etc(tmp_path / "etc")
    make_conf(site, driver, url, state_path=str(site / "state"))
    done = subprocess.run(
        [
            str(BIN / "myservice-manage"),
            "--config-file",
            str(site / "myservice.conf"),
            "db",
            "upgrade",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env(site),
        check=False,
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    return site


def _api(site: Path, port: int) -> list[str]:
    return [str(BIN / "myservice-api"), "--port", str(port), "api-paste.ini"]


@pytest.mark.slow
def test_no_lost_writes_through_the_served_api(database, tmp_path, make_conf):
    driver, url = database
    site = _site(tmp_path, make_conf, driver, url)
    token = create_token(site / "myservice.conf", "admin")  # before start: read at start-up
    port = free_port()
    with serving(_api(site, port), site, port) as server:
        create_users_concurrently(server, token, "w")
    assert _count_rows(url) == (1600, 1600)


def _get(server: Server, token: str, path: str) -> tuple[int, dict]:
    client = server.client(token)
    try:
        res = client.request("GET", path)
    finally:
        client.close()
    return res.status, res.json


@pytest.mark.slow
def test_two_api_processes_over_one_database(database, tmp_path, make_conf):
    driver, url = database
    site = _site(tmp_path, make_conf, driver, url)
    token = create_token(site / "myservice.conf", "admin")
    port_a, port_b = free_port(), free_port()
    with (
        serving(_api(site, port_a), site, port_a) as first,
        serving(_api(site, port_b), site, port_b) as second,
    ):
        assert first.proc.pid != second.proc.pid
        a, b = first.client(token), second.client(token)
        try:
            name = f"scale-{uuid.uuid4().hex[:12]}"
            res = a.request("POST", "/v1/users", {"user": {"name": name, "email": "a@example.org"}})
            assert res.status == 201, res.body
            user = res.json["user"]

            # created through the first, visible through the second at once
            res = b.request("GET", f"/v1/users/{user['id']}")
            assert res.status == 200, res.body
            assert res.json["user"] == user
            assert user["id"] in {u["id"] for u in list_all_users(b)}
            res = b.request("GET", f"/v1/users?name={name}")
            assert [u["id"] for u in res.json["users"]] == [user["id"]]

            # updated through the second, seen by the first
            res = b.request(
                "PATCH", f"/v1/users/{user['id']}", {"user": {"email": "b@example.org"}}
            )
            assert res.status == 200, res.body
            res = a.request("GET", f"/v1/users/{user['id']}")
            assert res.status == 200, res.body
            assert res.json["user"]["email"] == "b@example.org"
            assert res.json["user"]["updated_at"] >= user["updated_at"]

            # the name is taken across processes
            res = b.request("POST", "/v1/users", {"user": {"name": name}})
            _assert_envelope(res.status, res.headers, res.json, 409)
            res = a.request("POST", "/v1/users", {"user": {"name": name}})
            _assert_envelope(res.status, res.headers, res.json, 409)

            # deleted through the first, gone for the second
            assert a.request("DELETE", f"/v1/users/{user['id']}").status == 204
            assert b.request("GET", f"/v1/users/{user['id']}").status == 404
        finally:
            a.close()
            b.close()
    assert _count_rows(url) == (0, 0)
