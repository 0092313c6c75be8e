"""request_id: a fresh local id on every response, a valid inbound id kept as global id."""

from __future__ import annotations

import logging
import re
import uuid

import pytest
from webtest import TestApp

from myservice import log
from myservice.conf import ConfigError
from myservice.middleware import request_id
from tests.middleware.util import build, echo_app

ID_RE = re.compile(r"req-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


@pytest.fixture
def app(paste_conf):
    return TestApp(build(request_id, echo_app, paste_conf))


def test_every_response_gets_a_fresh_request_id_matching_environ(app):
    first = app.get("/")
    second = app.get("/")
    rid = first.headers["X-OpenStack-Request-ID"]
    assert ID_RE.fullmatch(rid)
    assert first.json["openstack.request_id"] == rid
    assert second.headers["X-OpenStack-Request-ID"] != rid


def test_generated_ids_are_valid_uuid4():
    for _ in range(200):
        rid = request_id.new_request_id()
        parsed = uuid.UUID(rid[4:])
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed) == rid[4:]
        assert request_id.is_request_id(rid)


def test_valid_inbound_id_is_global_request_id_and_not_echoed(app):
    inbound = "req-" + str(uuid.uuid4())
    resp = app.get("/", headers={"X-OpenStack-Request-ID": inbound})
    assert resp.json["openstack.global_request_id"] == inbound
    assert resp.json["log_global_request_id"] == inbound
    assert resp.headers["X-OpenStack-Request-ID"] != inbound
    assert inbound not in resp.headers.values()
    assert resp.headers.getall("X-OpenStack-Request-ID") == [resp.json["openstack.request_id"]]


@pytest.mark.parametrize(
    "inbound",
    [
        "req-" + str(uuid.uuid4()).upper(),
        str(uuid.uuid4()),
        "req-" + str(uuid.uuid1()),  # not version 4
        "req-" + str(uuid.uuid4()) + "x",
        "req-" + str(uuid.uuid4()) + "\n",
        "req-" + uuid.uuid4().hex,
        "hello",
        "",
    ],
)
def test_other_inbound_values_are_ignored(app, inbound):
    resp = app.get("/", headers={"X-OpenStack-Request-ID": inbound})
    assert resp.json["openstack.global_request_id"] is None
    assert resp.json["log_global_request_id"] == "-"
    assert ID_RE.fullmatch(resp.headers["X-OpenStack-Request-ID"])


def test_log_context_is_set_during_request_and_reset_after(app):
    resp = app.get("/")
    assert resp.json["log_request_id"] == resp.headers["X-OpenStack-Request-ID"]
    assert log.request_id.get() == "-"
    assert log.global_request_id.get() == "-"


def test_log_context_is_reset_when_the_app_raises(paste_conf):
    def boom(environ, start_response):
        raise RuntimeError("boom")

    wrapped = build(request_id, boom, paste_conf)
    with pytest.raises(RuntimeError):
        TestApp(wrapped).get("/", headers={"X-OpenStack-Request-ID": "req-" + str(uuid.uuid4())})
    assert log.request_id.get() == "-"
    assert log.global_request_id.get() == "-"


def test_log_lines_during_streamed_body_carry_the_request_id(paste_conf, caplog):
    logger = logging.getLogger("tests.streaming")

    def streaming(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])

        def body():
            logger.info("producing body")
            yield b"x"

        return body()

    formatter = log.Formatter("%(request_id)s %(message)s")
    caplog.handler.addFilter(log.RequestIdFilter())  # stamp records when emitted
    with caplog.at_level(logging.INFO, logger="tests.streaming"):
        resp = TestApp(build(request_id, streaming, paste_conf)).get("/")
    lines = [formatter.format(r) for r in caplog.records if r.name == "tests.streaming"]
    assert lines == [f"{resp.headers['X-OpenStack-Request-ID']} producing body"]
    assert log.request_id.get() == "-"


@pytest.mark.parametrize("kind", [list, tuple])
def test_a_complete_body_is_passed_on_as_is_with_the_context_already_reset(paste_conf, kind):
    seen = {}

    def complete(environ, start_response):
        seen["during"] = log.request_id.get()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return kind([b"done"])

    headers = []
    result = build(request_id, complete, paste_conf)(
        {"REQUEST_METHOD": "GET"}, lambda status, h, exc_info=None: headers.extend(h)
    )
    assert type(result) is kind and list(result) == [b"done"]
    assert ID_RE.fullmatch(seen["during"])
    assert ("X-OpenStack-Request-ID", seen["during"]) in headers
    assert log.request_id.get() == "-"  # reset when the application returned


def test_a_lazy_body_keeps_the_context_until_closed(paste_conf):
    seen = []

    def lazy(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])

        def body():
            seen.append(log.request_id.get())
            yield b"x"

        return body()

    result = build(request_id, lazy, paste_conf)({"REQUEST_METHOD": "GET"}, lambda *a: None)
    held = log.request_id.get()
    assert ID_RE.fullmatch(held)  # still set: the body is not produced yet
    assert list(result) == [b"x"] and seen == [held]
    result.close()
    assert log.request_id.get() == "-"


def test_unknown_option_is_refused(paste_conf):
    with pytest.raises(ConfigError, match=r"\[filter:request_id\].*verbose"):
        request_id.filter_factory(paste_conf, verbose="true")
