"""sizelimit: 413 before the application reads an oversized body; 400 for a bad length."""

from __future__ import annotations

import io

import pytest
from webtest import TestApp, TestRequest

from myservice.conf import ConfigError
from myservice.middleware import request_id, sizelimit
from tests.middleware.util import assert_envelope, build, echo_app

LIMIT = 1000


class CountingInput(io.BytesIO):
    """A wsgi.input recording how many bytes were read from it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.consumed = 0

    def read(self, size: int = -1) -> bytes:
        chunk = super().read(size)
        self.consumed += len(chunk)
        return chunk


def tracking_app(calls):
    def app(environ, start_response):
        calls.append(environ)
        return echo_app(environ, start_response)

    return app


@pytest.fixture
def calls():
    return []


@pytest.fixture
def app(paste_conf, calls):
    limited = build(sizelimit, tracking_app(calls), paste_conf, max_request_body_size=str(LIMIT))
    return TestApp(build(request_id, limited, paste_conf))


@pytest.fixture
def raw(app):
    """Send a POST whose environ is exactly what the test says (WebTest would fix up
    CONTENT_LENGTH and its lint would refuse bad values before the filter sees them)."""
    unlinted = TestApp(app.app, lint=False)

    def send(environ: dict, status: int):
        req = TestRequest.blank("/", method="POST")
        req.environ.pop("CONTENT_LENGTH", None)
        req.environ.update(environ)
        return unlinted.do_request(req, status=status, expect_errors=status >= 400)

    return send


def test_body_within_limit_reaches_app(app, calls):
    resp = app.post("/", b"a" * LIMIT)
    assert resp.json["body"] == "a" * LIMIT
    assert len(calls) == 1


def test_content_length_over_limit_is_413_without_calling_app(app, calls):
    resp = app.post("/", b"a" * (LIMIT + 1), status=413)
    error = assert_envelope(resp, 413, resp.headers["X-OpenStack-Request-ID"])
    assert f"{LIMIT} bytes" in error["detail"]
    assert calls == []


@pytest.mark.parametrize("length", ["abc", "-1", "+5", "1.5", " 5", "١٢", "0x10"])
def test_bad_content_length_is_400(raw, calls, length):
    resp = raw({"CONTENT_LENGTH": length, "wsgi.input": io.BytesIO(b"12345")}, 400)
    error = assert_envelope(resp, 400, resp.headers["X-OpenStack-Request-ID"])
    assert "Content-Length" in error["detail"]
    assert calls == []


def test_huge_content_length_is_413_not_a_crash(raw, calls):
    resp = raw({"CONTENT_LENGTH": "9" * 5000, "wsgi.input": io.BytesIO(b"")}, 413)
    assert_envelope(resp, 413)
    assert calls == []
    # leading zeros are still a small number
    resp = raw({"CONTENT_LENGTH": "0" * 5000 + "5", "wsgi.input": io.BytesIO(b"12345")}, 200)
    assert resp.json["body"] == "12345"


def chunked_environ(body: bytes) -> dict:
    return {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": CountingInput(body)}


@pytest.mark.parametrize("size", [0, 1, LIMIT - 1, LIMIT])
def test_chunked_body_within_limit_is_handed_over_with_length(raw, calls, size):
    body = (bytes(range(256)) * (size // 256 + 1))[:size]
    resp = raw(chunked_environ(body), 200)
    assert resp.json["body"].encode("latin-1") == body
    assert resp.json["CONTENT_LENGTH"] == str(size)
    assert resp.json["HTTP_TRANSFER_ENCODING"] is None
    assert isinstance(calls[0]["wsgi.input"], io.BytesIO)


@pytest.mark.parametrize("size", [LIMIT + 1, LIMIT * 50])
def test_chunked_body_over_limit_is_413_after_reading_limit_plus_one(raw, calls, size):
    env = chunked_environ(b"z" * size)
    resp = raw(env, 413)
    error = assert_envelope(resp, 413, resp.headers["X-OpenStack-Request-ID"])
    assert f"{LIMIT} bytes" in error["detail"]
    assert env["wsgi.input"].consumed == LIMIT + 1
    assert calls == []


def test_default_limit_from_conf(paste_conf, calls):
    app = TestApp(build(sizelimit, tracking_app(calls), paste_conf))
    app.post("/", b"a" * 114688)
    app.post("/", b"a" * 114689, status=413)
    assert len(calls) == 1


def test_limit_from_service_config_file(tmp_path, calls):
    cfg = tmp_path / "myservice.conf"
    cfg.write_text("[sizelimit]\nmax_request_body_size = 10\n")
    global_conf = {"here": str(tmp_path), "__file__": "x.ini", "config_file": str(cfg)}
    app = TestApp(build(sizelimit, tracking_app(calls), global_conf))
    app.post("/", b"a" * 10)
    app.post("/", b"a" * 11, status=413)


def test_bad_limit_option_names_file_section_and_expectation(paste_conf):
    with pytest.raises(ConfigError) as err:
        sizelimit.filter_factory(paste_conf, max_request_body_size="lots")
    message = str(err.value)
    assert paste_conf["__file__"] in message
    assert "[sizelimit] max_request_body_size" in message
    assert "expected an integer" in message


def test_misspelled_option_gets_closest_name(paste_conf):
    with pytest.raises(ConfigError, match="did you mean 'max_request_body_size'"):
        sizelimit.filter_factory(paste_conf, max_request_body_sise="10")


def _detail(app, size):
    resp = app.post("/", b"a" * size, status=413)
    return assert_envelope(resp, 413)["detail"]


def test_413_names_the_paste_filter_section_when_the_limit_is_set_there(app):
    assert _detail(app, LIMIT + 1) == (
        f"The request body is larger than the limit of {LIMIT} bytes "
        "(api-paste.ini [filter:sizelimit] max_request_body_size)."
    )


def test_413_names_the_config_file_section_when_the_limit_is_set_there(tmp_path, calls):
    cfg = tmp_path / "myservice.conf"
    cfg.write_text("[sizelimit]\nmax_request_body_size = 10\n")
    global_conf = {"here": str(tmp_path), "__file__": "x.ini", "config_file": str(cfg)}
    app = TestApp(build(sizelimit, tracking_app(calls), global_conf))
    assert _detail(app, 11) == (
        "The request body is larger than the limit of 10 bytes "
        "(myservice.conf [sizelimit] max_request_body_size)."
    )


def test_413_says_the_limit_is_the_default_when_nothing_sets_it(paste_conf, calls):
    app = TestApp(build(sizelimit, tracking_app(calls), paste_conf))
    assert _detail(app, 114689) == (
        "The request body is larger than the limit of 114688 bytes "
        "(the default of [sizelimit] max_request_body_size)."
    )


def test_paste_filter_option_wins_over_the_config_file_and_is_named(tmp_path, calls):
    cfg = tmp_path / "myservice.conf"
    cfg.write_text("[sizelimit]\nmax_request_body_size = 10\n")
    ini = "/etc/x/api-paste.ini"
    global_conf = {"here": str(tmp_path), "__file__": ini, "config_file": str(cfg)}
    limited = build(sizelimit, tracking_app(calls), global_conf, max_request_body_size="20")
    assert _detail(TestApp(limited), 21) == (
        "The request body is larger than the limit of 20 bytes "
        "(api-paste.ini [filter:sizelimit] max_request_body_size)."
    )
