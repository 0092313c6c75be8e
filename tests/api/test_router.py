"""The router: 404/405 with Allow, no ``_method`` override, policy (401/403), storage errors
(503), the envelope, extension routes and the route table API."""

from __future__ import annotations

import logging

import pytest
import webtest

from myservice.api import policy
from myservice.storage import base as storage
from myservice.wsgi import app as app_mod
from myservice.wsgi import faults
from myservice.wsgi.context import CONTEXT_KEY
from myservice.wsgi.reply import Reply
from myservice.wsgi.router import ROUTES, Route, Router
from tests.api.conftest import ADMIN, BEHIND_AUTH, READER, envelope_of, mount

RID = "req-aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"


def _user(api, name="alice"):
    return api.post_json("/v1/users", {"user": {"name": name}}, headers=ADMIN).json["user"]


# -- routing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/v1/nothing", "/v1/users/", "/v1/users/x/y", "/v1/users.json", "/v1/users/new"]
)
def test_unknown_path_is_404_in_the_envelope(api, path):
    res = api.get(path, headers=READER, status=404, extra_environ={"openstack.request_id": RID})
    error = envelope_of(res)
    assert error["code"] == "myservice.not_found"
    assert error["request_id"] == RID


@pytest.mark.parametrize(
    ("path", "suggestion"),
    [
        ("/v1/usrs", "/v1/users"),
        ("/v1/users/", "/v1/users"),
        ("/v1/users/abc/", "/v1/users/abc"),
        ("/v1/extension", "/v1/extensions"),
        ("/v1/opnapi.json", "/v1/openapi.json"),
    ],
)
def test_404_names_the_closest_route_path(api, path, suggestion):
    detail = envelope_of(api.get(path, headers=READER, status=404))["detail"]
    assert detail == f"No resource at {path}; did you mean {suggestion}?"


@pytest.mark.parametrize("path", ["/v1/nothing", "/v1/projects/p1"])
def test_404_without_a_close_route_path_suggests_nothing(api, path):
    detail = envelope_of(api.get(path, headers=READER, status=404))["detail"]
    assert detail == f"No resource at {path}."


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/v1/users", "GET, HEAD, POST"),
        ("DELETE", "/v1/users", "GET, HEAD, POST"),
        ("POST", "/v1/users/abc", "DELETE, GET, HEAD, PATCH"),
        ("PUT", "/v1/users/abc", "DELETE, GET, HEAD, PATCH"),
        ("DELETE", "/v1/extensions", "GET, HEAD"),
    ],
)
def test_wrong_method_is_405_with_allow(api, method, path, allow):
    res = api.request(
        path,
        method=method,
        headers=ADMIN,
        status=405,
        environ={"openstack.request_id": RID},
    )
    assert res.headers["Allow"] == allow
    error = envelope_of(res)
    assert error["code"] == "myservice.method_not_allowed"
    assert error["request_id"] == RID
    assert method in error["detail"]


def test_method_override_is_not_honoured(api, ctx):
    uid = _user(api)["id"]
    # a POST with ?_method=DELETE is a POST on /users/{id}: 405, nothing deleted
    res = api.post(f"/v1/users/{uid}?_method=DELETE", headers=ADMIN, status=405)
    assert "POST" in envelope_of(res)["detail"]
    # a GET with _method=DELETE stays a GET (and the extra query parameter is refused)
    api.get(f"/v1/users/{uid}?_method=DELETE", headers=READER, status=200)
    api.post(
        f"/v1/users/{uid}",
        {"_method": "DELETE"},
        headers=ADMIN,
        status=405,
    )
    assert ctx.storage.get_user(uid)["id"] == uid


def test_request_id_is_absent_from_envelope_without_the_filter(api):
    res = api.get("/v1/nothing", headers=READER, status=404)
    assert envelope_of(res)["request_id"] is None


def test_context_is_put_in_the_environ(ctx, global_conf):
    seen = {}

    def probe(req, context):
        seen["environ"] = req.environ[CONTEXT_KEY]
        seen["arg"] = context
        return Reply(200, {"ok": True})

    router = Router([Route("GET", "/probe", probe, policy.READ)], ctx)
    webtest.TestApp(router, extra_environ=BEHIND_AUTH).get("/probe", headers=READER)
    assert seen == {"environ": ctx, "arg": ctx}


def test_version_document_of_v1(api):
    res = api.get("/v1/", headers=READER)
    assert res.json["version"]["id"] == "v1.0"
    assert res.json["version"]["links"] == [{"rel": "self", "href": "http://localhost/v1/"}]


# -- policy ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Identity-Status": "Invalid", "X-Roles": "admin"},
        {"X-Roles": "admin", "X-User-Id": "u"},
    ],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/users"), ("POST", "/v1/users"), ("GET", "/v1/nothing"), ("GET", "/v1/")],
)
def test_no_confirmed_identity_is_401(api, ctx, headers, method, path):
    res = api.request(
        path, method=method, headers=headers, status=401, environ={"openstack.request_id": RID}
    )
    assert res.headers["WWW-Authenticate"] == 'Token realm="myservice"'
    error = envelope_of(res)
    assert error["request_id"] == RID
    assert ctx.storage.list_users(10) == []


@pytest.mark.parametrize(
    ("vouched", "allowed"),
    [
        ({}, False),  # the headers alone: anyone can send them
        ({policy.KEYSTONE_TOKEN_INFO: {}}, False),  # keystonemiddleware found no valid token
        ({policy.AUTHENTICATED_BY: "auth"}, True),
        ({policy.KEYSTONE_TOKEN_INFO: {"token": {"user": {"id": "u"}}}}, True),
    ],
    ids=["headers-only", "keystone-no-token", "auth-filter", "keystonemiddleware"],
)
def test_identity_headers_count_only_when_a_filter_vouched_for_them(vouched, allowed):
    environ = {
        "HTTP_X_IDENTITY_STATUS": "Confirmed",
        "HTTP_X_ROLES": "admin",
        "HTTP_X_USER_ID": "u",
        **vouched,
    }
    if allowed:
        policy.enforce(environ, policy.WRITE)
        return
    with pytest.raises(faults.APIError) as info:
        policy.enforce(environ, policy.WRITE)
    assert info.value.status == 401


def test_realm_comes_from_the_config(tmp_path, make_conf):
    conf = make_conf(tmp_path, "memory", auth={"www_authenticate_realm": "acme"})
    res = webtest.TestApp(
        app_mod.api_v1_factory({"config_file": str(conf.path), "here": str(tmp_path)})
    ).get("/users", status=401)
    assert res.headers["WWW-Authenticate"] == 'Token realm="acme"'


@pytest.mark.parametrize("roles", ["", "member", "reader", "Reader, member"])
def test_writing_needs_admin(api, ctx, roles):
    uid = ctx.storage.create_user(
        {"name": "target", "email": None, "enabled": True, "description": None}
    )["id"]
    headers = {**ADMIN, "X-Roles": roles}
    for res in (
        api.post_json("/v1/users", {"user": {"name": "x"}}, headers=headers, status=403),
        api.patch_json(f"/v1/users/{uid}", {"user": {"name": "y"}}, headers=headers, status=403),
        api.delete(f"/v1/users/{uid}", headers=headers, status=403),
    ):
        error = envelope_of(res)
        assert "'admin'" in error["detail"]
    assert [u["name"] for u in ctx.storage.list_users(10)] == ["target"]


@pytest.mark.parametrize("roles", ["", "member", "observer"])
def test_reading_needs_reader_or_admin(api, roles):
    res = api.get("/v1/users", headers={**ADMIN, "X-Roles": roles}, status=403)
    detail = envelope_of(res)["detail"]
    assert "'reader'" in detail and "'admin'" in detail
    api.head("/v1/users", headers={**ADMIN, "X-Roles": roles}, status=403)


@pytest.mark.parametrize("roles", ["reader", "admin", "member, reader", " ADMIN "])
def test_reader_or_admin_may_read(api, roles):
    api.get("/v1/users", headers={**ADMIN, "X-Roles": roles}, status=200)


def test_policy_runs_before_validation(api):
    res = api.post("/v1/users", "garbage", headers=READER, status=403)
    envelope_of(res)


# -- storage errors ----------------------------------------------------------------------


class DownDriver(storage.StorageDriver):
    """Every call fails as if the database were unreachable; ``nothing_written`` is what each
    failure says of a write."""

    nothing_written = False

    def _down(self, *args, **kwargs):
        raise storage.Unavailable(
            "connection refused to db.internal:5432", nothing_written=self.nothing_written
        )

    check = create_user = get_user = list_users = update_user = delete_user = _down
    get_metadata = set_metadata_item = delete_metadata_item = _down


@pytest.fixture
def down_api(ctx, global_conf):
    ctx.storage = DownDriver(ctx.conf)
    return webtest.TestApp(mount("/v1", app_mod.api_v1_factory(global_conf)))


def _down_answers(down_api):
    env = {"openstack.request_id": RID}
    reads = [
        down_api.get("/v1/users", headers=READER, status=503, extra_environ=env),
        down_api.get("/v1/users/x", headers=READER, status=503, extra_environ=env),
    ]
    writes = [
        down_api.post_json(
            "/v1/users", {"user": {"name": "x"}}, headers=ADMIN, status=503, extra_environ=env
        ),
        down_api.patch_json(
            "/v1/users/x", {"user": {"name": "y"}}, headers=ADMIN, status=503, extra_environ=env
        ),
        down_api.delete("/v1/users/x", headers=ADMIN, status=503, extra_environ=env),
    ]
    for res in reads + writes:
        error = envelope_of(res)
        assert error["request_id"] == RID
        assert "db.internal" not in error["detail"]
    return [envelope_of(r) for r in reads], [envelope_of(r) for r in writes]


def _unavailable_warnings(caplog):
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "myservice.wsgi.app" and r.levelno == logging.WARNING
    ]


def test_unavailable_storage_is_503_without_internal_details(down_api, ctx, caplog):
    ctx.storage.nothing_written = True
    caplog.set_level(logging.WARNING, logger="myservice.wsgi.app")
    reads, writes = _down_answers(down_api)
    for error in reads + writes:
        assert error["code"] == "myservice.service_unavailable"
        assert error["detail"] == "The storage backend is unavailable right now; retry later."
    assert ctx.hooks.events == []
    # the operator's log keeps the driver's detail the client does not see
    assert (
        _unavailable_warnings(caplog)
        == ["storage unavailable: connection refused to db.internal:5432"] * 5
    )


def test_a_write_the_driver_cannot_vouch_for_is_503_outcome_unknown(down_api, ctx, caplog):
    caplog.set_level(logging.WARNING, logger="myservice.wsgi.app")
    reads, writes = _down_answers(down_api)
    for error in reads:
        assert error["code"] == "myservice.service_unavailable"
    for error in writes:
        assert error["code"] == "myservice.outcome_unknown"
        assert error["detail"].startswith("The storage backend became unavailable during this")
        assert "may or may not have been saved" in error["detail"]
    assert ctx.hooks.events == []
    # no hook ran for a write that may have been saved: its WARNING is what marks it
    plain = "storage unavailable: connection refused to db.internal:5432"
    unknown = (
        "storage unavailable during {}, outcome unknown (it may have been saved; no event hook "
        "ran for it): connection refused to db.internal:5432"
    )
    assert _unavailable_warnings(caplog) == [
        plain,
        plain,
        unknown.format("POST /v1/users"),
        unknown.format("PATCH /v1/users/x"),
        unknown.format("DELETE /v1/users/x"),
    ]


def test_every_storage_exception_has_one_mapping():
    statuses = {
        cls: fn(cls("m"), {"QUERY_STRING": ""}).status for cls, fn in app_mod.STORAGE_ERRORS.items()
    }
    assert statuses == {
        storage.NotFound: 404,
        storage.Conflict: 409,
        storage.MarkerNotFound: 400,
        storage.Unavailable: 503,
    }


def test_driver_exception_subclasses_use_their_base_mapping(ctx):
    class GoneForGood(storage.NotFound):
        """A third-party driver's own kind of NotFound."""

    def boom(req, context):
        raise GoneForGood("user 'x' was purged")

    router = Router([Route("GET", "/x", boom, policy.READ)], ctx, error_map=app_mod.STORAGE_ERRORS)
    res = webtest.TestApp(router, extra_environ=BEHIND_AUTH).get("/x", headers=READER, status=404)
    assert "purged" in envelope_of(res)["detail"]


def test_unmapped_exceptions_propagate_to_the_fault_barrier(ctx):
    def bug(req, context):
        raise ZeroDivisionError

    router = Router([Route("GET", "/bug", bug, policy.READ)], ctx, error_map=app_mod.STORAGE_ERRORS)
    with pytest.raises(ZeroDivisionError):
        webtest.TestApp(router, extra_environ=BEHIND_AUTH).get("/bug", headers=READER)


# -- adding routes ------------------------------------------------------------------------


def _hello(req, context, who):
    return Reply(200, {"hello": who})


def test_extension_routes_at_construction_and_later(ctx):
    router = Router(
        ROUTES,
        ctx,
        extension_routes=[("GET", "/hello/{who}", _hello, policy.READ)],
    )
    app = webtest.TestApp(router, extra_environ=BEHIND_AUTH)
    assert app.get("/hello/bob", headers=READER).json == {"hello": "bob"}
    router.add_route("DELETE", "/hello/{who}", _hello, policy.WRITE)
    assert app.delete("/hello/bob", headers=ADMIN).json == {"hello": "bob"}
    res = app.put("/hello/bob", headers=ADMIN, status=405)
    assert res.headers["Allow"] == "DELETE, GET, HEAD"
    app.delete("/hello/bob", headers=READER, status=403)
    # the core routes are still there
    app.get("/users", headers=READER, status=200)


def test_extensions_add_routes_through_the_factory(ctx, global_conf):
    class Extension:
        alias = "hello"
        name = "Hello"
        description = "Says hello."
        updated = "2024-05-01T00:00:00Z"

        def add_routes(self, router):
            router.add_route("GET", "/hello/{who}", _hello, policy.READ)

    class Record:
        name = "hello"
        obj = Extension()

    ctx.extensions = [Record()]
    app = webtest.TestApp(mount("/v1", app_mod.api_v1_factory(global_conf)))
    assert app.get("/v1/hello/ann", headers=READER).json == {"hello": "ann"}
    listed = app.get("/v1/extensions", headers=READER).json
    assert listed == {
        "extensions": [
            {
                "alias": "hello",
                "name": "Hello",
                "description": "Says hello.",
                "updated": "2024-05-01T00:00:00Z",
            }
        ]
    }
    assert app.get("/v1/extensions/hello", headers=READER).json["extension"]["alias"] == "hello"
    res = app.get("/v1/extensions/nope", headers=READER, status=404)
    assert "hello" in envelope_of(res)["detail"]


def test_extension_list_is_empty_without_extensions(tmp_path, make_conf):
    conf = make_conf(tmp_path, "memory", api={"extensions": ""})
    router = app_mod.api_v1_factory({"config_file": str(conf.path), "here": str(tmp_path)})
    try:
        app = webtest.TestApp(router, extra_environ=BEHIND_AUTH)
        assert app.get("/extensions", headers=READER).json == {"extensions": []}
        app.get("/extensions/user_metadata", headers=READER, status=404)
    finally:
        router.context.close()


@pytest.mark.parametrize(
    ("row", "words"),
    [
        (("GET", "/users", _hello, policy.READ), "declared twice"),
        (("FETCH", "/x", _hello, policy.READ), "unknown HTTP method"),
        (("GET", "x", _hello, policy.READ), "must start with '/'"),
        (("GET", "/x", _hello, "admin"), "policy rule"),
    ],
)
def test_bad_routes_are_refused(ctx, row, words):
    router = Router(ROUTES, ctx)
    with pytest.raises((ValueError, TypeError), match=words):
        router.add_routes([row])


def test_errors_are_rendered_by_faults(ctx):
    def refuse(req, context):
        raise faults.APIError(409, "no", headers=[("X-Extra", "1")])

    router = Router([Route("POST", "/r", refuse, policy.WRITE)], ctx)
    res = webtest.TestApp(router, extra_environ=BEHIND_AUTH).post("/r", headers=ADMIN, status=409)
    assert res.headers["X-Extra"] == "1"
    assert res.json == faults.envelope(409, "no", None)


class _Record:
    def __init__(self, obj):
        self.name = obj.alias
        self.obj = obj


class _Ext:
    name = description = updated = "x"

    def __init__(self, alias, rows, fail=False):
        self.alias = alias
        self.rows = rows
        self.fail = fail

    def add_routes(self, router):
        for row in self.rows:
            router.add_route(*row)
        if self.fail:
            raise RuntimeError("half-way failure")


def test_failing_extensions_are_left_out_whole(ctx, global_conf, caplog):
    good = _Ext("good", [("GET", "/good/{who}", _hello, policy.READ)])
    half = _Ext("half", [("GET", "/half/{who}", _hello, policy.READ)], fail=True)
    clash = _Ext(
        "clash",
        [("GET", "/clash/{who}", _hello, policy.READ), ("GET", "/users", _hello, policy.READ)],
    )
    ctx.extensions = [_Record(good), _Record(half), _Record(clash)]
    app = webtest.TestApp(mount("/v1", app_mod.api_v1_factory(global_conf)))
    app.get("/v1/good/x", headers=READER, status=200)
    app.get("/v1/half/x", headers=READER, status=404)
    app.get("/v1/clash/x", headers=READER, status=404)
    assert app.get("/v1/users", headers=READER).json["users"] == []
    listed = app.get("/v1/extensions", headers=READER).json["extensions"]
    assert [e["alias"] for e in listed] == ["good"]
    logged = " ".join(r.getMessage() for r in caplog.records if r.levelname == "ERROR")
    assert "half" in logged and "half-way failure" in logged
    assert "clash" in logged and "declared twice" in logged


def test_a_bad_table_adds_nothing(ctx):
    router = Router(ROUTES, ctx)
    with pytest.raises(ValueError):
        router.add_routes(
            [("GET", "/new", _hello, policy.READ), ("GET", "/users", _hello, policy.READ)]
        )
    assert ("GET", "/new") not in {(r.method, r.path) for r in router.routes}
    webtest.TestApp(router, extra_environ=BEHIND_AUTH).get("/new", headers=READER, status=404)
