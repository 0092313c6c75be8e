"""WebTest against the application built from the shipped ``etc/api-paste.ini`` itself.

The service configuration is a test file in ``tmp_path`` (passed as ``config_file`` in
``global_conf``) whose ``state_path`` is under ``tmp_path``, so nothing is written to
``etc/state``.  Every response, whichever layer answers, carries ``X-OpenStack-Request-ID``,
and error envelopes repeat that id.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import webtest
from paste.deploy import loadapp

from myservice.middleware.request_id import is_request_id
from myservice.tokens import TokenStore
from myservice.wsgi.faults import REQUEST_ID_HEADER

from .helpers import ETC

INI = ETC / "api-paste.ini"


def _admin_token(state: Path) -> str:
    """A token created before the application starts (the auth filter reads the token file
    at start-up, then at most once a second)."""
    secret, _ = TokenStore(state / "tokens.json").create("u1", "p1", ["admin"])
    return secret


@pytest.fixture
def built(tmp_path: Path):
    conf_file = tmp_path / "myservice.conf"
    conf_file.write_text(
        f"[DEFAULT]\nstate_path = {tmp_path / 'state'}\n\n[storage]\ndriver = sqlite\n",
        encoding="utf-8",
    )
    token = _admin_token(tmp_path / "state")
    app = loadapp(f"config:{INI}", global_conf={"config_file": str(conf_file)})
    try:
        yield app, tmp_path, token
    finally:
        app.close()


@pytest.fixture
def client(built):
    return webtest.TestApp(built[0])


@pytest.fixture
def token(built) -> str:
    return built[2]


def _assert_error(res, status: int) -> dict:
    assert res.status_int == status
    rid = res.headers[REQUEST_ID_HEADER]
    assert is_request_id(rid)
    error = res.json["errors"][0]
    assert error["status"] == status
    assert error["request_id"] == rid
    return error


def test_state_goes_where_the_test_config_says(built):
    app, tmp_path, _ = built
    assert app.context.conf.state_path == tmp_path / "state"
    assert (tmp_path / "state").is_dir()


def test_versions_and_healthcheck_carry_a_request_id(client):
    res = client.get("/")
    assert is_request_id(res.headers[REQUEST_ID_HEADER])
    assert res.json["versions"][0]["id"] == "v1.0"
    res = client.get("/healthcheck")
    assert is_request_id(res.headers[REQUEST_ID_HEADER])


def test_healthcheck_with_a_slash_is_the_healthcheck_and_below_it_404(client):
    assert client.get("/healthcheck/").text == "OK"
    res = client.get("/healthcheck/db", headers={"Accept": "application/json"}, status=404)
    error = _assert_error(res, 404)
    assert error["detail"] == "No resource at /healthcheck/db; did you mean /healthcheck?"


def test_ids_differ_between_requests(client):
    ids = {client.get("/healthcheck").headers[REQUEST_ID_HEADER] for _ in range(3)}
    assert len(ids) == 3


def test_404_outside_any_mapping(client):
    _assert_error(client.get("/nowhere", status=404), 404)


def test_404_inside_v1(client, token):
    error = _assert_error(
        client.get("/v1/nothing", headers={"X-Auth-Token": token}, status=404), 404
    )
    assert error["code"] == "myservice.not_found"


def test_401_without_token(client):
    res = client.get("/v1/users", status=401)
    _assert_error(res, 401)
    assert res.headers["WWW-Authenticate"].startswith("Token realm=")


def test_405_wrong_method_on_known_path(client, token):
    res = client.put_json("/v1/users", {}, headers={"X-Auth-Token": token}, status=405)
    _assert_error(res, 405)
    assert "POST" in res.headers["Allow"]


def test_413_body_too_large_even_without_token(client):
    # sizelimit sits before auth: an oversized body is refused before anything reads it
    body = b'{"user": {"name": "' + b"x" * 200_000 + b'"}}'
    res = client.post("/v1/users", body, headers={"Content-Type": "application/json"}, status=413)
    _assert_error(res, 413)


def test_500_from_a_failing_driver_is_an_envelope_without_internals(built, client, token):
    app, _, _ = built

    def broken(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    app.context.storage.list_users = broken
    res = client.get("/v1/users", headers={"X-Auth-Token": token}, status=500)
    _assert_error(res, 500)
    assert "secret internal detail" not in res.text


def test_cors_preflight_needs_no_token_and_401_carries_cors(tmp_path):
    conf_file = tmp_path / "myservice.conf"
    conf_file.write_text(
        f"[DEFAULT]\nstate_path = {tmp_path / 'state'}\n\n[storage]\ndriver = sqlite\n\n"
        "[cors]\nallowed_origin = https://dash.example\n",
        encoding="utf-8",
    )
    app = loadapp(f"config:{INI}", global_conf={"config_file": str(conf_file)})
    try:
        client = webtest.TestApp(app)
        origin = {"Origin": "https://dash.example"}
        res = client.options(
            "/v1/users",
            headers={**origin, "Access-Control-Request-Method": "POST"},
            status="*",
        )
        assert res.status_int < 400
        assert res.headers["Access-Control-Allow-Origin"] == "https://dash.example"
        res = client.get("/v1/users", headers=origin, status=401)
        assert res.headers["Access-Control-Allow-Origin"] == "https://dash.example"
        _assert_error(res, 401)
    finally:
        app.close()


def test_create_get_list_round_trip(client, token):
    auth = {"X-Auth-Token": token}
    res = client.post_json("/v1/users", {"user": {"name": "alice"}}, headers=auth, status=201)
    assert is_request_id(res.headers[REQUEST_ID_HEADER])
    user = res.json["user"]
    assert client.get(f"/v1/users/{user['id']}", headers=auth).json["user"]["name"] == "alice"
    names = [u["name"] for u in client.get("/v1/users", headers=auth).json["users"]]
    assert names == ["alice"]


def test_two_applications_from_one_ini_share_nothing(tmp_path):
    apps = []
    secrets = []
    try:
        for n in (1, 2):
            conf_file = tmp_path / f"c{n}.conf"
            conf_file.write_text(
                f"[DEFAULT]\nstate_path = {tmp_path / f'state{n}'}\n", encoding="utf-8"
            )
            secrets.append(_admin_token(tmp_path / f"state{n}"))
            apps.append(loadapp(f"config:{INI}", global_conf={"config_file": str(conf_file)}))
        first, second = apps
        assert first.context is not second.context
        assert first.context.storage is not second.context.storage
        for n, app, secret in ((1, first, secrets[0]), (2, second, secrets[1])):
            webtest.TestApp(app).post_json(
                "/v1/users", {"user": {"name": f"only-in-{n}"}}, headers={"X-Auth-Token": secret}
            )
            listed = webtest.TestApp(app).get("/v1/users", headers={"X-Auth-Token": secret})
            assert [u["name"] for u in listed.json["users"]] == [f"only-in-{n}"]
    finally:
        for app in apps:
            app.close()
