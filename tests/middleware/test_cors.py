"""cors: preflight answered by the filter; allowed origins only; exact match."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from paste.deploy import loadapp
from webtest import TestApp

from myservice import conf
from myservice.conf import ConfigError
from myservice.middleware import cors
from tests.middleware.util import build, echo_app

ORIGIN = "https://dashboard.example"
ETC = Path(__file__).resolve().parents[2] / "etc"


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
    for resp in (preflight(app, method="PROPFIND"), preflight(app, headers="X-Secret")):
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
    assert "Access-Control-Allow-Credentials" not in resp.headers


def test_bad_origin_is_a_config_error(paste_conf):
    with pytest.raises(ConfigError, match=r"\[filter:cors\].*allowed_origin.*scheme://host"):
        cors.filter_factory(paste_conf, allowed_origin="dashboard.example")


def test_bad_max_age(paste_conf):
    with pytest.raises(ConfigError, match=r"\[cors\] max_age: expected a value >= 0"):
        cors.filter_factory(paste_conf, allowed_origin=ORIGIN, max_age="-5")


# -- the defaults cover the shipped API (bug 1) ---------------------------------------------


def shipped_paste(tmp_path, **cors_options):
    """The shipped etc/api-paste.ini next to a myservice.conf (memory driver) with ``[cors]``
    set to ``cors_options``."""
    shutil.copy(ETC / "api-paste.ini", tmp_path / "api-paste.ini")
    lines = ["[DEFAULT]", f"state_path = {tmp_path / 'state'}", "[storage]", "driver = memory"]
    lines += ["[cors]", *(f"{k} = {v}" for k, v in cors_options.items())]
    (tmp_path / "myservice.conf").write_text("\n".join(lines) + "\n")
    return f"config:{tmp_path / 'api-paste.ini'}"


def test_default_methods_and_headers():
    defaults = conf.defaults().cors
    assert defaults.allow_methods == ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    assert defaults.allow_headers == [
        "Content-Type",
        "X-Auth-Token",
        "Authorization",
        "X-OpenStack-Request-ID",
    ]
    assert list(cors.DEFAULT_METHODS) == defaults.allow_methods


def test_default_methods_cover_every_route_of_the_shipped_api(tmp_path):
    router = loadapp(shipped_paste(tmp_path, allowed_origin=ORIGIN), name="api_v1")
    served = {r.method for r in router.routes} | {"HEAD"}  # HEAD: every GET answers it
    assert "PUT" in served  # user_metadata's PUT /v1/users/{id}/metadata/{key}
    assert served <= set(conf.defaults().cors.allow_methods)


def test_shipped_pipeline_preflight_for_metadata_put_with_bearer(tmp_path):
    app = TestApp(loadapp(shipped_paste(tmp_path, allowed_origin=ORIGIN)))
    resp = app.options(
        "/v1/users/u1/metadata/color",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert resp.status_int == 200
    assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert resp.headers["Access-Control-Allow-Methods"] == (
        "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
    )
    assert resp.headers["Access-Control-Allow-Headers"] == (
        "Content-Type, X-Auth-Token, Authorization, X-OpenStack-Request-ID"
    )
    assert resp.headers.getall("Vary") == ["Origin"]


# -- Vary: Origin on every response when enabled (bug 2) -------------------------------------


def app_with_headers(*extra):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"), *extra])
        return [b"ok"]

    return app


@pytest.mark.parametrize(
    "headers",
    [{}, {"Origin": "https://evil.example"}, {"Origin": "null"}, {"Origin": ORIGIN}],
    ids=["no-origin", "other-origin", "null-origin", "allowed-origin"],
)
def test_every_response_varies_on_origin(app, headers):
    resp = app.get("/", headers=headers)
    assert resp.headers.getall("Vary") == ["Origin"]
    assert "openstack.request_id" in resp.json  # answered by the echo app


def test_preflight_from_other_origin_varies_on_origin(app):
    resp = preflight(app, origin="https://evil.example")
    assert "openstack.request_id" in resp.json
    assert resp.headers.getall("Vary") == ["Origin"]


def test_refused_preflight_varies_on_origin(app):
    resp = preflight(app, method="PROPFIND")
    assert resp.headers.getall("Vary") == ["Origin"]


@pytest.mark.parametrize("origin", [None, "https://evil.example", ORIGIN])
@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        ([("Vary", "Accept")], ["Accept, Origin"]),
        ([("Vary", "Accept-Encoding"), ("Vary", "Accept")], ["Accept-Encoding, Origin", "Accept"]),
        ([("Vary", "Accept, origin")], ["Accept, origin"]),
        ([("vary", "ORIGIN")], ["ORIGIN"]),
        ([("Vary", "*")], ["*"]),
        ([("Vary", "")], ["Origin"]),
    ],
)
def test_vary_is_merged_with_the_applications(paste_conf, origin, existing, expected):
    app = TestApp(build(cors, app_with_headers(*existing), paste_conf, allowed_origin=ORIGIN))
    resp = app.get("/", headers={"Origin": origin} if origin else {})
    assert [v for k, v in resp.headerlist if k.lower() == "vary"] == expected


def test_disabled_adds_no_vary(paste_conf):
    inner = app_with_headers(("Vary", "Accept"))
    app = TestApp(build(cors, inner, paste_conf))
    resp = app.get("/", headers={"Origin": ORIGIN})
    assert resp.headers.getall("Vary") == ["Accept"]


# -- wildcard (bug 3) ---------------------------------------------------------------------------


def test_wildcard_answers_star_to_a_null_origin(paste_conf):
    app = make(paste_conf, allowed_origin="*")
    resp = app.get("/", headers={"Origin": "null"})
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    resp = preflight(app, origin="null")
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert resp.headers.getall("Vary") == ["Origin"]


def test_wildcard_with_a_named_origin_names_it_and_stars_the_rest(paste_conf):
    app = make(paste_conf, allowed_origin=f"*, {ORIGIN}")
    assert app.get("/", headers={"Origin": ORIGIN}).headers["Access-Control-Allow-Origin"] == (
        ORIGIN
    )
    resp = app.get("/", headers={"Origin": "null"})
    assert resp.headers["Access-Control-Allow-Origin"] == "*"


def test_wildcard_with_credentials_is_refused_in_the_paste_file(paste_conf):
    ini = paste_conf["__file__"]
    with pytest.raises(ConfigError) as err:
        cors.filter_factory(paste_conf, allowed_origin="*", allow_credentials="true")
    assert str(err.value) == (
        f"{ini} [filter:cors]: [cors] allowed_origin = * with allow_credentials = true: any "
        "web site could read the answers to its visitors' credentialed requests; list the "
        "origins explicitly (allowed_origin = https://dashboard.example) or set "
        "allow_credentials = false"
    )


def test_wildcard_with_credentials_is_refused_in_the_config_file(paste_conf, tmp_path):
    config = tmp_path / "myservice.conf"
    config.write_text(
        f"[cors]\nallowed_origin = {ORIGIN}, *, https://b.example\nallow_credentials = yes\n"
    )
    with pytest.raises(ConfigError) as err:
        cors.filter_factory({**paste_conf, "config_file": str(config)})
    assert str(err.value) == (
        f"{config}: [cors] allowed_origin = * with allow_credentials = true: any web site "
        "could read the answers to its visitors' credentialed requests; list the origins "
        f"explicitly (allowed_origin = {ORIGIN}, https://b.example) or set "
        "allow_credentials = false"
    )


def test_wildcard_with_credentials_set_in_two_files_names_both(paste_conf, tmp_path):
    config = tmp_path / "myservice.conf"
    config.write_text("[cors]\nallowed_origin = *\n")
    ini = paste_conf["__file__"]
    with pytest.raises(ConfigError) as err:
        cors.filter_factory({**paste_conf, "config_file": str(config)}, allow_credentials="on")
    assert str(err.value) == (
        f"{config}: [cors] allowed_origin = * with allow_credentials = true (set in {ini} "
        "[filter:cors]): any web site could read the answers to its visitors' credentialed "
        "requests; list the origins explicitly (allowed_origin = https://dashboard.example) or "
        "set allow_credentials = false"
    )


def test_wildcard_with_credentials_stops_the_shipped_pipeline(tmp_path):
    uri = shipped_paste(tmp_path, allowed_origin="*", allow_credentials="true")
    with pytest.raises(ConfigError, match=r"allowed_origin = \* with allow_credentials = true"):
        loadapp(uri)


def test_wildcard_with_credentials_is_refused_by_the_class():
    with pytest.raises(ValueError, match="allowed_origin '\\*' with allow_credentials"):
        cors.CORS(echo_app, ["*"], allow_credentials=True)
