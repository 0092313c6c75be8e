"""``myservice.api.common.read_json`` reads the body itself for the common case (a
``Content-Length``): the body stays readable afterwards, a short body is a disconnection, and
the JSON errors read as ``json.loads`` words them."""

from __future__ import annotations

import io

import pytest
import webob
from webob.request import DisconnectionError

from myservice.api import common, schemas
from myservice.wsgi.faults import APIError

BODY = b'{"user":{"name":"alice"}}'


def _request(data: bytes, length: int | None = None) -> webob.Request:
    environ = {
        "REQUEST_METHOD": "POST",
        "CONTENT_TYPE": "application/json",
        "wsgi.input": io.BytesIO(data),
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
    }
    environ["CONTENT_LENGTH"] = str(len(data) if length is None else length)
    return webob.Request(environ)


def _read(req: webob.Request):
    return common.read_json(req, schemas.user_create, schemas.user_create_fast)


def test_body_can_be_read_again_after_read_json():
    req = _request(BODY + b"trailing bytes beyond Content-Length", length=len(BODY))
    assert _read(req) == {"user": {"name": "alice"}}
    assert req.body == BODY
    assert req.body_file.read() == BODY


def test_a_body_shorter_than_content_length_is_a_disconnection_as_with_webob():
    with pytest.raises(DisconnectionError):
        _ = _request(BODY, length=len(BODY) + 5).body
    with pytest.raises(DisconnectionError, match="5 more bytes"):
        _read(_request(BODY, length=len(BODY) + 5))


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (
            b"\xef\xbb\xbf" + BODY,
            "The request body is not valid JSON: Unexpected UTF-8 BOM (decode using utf-8-sig) "
            "(line 1, column 1).",
        ),
        (b'{"user": NaN}', "The request body is not valid JSON: NaN is not valid JSON."),
        (b"[" * 33 + b"]" * 33, "The request body is nested more than 32 levels deep."),
    ],
)
def test_json_errors(data, detail):
    with pytest.raises(APIError) as info:
        _read(_request(data))
    assert info.value.status == 400
    assert info.value.detail == detail


def test_depth_of_exactly_the_limit_passes_parsing():
    # 32 levels is allowed (then the schema refuses the list): the 400 is the schema's
    with pytest.raises(APIError) as info:
        _read(_request(b"[" * 32 + b"]" * 32))
    assert "nested" not in str(info.value.detail)
