"""access_log: one INFO line per request, after the body has been sent."""

from __future__ import annotations

import logging
import re

import pytest
from webtest import TestApp

from myservice import log
from myservice.middleware import access_log, request_id
from tests.middleware.util import build, echo_app

LINE = re.compile(
    r'(?P<rid>req-[0-9a-f-]{36}) (?P<addr>\S+) "(?P<method>\S+) (?P<path>\S+)" '
    r"status (?P<status>\d{3}) len (?P<len>\d+) time (?P<ms>\d+\.\d) ms"
)


def access_lines(caplog):
    return [r for r in caplog.records if r.name == "myservice.access"]


@pytest.fixture
def caplog(caplog):
    caplog.set_level(logging.INFO, logger="myservice.access")
    return caplog


def make(app, paste_conf):
    return TestApp(
        build(request_id, build(access_log, app, paste_conf), paste_conf),
        extra_environ={"REMOTE_ADDR": "192.0.2.4"},
    )


def test_one_line_per_request_with_all_fields(paste_conf, caplog):
    resp = make(echo_app, paste_conf).get(
        "/v1/users?limit=5", headers={"X-Auth-Token": "tok.SECRETVALUE"}
    )
    (record,) = access_lines(caplog)
    assert record.levelno == logging.INFO
    m = LINE.fullmatch(record.getMessage())
    assert m, record.getMessage()
    assert m["rid"] == resp.headers["X-OpenStack-Request-ID"]
    assert m["addr"] == "192.0.2.4"
    assert m["method"] == "GET"
    assert m["path"] == "/v1/users?limit=5"
    assert m["status"] == "200"
    assert int(m["len"]) == len(resp.body)
    assert "SECRETVALUE" not in caplog.text


def test_logged_after_the_body_is_sent_and_close_called(paste_conf, caplog):
    events = []

    class Body:
        def __iter__(self):
            events.append("iter")
            yield b"abc"
            yield b"de"

        def close(self):
            events.append("close")

    def app(environ, start_response):
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return Body()

    class Recorder(logging.Handler):
        def emit(self, record):
            events.append("log")

    handler = Recorder()
    logging.getLogger("myservice.access").addHandler(handler)
    try:
        make(app, paste_conf).get("/x", status=404)
    finally:
        logging.getLogger("myservice.access").removeHandler(handler)
    assert events == ["iter", "close", "log"]
    m = LINE.fullmatch(access_lines(caplog)[0].getMessage())
    assert m["status"] == "404" and m["len"] == "5"


def test_app_exception_is_logged_as_500_and_propagates(paste_conf, caplog):
    def boom(environ, start_response):
        raise RuntimeError("x")

    with pytest.raises(RuntimeError):
        make(boom, paste_conf).get("/")
    m = LINE.fullmatch(access_lines(caplog)[0].getMessage())
    assert m["status"] == "500"


def test_control_characters_in_path_are_escaped(paste_conf, caplog):
    make(echo_app, paste_conf).get("/a%0Ab")
    message = access_lines(caplog)[0].getMessage()
    assert "\n" not in message and "/a\\nb" in message


def test_request_id_on_the_record_too(paste_conf, caplog):
    caplog.handler.addFilter(log.RequestIdFilter())
    resp = make(echo_app, paste_conf).get("/")
    (record,) = access_lines(caplog)
    # the line is written inside the request: the log context still holds the id
    assert record.request_id == resp.headers["X-OpenStack-Request-ID"]


def test_silenced_logger_skips_the_wrapping(paste_conf, caplog):
    caplog.set_level(logging.WARNING, logger="myservice.access")
    make(echo_app, paste_conf).get("/")
    assert access_lines(caplog) == []
