"""The filters together, as in api-paste.ini: every error is an envelope with the request id."""

from __future__ import annotations

import io
import logging

import pytest
from paste.deploy import loadapp
from webtest import TestApp

from myservice import log, tokens
from tests.middleware.util import wait_for

INI = """\
[DEFAULT]

[pipeline:main]
pipeline = http_proxy_to_wsgi request_id catch_errors access_log sizelimit cors auth echo

[app:echo]
paste.app_factory = tests.middleware.test_pipeline:app_factory

[filter:http_proxy_to_wsgi]
use = egg:myservice#http_proxy_to_wsgi
enable_proxy_headers_parsing = true

[filter:request_id]
use = egg:myservice#request_id

[filter:catch_errors]
use = egg:myservice#catch_errors

[filter:access_log]
use = egg:myservice#access_log

[filter:sizelimit]
use = egg:myservice#sizelimit
max_request_body_size = 100

[filter:cors]
use = egg:myservice#cors
allowed_origin = https://dash.example

[filter:auth]
use = egg:myservice#auth
"""


def app_factory(global_conf, **local_conf):
    def app(environ, start_response):
        if environ["PATH_INFO"] == "/boom":
            raise ZeroDivisionError("internal")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [environ["HTTP_X_USER_ID"].encode()]

    return app


@pytest.fixture
def token(tmp_path):
    token, _ = tokens.TokenStore(tmp_path / "state" / "tokens.json").create("alice", "p", ["r"])
    return token


@pytest.fixture
def app(tmp_path, token):
    ini = tmp_path / "api-paste.ini"
    ini.write_text(INI)
    return TestApp(loadapp(f"config:{ini}"))


def check(resp, status):
    rid = resp.headers["X-OpenStack-Request-ID"]
    (error,) = resp.json["errors"]
    assert error["status"] == status == resp.status_int
    assert error["request_id"] == rid
    return rid


def test_success(app, token):
    resp = app.get("/", headers={"X-Auth-Token": token, "Origin": "https://dash.example"})
    assert resp.body == b"alice"
    assert resp.headers["Access-Control-Allow-Origin"] == "https://dash.example"


def test_every_error_has_envelope_and_request_id(app, token, caplog):
    caplog.handler.addFilter(log.RequestIdFilter())
    caplog.set_level(logging.INFO)
    check(app.get("/", status=401), 401)
    check(app.post("/", b"x" * 101, headers={"X-Auth-Token": token}, status=413), 413)
    bad_length = {"CONTENT_LENGTH": "x1", "wsgi.input": io.BytesIO(b"")}
    resp = TestApp(app.app, lint=False).get("/", extra_environ=bad_length, status=400)
    check(resp, 400)
    rid = check(app.get("/boom", headers={"X-Auth-Token": token}, status=500), 500)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and errors[0].request_id == rid and rid in errors[0].getMessage()
    # the access log's thread logs the four lines within [access_log] interval (20 ms)
    wait_for(lambda: sum(r.name == "myservice.access" for r in caplog.records) >= 4)
    access = [r for r in caplog.records if r.name == "myservice.access"]
    assert len(access) == 4
    assert all(r.request_id.startswith("req-") for r in access)
    assert token not in caplog.text and token.split(".")[1] not in caplog.text
