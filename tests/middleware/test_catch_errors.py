"""catch_errors: exceptions become a 500 envelope, APIErrors their own status."""

from __future__ import annotations

import logging

import pytest
from webtest import TestApp

from myservice.middleware import catch_errors, request_id
from myservice.wsgi import faults
from tests.middleware.util import assert_envelope, build, echo_app

SECRET = "password=hunter2 at /srv/internal/db.py line 42"


def pipeline(app, paste_conf):
    return TestApp(build(request_id, build(catch_errors, app, paste_conf), paste_conf))


def raising(environ, start_response):
    raise RuntimeError(SECRET)


def raising_after_start_response(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    raise RuntimeError(SECRET)


def raising_in_body(environ, start_response):
    def body():
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b""
        raise RuntimeError(SECRET)

    return body()


def api_error(environ, start_response):
    raise faults.APIError(409, "User 'bob' already exists.", headers=[("X-Extra", "1")])


@pytest.mark.parametrize("app", [raising, raising_after_start_response, raising_in_body])
def test_unexpected_error_is_a_500_envelope_without_internals(app, paste_conf, caplog):
    with caplog.at_level(logging.DEBUG):
        resp = pipeline(app, paste_conf).get("/", status=500)
    rid = resp.headers["X-OpenStack-Request-ID"]
    error = assert_envelope(resp, 500, rid)
    assert error["detail"].startswith("An unexpected error occurred")
    assert "hunter2" not in resp.text and "RuntimeError" not in resp.text
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert rid in errors[0].getMessage()
    assert errors[0].exc_info and errors[0].exc_info[0] is RuntimeError


def test_api_error_keeps_its_status_and_logs_at_debug(paste_conf, caplog):
    with caplog.at_level(logging.DEBUG):
        resp = pipeline(api_error, paste_conf).get("/", status=409)
    error = assert_envelope(resp, 409, resp.headers["X-OpenStack-Request-ID"])
    assert error["detail"] == "User 'bob' already exists."
    assert resp.headers["X-Extra"] == "1"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any(r.levelno == logging.DEBUG and r.exc_info for r in caplog.records)


def test_head_error_has_no_body(paste_conf):
    resp = pipeline(raising, paste_conf).head("/", status=500)
    assert resp.body == b""


def test_successful_responses_pass_through(paste_conf):
    resp = pipeline(echo_app, paste_conf).get("/")
    assert resp.json["openstack.request_id"] == resp.headers["X-OpenStack-Request-ID"]


def test_streamed_body_passes_through_and_is_closed(paste_conf):
    closed = []

    class Body:
        def __iter__(self):
            yield b""
            yield b"a"
            yield b"b"

        def close(self):
            closed.append(True)

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Body()

    resp = pipeline(app, paste_conf).get("/")
    assert resp.body == b"ab"
    assert closed == [True]


def test_error_after_first_chunk_is_logged_and_reraised(paste_conf, caplog):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"partial"
        raise RuntimeError(SECRET)

    with caplog.at_level(logging.ERROR), pytest.raises(RuntimeError):
        pipeline(app, paste_conf).get("/")
    assert any("cut short" in r.getMessage() for r in caplog.records)
