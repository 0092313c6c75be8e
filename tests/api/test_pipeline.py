"""The v1 API through the shipped ``etc/api-paste.ini`` pipeline (real filters, real auth)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import webtest
from paste.deploy import loadapp

from myservice import tokens
from tests.api.conftest import envelope_of

ETC = Path(__file__).resolve().parents[2] / "etc"


@pytest.fixture
def served(tmp_path, make_conf):
    shutil.copy(ETC / "api-paste.ini", tmp_path / "api-paste.ini")
    make_conf(tmp_path, "memory")
    store = tokens.TokenStore(tmp_path / "state" / "tokens.json")
    admin, _ = store.create("u-admin", "p-1", ["admin"])
    reader, _ = store.create("u-reader", "p-1", ["reader"])
    app = loadapp(f"config:{tmp_path / 'api-paste.ini'}")
    try:
        yield webtest.TestApp(app), {"X-Auth-Token": admin}, {"X-Auth-Token": reader}
    finally:
        close = getattr(app, "close", None)
        if close is not None:
            close()


def test_crud_through_the_pipeline(served):
    app, admin, reader = served
    res = app.post_json("/v1/users", {"user": {"name": "ann"}}, headers=admin, status=201)
    rid = res.headers["X-OpenStack-Request-ID"]
    assert rid.startswith("req-")
    location = res.headers["Location"]
    assert location.startswith("http://localhost/v1/users/")
    assert app.get(location, headers=reader).json["user"]["name"] == "ann"
    res = app.post_json("/v1/users", {"user": {"name": "ann"}}, headers=admin, status=409)
    assert envelope_of(res)["request_id"] == res.headers["X-OpenStack-Request-ID"]
    res = app.delete(location, headers=reader, status=403)
    assert envelope_of(res)["request_id"] == res.headers["X-OpenStack-Request-ID"]
    app.delete(location, headers=admin, status=204)


def test_anonymous_is_401_and_public_parts_are_public(served):
    app, _, _ = served
    res = app.get("/v1/users", status=401)
    assert "WWW-Authenticate" in res.headers
    envelope_of(res)
    versions = app.get("/").json["versions"]
    assert versions[0]["links"][0]["href"] == "http://localhost/v1/"
    assert app.get("/healthcheck").body == b"OK"


def test_method_override_is_ignored_through_the_pipeline(served):
    app, admin, reader = served
    uid = app.post_json("/v1/users", {"user": {"name": "kept"}}, headers=admin).json["user"]["id"]
    app.post(f"/v1/users/{uid}?_method=DELETE", headers=admin, status=405)
    app.get(f"/v1/users/{uid}", headers=reader, status=200)


FORGED_ADMIN = {
    "X-Identity-Status": "Confirmed",
    "X-User-Id": "evil",
    "X-Project-Id": "p-1",
    "X-Roles": "admin",
}


def test_forged_identity_headers_are_not_trusted_without_the_auth_filter(tmp_path, make_conf):
    # an operator removes auth from the /v1 pipeline: the API must not fall back to trusting
    # the keystonemiddleware headers a client sends
    ini = (ETC / "api-paste.ini").read_text(encoding="utf-8")
    assert ini.count(" sizelimit auth api_v1\n") == 1
    (tmp_path / "api-paste.ini").write_text(ini.replace(" auth api_v1\n", " api_v1\n"))
    make_conf(tmp_path, "memory")
    app = loadapp(f"config:{tmp_path / 'api-paste.ini'}")
    try:
        client = webtest.TestApp(app)
        body = {"user": {"name": "evil"}}
        res = client.post_json("/v1/users", body, headers=FORGED_ADMIN, status=401)
        assert envelope_of(res)["detail"].startswith("Authentication required")
        client.get("/v1/users", headers=FORGED_ADMIN, status=401)
        assert app.context.storage.list_users(10) == []
    finally:
        app.close()


def test_forged_identity_headers_with_a_bad_token_are_401(served):
    app, _, _ = served
    headers = {**FORGED_ADMIN, "X-Auth-Token": "not-a-token"}
    app.post_json("/v1/users", {"user": {"name": "evil"}}, headers=headers, status=401)
