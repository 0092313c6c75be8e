"""``GET /v1/openapi.json``: served without a token, valid OpenAPI 3.1, and exactly the routes
the router knows (both ways)."""

from __future__ import annotations

from pathlib import Path

import pytest
import webtest
from openapi_spec_validator import validate
from paste.deploy import loadapp

from myservice import conf
from myservice.api import openapi, policy, schemas
from myservice.wsgi.app import build_router
from myservice.wsgi.reply import Reply
from myservice.wsgi.router import PUBLIC, ROUTES, Route, Router
from tests.serving.helpers import ETC

from .conftest import assert_envelope, find_router

_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _operations(doc: dict):
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method in _METHODS:
                yield path, method, operation


def _resolve(doc: dict, node: dict) -> dict:
    while "$ref" in node:
        parts = node["$ref"].removeprefix("#/").split("/")
        node = doc
        for part in parts:
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


@pytest.fixture
def document(client) -> dict:
    return client.get("/v1/openapi.json").json


def test_served_without_a_token_and_valid_openapi_3_1(client):
    res = client.get("/v1/openapi.json")
    assert res.status_int == 200
    assert res.content_type == "application/json"
    doc = res.json
    assert doc["openapi"] == "3.1.0"
    validate(doc)  # openapi-spec-validator: raises on an invalid document


def test_head_of_the_document_needs_no_token_either(client):
    res = client.head("/v1/openapi.json")
    assert res.status_int == 200
    assert int(res.headers["Content-Length"]) == len(client.get("/v1/openapi.json").body)


def test_every_route_is_in_the_document_and_every_operation_is_a_route(built, document):
    app = built[0]
    router = find_router(app)
    routed = {(r.method.lower(), "/v1" + r.path) for r in router.routes}
    documented = {(m, p) for p, m, _ in _operations(document) if p.startswith("/v1")}
    assert routed == documented
    # the rest are the urlmap's other applications
    others = {p for p, _, _ in _operations(document) if not p.startswith("/v1")}
    assert others == {"/", "/healthcheck"}
    # the extension's routes are among them
    assert ("put", "/v1/users/{user_id}/metadata/{key}") in documented


def test_other_methods_on_documented_paths_are_405(client, token):
    """Both ways, seen from outside: what the document omits for a path the router refuses."""
    doc = client.get("/v1/openapi.json").json
    for path, item in doc["paths"].items():
        if "{" in path or not path.startswith("/v1"):
            continue
        for method in ("get", "post", "patch", "delete", "put"):
            if method in item:
                continue
            res = client.request(
                path, method=method.upper(), headers={"X-Auth-Token": token}, expect_errors=True
            )
            assert res.status_int == 405, (method, path, res.body)


def test_request_schemas_are_the_api_schemas(document):
    components = document["components"]["schemas"]
    without_dialect = {k: v for k, v in schemas.USER_CREATE.items() if k != "$schema"}
    assert components["UserCreate"] == without_dialect
    assert components["UserUpdate"] == {
        k: v for k, v in schemas.USER_UPDATE.items() if k != "$schema"
    }
    assert document["jsonSchemaDialect"] == schemas.SCHEMA_DIALECT
    create = document["paths"]["/v1/users"]["post"]["requestBody"]["content"]
    assert create["application/json"]["schema"] == {"$ref": "#/components/schemas/UserCreate"}


def test_every_error_response_is_the_envelope(document):
    error_schema = {"$ref": "#/components/schemas/Error"}
    count = 0
    for path, method, operation in _operations(document):
        for status, response in operation["responses"].items():
            if status[0] not in "45":
                continue
            content = _resolve(document, response)["content"]
            assert content["application/json"]["schema"] == error_schema, (path, method, status)
            count += 1
    assert count > 50


def test_the_503_description_names_both_codes_the_api_sends(document):
    from myservice.storage.base import Unavailable
    from myservice.wsgi import app as app_mod

    description = document["components"]["responses"]["Error503"]["description"]
    for method in ("GET", "POST"):
        error = app_mod.STORAGE_ERRORS[Unavailable](Unavailable("x"), {"REQUEST_METHOD": method})
        assert f"myservice.{error.code or 'service_unavailable'}" in description
    assert "myservice.outcome_unknown" in description


def test_security_scheme_and_public_operations(document):
    scheme = document["components"]["securitySchemes"]["token"]
    assert scheme == {**scheme, "type": "apiKey", "in": "header", "name": "X-Auth-Token"}
    assert document["security"] == [{"token": []}]
    public = {(p, m) for p, m, op in _operations(document) if op.get("security") == []}
    assert public == {("/", "get"), ("/healthcheck", "get"), ("/v1/openapi.json", "get")}
    for _, _, operation in _operations(document):
        if operation.get("security") != []:
            assert "401" in operation["responses"]


def test_identity_headers_are_ignored_on_the_public_path(client):
    forged = {"X-Identity-Status": "Confirmed", "X-Roles": "admin", "X-User-Id": "x"}
    res = client.get("/v1/users", headers=forged, expect_errors=True)
    assert res.status_int == 401
    # public only for GET/HEAD of that path: another method is 405 (no route), never a write
    res = client.post("/v1/openapi.json", headers=forged, expect_errors=True)
    assert_envelope(res.status_int, res.headers, res.body)
    assert res.status_int == 405


def test_public_paths_can_be_emptied(tmp_path: Path):
    conf_file = tmp_path / "myservice.conf"
    conf_file.write_text(
        f"[DEFAULT]\nstate_path = {tmp_path / 'state'}\n\n[storage]\ndriver = memory\n\n"
        "[auth]\npublic_paths =\n",
        encoding="utf-8",
    )
    app = loadapp(f"config:{ETC / 'api-paste.ini'}", global_conf={"config_file": str(conf_file)})
    try:
        res = webtest.TestApp(app).get("/v1/openapi.json", expect_errors=True)
        assert res.status_int == 401
        assert_envelope(401, res.headers, res.body)
    finally:
        app.close()


def test_a_relative_public_path_is_a_config_error(tmp_path: Path):
    conf_file = tmp_path / "myservice.conf"
    conf_file.write_text(
        f"[DEFAULT]\nstate_path = {tmp_path / 'state'}\n\n[storage]\ndriver = memory\n\n"
        "[auth]\npublic_paths = v1/openapi.json\n",
        encoding="utf-8",
    )
    with pytest.raises(conf.ConfigError, match=r"public_paths.*'v1/openapi.json'"):
        loadapp(f"config:{ETC / 'api-paste.ini'}", global_conf={"config_file": str(conf_file)})


def test_a_public_route_needs_a_literal_path():
    with pytest.raises(ValueError, match="literal path"):
        Router(ROUTES, extension_routes=[("GET", "/things/{id}", lambda r, c, id: None, PUBLIC)])


# -- extensions' descriptions -----------------------------------------------------------


def _ok(req, ctx, **kw):
    return Reply(200, {"ok": True})


class _Described:
    alias = "described"

    def openapi_paths(self):
        return {
            "/things": {
                "get": {
                    "summary": "the things",
                    "responses": {"200": openapi.json_response("things", {"type": "object"})},
                }
            },
            "/nowhere": {"get": {"summary": "not a route", "responses": {}}},
        }


class _Silent:
    alias = "silent"


def test_extensions_describe_their_routes_or_get_a_generic_operation(caplog):
    routes = [
        *ROUTES,
        Route("GET", "/things", _ok, policy.READ),
        Route("PUT", "/gadgets/{gadget_id}", _ok, policy.WRITE),
    ]
    doc = openapi.build_document(routes, [_Described(), _Silent()])
    validate(doc)
    things = doc["paths"]["/v1/things"]["get"]
    assert things["summary"] == "the things"
    assert things["tags"] == ["described"]
    assert "401" in things["responses"]  # common errors filled in
    gadget = doc["paths"]["/v1/gadgets/{gadget_id}"]["put"]
    assert [p["name"] for p in gadget["parameters"]] == ["gadget_id"]
    assert "requestBody" in gadget and "2XX" in gadget["responses"]
    assert "/v1/nowhere" not in doc["paths"]
    assert "describes GET /v1/nowhere, which is not a route" in caplog.text


def test_build_router_describes_exactly_its_routes(built):
    app = built[0]
    router = build_router(app.context)
    doc = router.routes[-1].controller.__self__.document
    assert router.routes[-1][:2] == ("GET", "/openapi.json")
    assert {(r.method.lower(), "/v1" + r.path) for r in router.routes} == {
        (m, p) for p, m, _ in _operations(doc) if p.startswith("/v1")
    }
