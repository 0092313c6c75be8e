"""cors: preflight answered by the filter; allowed origins only; exact match."""

from __future__ import annotations

import pytest
from webtest import TestApp

from myservice.conf import ConfigError
from myservice.middleware import cors
from tests.middleware.util import build, echo_app

ORIGIN = "https://dashboard.example"


def make(paste_conf, **options):
    return TestApp(build(cors, echo_app, paste_conf, **options))


@pytest.fixture
def app(paste_conf):
    return make(paste_conf, allowed_origin=f"{ORIGIN}, https://other.example")


def preflight(app, origin=ORIGIN, method="POST", headers=None, status=200):
    h = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        h["Access-Control-Request-Headers"] = headers
    return app.options("/v1/users", headers=h, status=status, expect_errors=status >= 400)


def test_disabled_without_allowed_origins(paste_conf):
    assert build(cors, echo_app, paste_conf) is echo_app


def test_preflight_from_allowed_origin_is_answered_by_the_filter(app):
    resp = preflight(app, headers="Content-Type, x-auth-token")
    assert resp.status_int == 200
    assert resp.body == b""
    assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    assert "X-Auth-Token" in resp.headers["Access-Control-Allow-Headers"]
    assert resp.headers["Access-Control-Max-Age"] == "3600"
    assert resp.headers["Vary"] == "Origin"
    assert "Access-Control-Allow-Credentials" not in resp.headers


def test_preflight_with_disallowed_method_or_header_gets_no_cors_headers(app):
    for resp in (preflight(app, method="PUT"), preflight(app, headers="X-Secret")):
        assert resp.status_int == 200
        assert not [h for h in resp.headers if h.lower().startswith("access-control-")]


def test_preflight_from_other_origin_goes_to_the_app_without_cors_headers(app):
    resp = preflight(app, origin="https://evil.example")
    assert "openstack.request_id" in resp.json  # answered by the echo app
    assert not [h for h in resp.headers if h.lower().startswith("access-control-")]


def test_origin_match_is_exact(app):
    for origin in ("https://dashboard.example.evil", "http://dashboard.example", "null"):
        resp = app.get("/", headers={"Origin": origin})
        assert "Access-Control-Allow-Origin" not in resp.headers


def test_actual_request_from_allowed_origin(app):
    resp = app.get("/", headers={"Origin": ORIGIN})
    assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert resp.headers["Access-Control-Expose-Headers"] == "X-OpenStack-Request-ID, Location"
    assert resp.headers["Vary"] == "Origin"
    assert "openstack.request_id" in resp.json


def test_no_origin_no_cors_headers(app):
    resp = app.get("/")
    assert not [h for h in resp.headers if h.lower().startswith("access-control-")]


def test_credentials(paste_conf):
    app = make(paste_conf, allowed_origin=ORIGIN, allow_credentials="true", max_age="60")
    resp = app.get("/", headers={"Origin": ORIGIN})
    assert resp.headers["Access-Control-Allow-Credentials"] == "true"
    resp = preflight(app)
    assert resp.headers["Access-Control-Allow-Credentials"] == "true"
    assert resp.headers["Access-Control-Max-Age"] == "60"


def test_wildcard_only_when_listed(paste_conf):
    app = make(paste_conf, allowed_origin="*")
    resp = app.get("/", headers={"Origin": "https://anyone.example"})
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    app = make(paste_conf, allowed_origin="*", allow_credentials="true")
    resp = app.get("/", headers={"Origin": "https://anyone.example"})
    assert resp.headers["Access-Control-Allow-Origin"] == "https://anyone.example"


def test_bad_origin_is_a_config_error(paste_conf):
    with pytest.raises(ConfigError, match=r"\[filter:cors\].*allowed_origin.*scheme://host"):
        cors.filter_factory(paste_conf, allowed_origin="dashboard.example")


def test_bad_max_age(paste_conf):
    with pytest.raises(ConfigError, match=r"\[cors\] max_age: expected a value >= 0"):
        cors.filter_factory(paste_conf, allowed_origin=ORIGIN, max_age="-5")
