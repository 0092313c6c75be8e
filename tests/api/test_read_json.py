"""``myservice.api.common.read_json`` reads the body itself for the common case (a
``Content-Length``): the body stays readable afterwards, a short body is a disconnection, and
the JSON errors read as ``json.loads`` words them."""

from __future__ import annotations

import io
import sys

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


# -- integers beyond int()'s digit limit (sys.get_int_max_str_digits()) ------------------

LIMIT = sys.get_int_max_str_digits()
LONG = b"1" * (LIMIT + 1)


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (LONG, f"The request body is an integer with too many digits: {LIMIT + 1} digits"),
        (b"-" + LONG, f"The request body is an integer with too many digits: {LIMIT + 1} digits"),
        (
            b'{"user": {"name": ' + LONG + b"}}",
            f"The request body has an integer with too many digits at /user/name: {LIMIT + 1} "
            "digits",
        ),
        (
            b'[[1, 2], {"a": [' + b"2" * (LIMIT + 5) + b", " + LONG + b"]}, " + LONG + b"]",
            f"The request body has an integer with too many digits at /1/a/0: {LIMIT + 5} digits",
        ),
        (
            b'{"b": [1, {"c": ' + b"3" * (LIMIT + 3) + b'}], "a": ' + LONG + b"}",
            f"The request body has an integer with too many digits at /b/1/c: {LIMIT + 3} digits",
        ),
    ],
)
def test_an_integer_with_too_many_digits_is_named_by_its_pointer(data, detail):
    with pytest.raises(APIError) as info:
        _read(_request(data))
    assert info.value.status == 400
    assert info.value.detail == f"{detail}, at most {LIMIT} are accepted."


def test_an_integer_of_exactly_the_digit_limit_is_decoded():
    # decoded, then refused by the schema (a list is no object), not as too long
    with pytest.raises(APIError) as info:
        _read(_request(b"[" + b"9" * LIMIT + b"]"))
    assert info.value.detail.startswith("Invalid request body: ")


def test_other_value_errors_still_read_as_before_with_a_long_integer_elsewhere():
    with pytest.raises(APIError) as info:
        _read(_request(b'{"a": ' + LONG + b', "a": 1}'))
    assert info.value.detail == (
        "The request body is not valid JSON: the key 'a' appears twice in one object."
    )


# -- Content-Encoding and the 415 headers --------------------------------------------------


def _with(method: str, **environ: str) -> webob.Request:
    req = _request(BODY)
    req.environ["REQUEST_METHOD"] = method
    req.environ.update(environ)
    return req


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "x-custom", "identity,gzip"])
def test_an_encoded_body_is_415(method, encoding):
    with pytest.raises(APIError) as info:
        _read(_with(method, HTTP_CONTENT_ENCODING=encoding))
    assert info.value.status == 415
    assert info.value.detail == (
        f"Request bodies must not be encoded; got Content-Encoding {encoding!r} "
        "(only identity is accepted)."
    )
    assert info.value.headers == [("Accept-Encoding", "identity")]


@pytest.mark.parametrize("encoding", ["", "identity", "Identity", "identity, IDENTITY", " , "])
def test_no_encoding_is_read(encoding):
    assert _read(_with("POST", HTTP_CONTENT_ENCODING=encoding)) == {"user": {"name": "alice"}}


@pytest.mark.parametrize(
    ("method", "headers"),
    [
        ("POST", [("Accept-Post", "application/json")]),
        ("PATCH", [("Accept-Patch", "application/json")]),
        ("PUT", []),
    ],
)
@pytest.mark.parametrize(
    ("ctype", "detail"),
    [
        ("text/plain", "Request bodies must be application/json; got Content-Type 'text/plain'."),
        ("", "Request bodies must be application/json; got Content-Type none."),
        (
            "application/json; charset=latin-1",
            "JSON bodies must be UTF-8; got 'application/json; charset=latin-1'.",
        ),
    ],
)
def test_a_wrong_content_type_is_415_naming_what_the_method_accepts(method, headers, ctype, detail):
    with pytest.raises(APIError) as info:
        _read(_with(method, CONTENT_TYPE=ctype))
    assert info.value.status == 415
    assert info.value.detail == detail
    assert info.value.headers == headers
