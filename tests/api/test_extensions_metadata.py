"""The built-in ``user_metadata`` extension through the real ``/v1`` application, on every
storage driver (memory, sqlite, postgresql, mysql; the server drivers skip without their
server, and fail under ``CI=true``)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import pytest
import webtest

from myservice.api.extensions.metadata import MAX_ITEMS
from myservice.wsgi import context as context_mod
from myservice.wsgi.app import api_v1_factory
from tests.api.conftest import ADMIN, READER, envelope_of, mount

CONNECTION_FIXTURES = {"postgresql": "postgresql_url", "mysql": "mysql_url"}
DRIVERS = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgresql),
    pytest.param("mysql", id="mysql", marks=pytest.mark.mysql),
]


@pytest.fixture(params=DRIVERS)
def app(request, tmp_path, make_conf) -> Iterator[webtest.TestApp]:
    name = request.param
    fixture = CONNECTION_FIXTURES.get(name)
    connection = request.getfixturevalue(fixture) if fixture else ""
    conf = make_conf(tmp_path, name, connection, auto_upgrade=True)
    global_conf = {"config_file": str(conf.path), "here": str(tmp_path)}
    ctx = context_mod.build(conf)
    global_conf[context_mod.CONTEXT_KEY] = ctx
    try:
        yield webtest.TestApp(mount("/v1", api_v1_factory(global_conf)))
    finally:
        ctx.close()


@pytest.fixture
def user(app, request) -> dict:
    name = f"meta-{request.node.name}"[:255]
    return app.post_json("/v1/users", {"user": {"name": name}}, headers=ADMIN).json["user"]


def url(user: dict, key: str | None = None) -> str:
    base = f"/v1/users/{user['id']}/metadata"
    return base if key is None else f"{base}/{quote(key, safe='')}"


def put(app, user, key, value, status=200, body=None):
    body = {"meta": {key: value}} if body is None else body
    return app.put_json(url(user, key), body, headers=ADMIN, status=status)


def test_round_trip(app, user):
    assert app.get(url(user), headers=READER).json == {"metadata": {}}
    res = put(app, user, "color", "blue")
    assert res.json == {"meta": {"color": "blue"}}
    put(app, user, "size", "L")
    assert app.get(url(user), headers=READER).json == {"metadata": {"color": "blue", "size": "L"}}
    assert app.get(url(user, "color"), headers=READER).json == {"meta": {"color": "blue"}}
    # replace
    put(app, user, "color", "green")
    assert app.get(url(user, "color"), headers=READER).json == {"meta": {"color": "green"}}
    # HEAD answers like GET without a body
    head = app.head(url(user, "color"), headers=READER, status=200)
    assert head.body == b""
    res = app.delete(url(user, "color"), headers=ADMIN, status=204)
    assert res.body == b""
    assert app.get(url(user), headers=READER).json == {"metadata": {"size": "L"}}
    app.get(url(user, "color"), headers=READER, status=404)


def test_unicode_and_reserved_characters_in_keys(app, user):
    keys = ("🔑 clé", "é", "50%", "?x=1#y", "a+b", "Key")
    for key in keys:
        put(app, user, key, f"value of {key}")
        assert app.get(url(user, key), headers=READER).json == {"meta": {key: f"value of {key}"}}
    assert set(app.get(url(user), headers=READER).json["metadata"]) == set(keys)


def test_a_slash_cannot_be_addressed(app, user):
    # WSGI decodes %2F in PATH_INFO: "a%2Fb" is two path segments, so no route matches
    res = put(app, user, "a/b", "v", status=404)
    assert "No resource at" in envelope_of(res)["detail"]


def test_limits_of_key_and_value(app, user):
    key, value = "k" * 255, "🙂" * 1024
    put(app, user, key, value)
    assert app.get(url(user, key), headers=READER).json == {"meta": {key: value}}
    detail = envelope_of(put(app, user, "k" * 256, "v", status=400))["detail"]
    assert "/meta" in detail and "1 to 255 characters" in detail
    detail = envelope_of(put(app, user, "v", "x" * 1025, status=400))["detail"]
    assert "/meta/v: got 1025 characters" in detail and "up to 1024" in detail


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"meta": {"k": 1}}, "/meta/k: got integer"),
        ({"meta": {"k": None}}, "/meta/k: got null"),
        ({"meta": {}}, "/meta: no field given"),
        ({"meta": {"k": "v", "other": "w"}}, "exactly one key"),
        ({"meta": {"other": "v"}}, "'other' differs from the key in the URL 'k'"),
        ({"metadata": {"k": "v"}}, "/metadata: unknown field; did you mean 'meta'?"),
        ({"meta": "v"}, "/meta: got string"),
        ({"meta": {"\x01": "v"}}, "/meta: invalid value"),
    ],
)
def test_bad_bodies_are_400_with_the_field(app, user, body, words):
    res = app.put_json(url(user, "k"), body, headers=ADMIN, status=400)
    assert words in envelope_of(res)["detail"]
    assert app.get(url(user), headers=READER).json == {"metadata": {}}


def test_body_must_be_json(app, user):
    res = app.put(url(user, "k"), "meta=v", headers=ADMIN, status=415)
    assert "application/json" in envelope_of(res)["detail"]


def test_unknown_user_and_key_are_404(app, user):
    ghost = {"id": "00000000-0000-4000-8000-000000000000"}
    app.get(url(ghost), headers=READER, status=404)
    app.get(url(ghost, "k"), headers=READER, status=404)
    put(app, ghost, "k", "v", status=404)
    app.delete(url(ghost, "k"), headers=ADMIN, status=404)
    res = app.get(url(user, "missing"), headers=READER, status=404)
    assert "no metadata key 'missing'" in envelope_of(res)["detail"]
    res = app.delete(url(user, "missing"), headers=ADMIN, status=404)
    assert "no metadata key 'missing'" in envelope_of(res)["detail"]


def test_policy_reads_need_reader_writes_need_admin(app, user):
    put(app, user, "k", "v")
    app.get(url(user), headers=READER, status=200)
    app.get(url(user, "k"), headers=READER, status=200)
    res = app.put_json(url(user, "k"), {"meta": {"k": "w"}}, headers=READER, status=403)
    assert "'admin'" in envelope_of(res)["detail"]
    app.delete(url(user, "k"), headers=READER, status=403)
    nobody = {**READER, "X-Roles": "member"}
    app.get(url(user), headers=nobody, status=403)
    app.get(url(user), status=401)
    assert app.get(url(user, "k"), headers=READER).json == {"meta": {"k": "v"}}


def test_wrong_method_is_405_with_allow(app, user):
    res = app.post_json(url(user, "k"), {"meta": {"k": "v"}}, headers=ADMIN, status=405)
    assert res.headers["Allow"] == "DELETE, GET, HEAD, PUT"
    res = app.delete(url(user), headers=ADMIN, status=405)
    assert res.headers["Allow"] == "GET, HEAD"


def test_at_most_max_items_keys(app, user):
    for n in range(MAX_ITEMS):
        put(app, user, f"k{n}", "v")
    res = put(app, user, "one-more", "v", status=403)
    error = envelope_of(res)
    assert error["code"] == "myservice.metadata_limit_exceeded"
    assert f"the most allowed is {MAX_ITEMS}" in error["detail"]
    # replacing an existing key is still allowed, and deleting one makes room
    put(app, user, "k0", "new")
    app.delete(url(user, "k1"), headers=ADMIN, status=204)
    put(app, user, "one-more", "v")
    assert len(app.get(url(user), headers=READER).json["metadata"]) == MAX_ITEMS


def test_metadata_goes_with_the_user(app, user):
    put(app, user, "k", "v")
    app.delete(f"/v1/users/{user['id']}", headers=ADMIN, status=204)
    app.get(url(user), headers=READER, status=404)
