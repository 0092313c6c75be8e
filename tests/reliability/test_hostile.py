"""Hostile inputs, one test each.

In-process ones go through the application built from the shipped ``etc/api-paste.ini`` (the
``built`` fixture: SQLite under ``tmp_path``, an admin token), with the raw WSGI environ under
the test's control (``webob.Request.blank``).  Those that only exist on the wire (a lying
``Content-Length``, chunked bodies, oversized headers, bytes that are not UTF-8 in the request
line) are sent over a raw socket to a served instance (``myservice-api``, waitress).

Every test checks: a 4xx in the error envelope (``request_id`` equal to the
``X-OpenStack-Request-ID`` header) -- or the server's own refusal for what never reaches the
application --, that the process keeps serving (a follow-up request works), and that nothing
was written (the user count is unchanged).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import webob
from paste.deploy import loadapp

from myservice.tokens import TokenStore
from tests.serving.helpers import BIN, ETC, copy_etc, create_token, free_port, serving

from .conftest import assert_envelope, user_count, wsgi_call

USER = {"user": {"name": "seed"}}


class Driver:
    """Sends raw requests to the in-process application; checks the follow-up rules."""

    def __init__(self, app, token: str) -> None:
        self.app = app
        self.token = token
        res = self.send("POST", "/v1/users", json.dumps(USER).encode())
        assert res.status_int == 201, res.body
        self.users = user_count(app)

    def send(self, method: str, path: str, body: bytes | None = None, **headers) -> webob.Response:
        req = webob.Request.blank("/", method=method)
        raw_path, _, query = path.partition("?")
        req.environ["PATH_INFO"] = raw_path
        req.environ["QUERY_STRING"] = query
        req.headers["X-Auth-Token"] = self.token
        if body is not None:
            req.body = body
            req.content_type = "application/json"
        for name, value in headers.items():
            req.headers[name.replace("_", "-")] = value
        return wsgi_call(self.app, req)

    def refused(self, res: webob.Response, *statuses: int) -> dict:
        """The answer is one of ``statuses`` in the envelope; the app still serves; nothing
        was written."""
        assert res.status_int in statuses, (res.status, res.body[:300])
        error = assert_envelope(res.status_int, res.headers, res.body)
        follow = self.send("GET", "/v1/users")
        assert follow.status_int == 200, follow.body
        assert user_count(self.app) == self.users
        return error


@pytest.fixture
def api(built) -> Driver:
    return Driver(built[0], built[2])


# -- encodings ----------------------------------------------------------------------------


def test_invalid_utf8_in_path(api):
    # PEP 3333: PATH_INFO holds the raw bytes decoded as latin-1; the router re-reads path
    # variables as UTF-8 and refuses bytes that are not, as it does for the query string
    for method, path in (
        ("GET", "/v1/users/\xff\xfe"),
        ("DELETE", "/v1/users/\xc3\x28"),
        ("GET", "/v1/users/x/metadata/\xff"),
    ):
        error = api.refused(api.send(method, path), 400)
        assert error["detail"] == "The request path is not valid UTF-8 once percent-decoded."


def test_invalid_utf8_in_query(api):
    error = api.refused(api.send("GET", "/v1/users?name=%ff%fe"), 400)
    assert "UTF-8" in error["detail"]


def test_invalid_utf8_in_body(api):
    error = api.refused(api.send("POST", "/v1/users", b'{"user": {"name": "\xff\xfe"}}'), 400)
    assert "UTF-8" in error["detail"]


# -- JSON ------------------------------------------------------------------------------------


def test_json_nested_100000_levels_unclosed(api):
    api.refused(api.send("POST", "/v1/users", b"[" * 100_000), 400)


def test_json_nested_100000_levels_with_a_large_enough_body_limit(tmp_path: Path):
    """Closed brackets are 200 KB: raise the body limit so the parser sees them all."""
    conf_file = tmp_path / "myservice.conf"
    conf_file.write_text(
        f"[DEFAULT]\nstate_path = {tmp_path / 'state'}\n\n[storage]\ndriver = sqlite\n\n"
        "[sizelimit]\nmax_request_body_size = 1048576\n",
        encoding="utf-8",
    )
    secret, _ = TokenStore(tmp_path / "state" / "tokens.json").create("u", "p", ["admin"])
    app = loadapp(f"config:{ETC / 'api-paste.ini'}", global_conf={"config_file": str(conf_file)})
    try:
        driver = Driver(app, secret)
        for doc in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000):
            error = driver.refused(driver.send("POST", "/v1/users", doc), 400)
            assert "nested" in error["detail"]
    finally:
        app.close()


@pytest.mark.parametrize(
    "body",
    [
        b'{"user": {"name": "a", "enabled": 1e400}}',
        b'{"user": {"name": 1' + b"0" * 5000 + b"}}",
        b'{"user": {"name": "a", "enabled": ' + b"9" * 400 + b"}}",
    ],
    ids=["float-overflow", "5000-digit-int", "400-digit-int"],
)
def test_numbers_too_large(api, body):
    api.refused(api.send("POST", "/v1/users", body), 400)


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity(api, constant):
    error = api.refused(
        api.send("POST", "/v1/users", b'{"user": {"name": "a", "enabled": ' + constant + b"}}"),
        400,
    )
    assert "not valid JSON" in error["detail"]


def test_duplicate_keys_are_refused(api):
    """Regression: the last of two keys used to win silently (a user named 'b' was made)."""
    error = api.refused(api.send("POST", "/v1/users", b'{"user": {"name": "a", "name": "b"}}'), 400)
    assert "'name' appears twice" in error["detail"]
    api.refused(
        api.send("POST", "/v1/users", b'{"user": {"name": "a"}, "user": {"name": "b"}}'), 400
    )


def test_null_bytes(api):
    api.refused(api.send("POST", "/v1/users", b'{"user": {"name": "a\\u0000b"}}'), 400)
    api.refused(
        api.send("POST", "/v1/users", b'{"user": {"name": "a", "description": "\\u0000"}}'), 400
    )
    api.refused(api.send("GET", "/v1/users/a\x00b"), 404)


def test_a_1mb_string_in_a_field(api):
    body = json.dumps({"user": {"name": "x" * 1_048_576}}).encode()
    error = api.refused(api.send("POST", "/v1/users", body), 413)
    assert "limit" in error["detail"]


def test_a_100kb_string_under_the_body_limit_is_a_400(api):
    body = json.dumps({"user": {"name": "x" * 100_000}}).encode()
    api.refused(api.send("POST", "/v1/users", body), 400)


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/v1/users"), ("PATCH", "/v1/users/no-such-user")]
)
def test_a_110kb_backtracking_email_is_refused_for_its_length(api, method, path):
    # "a@" + dots + "@" made the former email pattern backtrack quadratically (~69 s); no
    # pattern runs on a value over maxLength now (tests/api/test_schema_limits.py)
    user = {"name": "x", "email": "a@" + "." * 110_000 + "@"}
    error = api.refused(api.send(method, path, json.dumps({"user": user}).encode()), 400)
    assert error["detail"] == (
        "Invalid request body: /user/email: got 110003 characters; expected an email address "
        "like name@example.com (up to 255 characters) or null."
    )


def test_5000_unknown_fields_get_a_short_400(api):
    user = {"name": "x", **{f"x{i:04d}": 1 for i in range(5000)}}
    error = api.refused(api.send("POST", "/v1/users", json.dumps({"user": user}).encode()), 400)
    allowed = "(allowed: description, email, enabled, name)"
    shown = "; ".join(f"/user/x{i:04d}: unknown field {allowed}" for i in range(10))
    assert error["detail"] == f"Invalid request body: {shown}; ... and 4990 more."


# -- ids, query, headers, methods --------------------------------------------------------------


@pytest.mark.parametrize(
    "user_id",
    ["../../etc/passwd", "..", "%2e%2e", "' OR '1'='1", "1; DROP TABLE users; --", '"\\*%_'],
)
def test_ids_are_matched_verbatim(api, user_id):
    path_id = user_id.replace("/", "%2F")  # one segment, as a client would send it
    api.refused(api.send("GET", f"/v1/users/{path_id}"), 404)
    api.refused(api.send("DELETE", f"/v1/users/{path_id}"), 404)
    api.refused(
        api.send("PATCH", f"/v1/users/{path_id}", b'{"user": {"name": "z"}}'),
        404,
    )


def test_sql_metacharacters_in_a_filter_match_nothing(api):
    res = api.send("GET", "/v1/users?name=%27%20OR%20%271%27%3D%271")
    assert res.status_int == 200
    assert res.json["users"] == []
    res = api.send("GET", "/v1/users?name=%25")  # a LIKE wildcard is a plain character
    assert res.json["users"] == []


def test_a_64kb_query_string(api):
    api.refused(api.send("GET", "/v1/users?name=" + "a" * 65536), 400)
    api.refused(api.send("GET", "/v1/users?" + "&".join(["x=1"] * 16384)), 400)


def test_200_headers_in_process(api):
    headers = {f"X_Junk_{i}": "v" * 20 for i in range(200)}
    res = api.send("POST", "/v1/users", b'{"user": "not an object"}', **headers)
    api.refused(res, 400)


def test_a_64kb_header_value_in_process(api):
    api.refused(api.send("POST", "/v1/users", b"{}", X_Big="v" * 65536), 400)


@pytest.mark.parametrize("method", ["FOO", "PROPFIND", "TRACE", "CONNECT", "BREW"])
def test_unknown_methods(api, method):
    res = api.send(method, "/v1/users")
    api.refused(res, 405, 501)
    assert "GET" in res.headers.get("Allow", "")


@pytest.mark.parametrize("accept", ["text/html", "application/xml", "image/png;q=1, */*;q=0"])
def test_accept_types_the_api_cannot_produce(api, accept):
    api.refused(api.send("POST", "/v1/users", b'{"user": {"name": "n"}}', Accept=accept), 406)
    api.refused(api.send("GET", "/v1/users", Accept=accept), 406)


# -- over the socket, against a served instance --------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[int, str, Path]]:
    site = copy_etc(tmp_path_factory.mktemp("hostile") / "etc")
    token = create_token(site / "myservice.conf", "admin")
    port = free_port()
    command = [str(BIN / "myservice-api"), "--port", str(port), "api-paste.ini"]
    with serving(command, site, port) as server:
        yield server.port, token, site


def _raw(port: int, data: bytes, *, half_close: bool = False) -> bytes:
    """Send ``data`` on a new connection and read until the server closes it (or 10 s of
    silence: a server waiting for more body bytes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
    return b"".join(chunks)


def _status(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1])


def _split(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    length = {k.lower(): v for k, v in headers.items()}.get("content-length")
    if length is not None:  # the first response only
        body = body[: int(length)]
    return int(lines[0].split(" ")[1]), headers, body


def _count(port: int, token: str) -> int:
    raw = _raw(
        port,
        f"GET /v1/users?limit=1000 HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {token}\r\n"
        "Connection: close\r\n\r\n".encode(),
    )
    status, _, body = _split(raw)
    assert status == 200, raw[:300]
    return len(json.loads(body)["users"])


def _post(token: str, body: bytes, length: int | None, extra: str = "") -> bytes:
    head = f"POST /v1/users HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {token}\r\n"
    head += "Content-Type: application/json\r\nConnection: close\r\n" + extra
    if length is not None:
        head += f"Content-Length: {length}\r\n"
    return head.encode() + b"\r\n" + body


@pytest.fixture
def wire(served):
    port, token, _ = served
    before = _count(port, token)
    yield port, token
    assert _count(port, token) == before  # nothing written, and still serving


def test_wire_content_length_shorter_than_the_body(wire):
    port, token = wire
    body = b'{"user": {"name": "short-cl"}}'
    raw = _raw(port, _post(token, body, 5))
    status, headers, payload = _split(raw)
    assert status == 400
    assert_envelope(400, headers, payload)


def test_wire_content_length_longer_than_the_body(wire):
    port, token = wire
    body = b'{"user": {"name": "long-cl"}}'
    raw = _raw(port, _post(token, body, len(body) + 50), half_close=True)
    # the server never got the whole body: no answer, or a refusal; never a 2xx
    assert not raw or _status(raw) >= 400, raw[:300]


def test_wire_chunked_body_over_the_size_limit(wire):
    port, token = wire
    chunk = b"x" * 65536
    chunks = b"".join(b"%x\r\n" % len(chunk) + chunk + b"\r\n" for _ in range(4)) + b"0\r\n\r\n"
    raw = _raw(port, _post(token, chunks, None, "Transfer-Encoding: chunked\r\n"))
    status, headers, payload = _split(raw)
    assert status == 413, raw[:300]
    assert_envelope(413, headers, payload)


def test_wire_chunked_body_over_the_server_limit(wire):
    """Over waitress's own max_request_body_size (1 MiB): the server's refusal."""
    port, token = wire
    chunk = b"x" * 65536
    chunks = b"".join(b"%x\r\n" % len(chunk) + chunk + b"\r\n" for _ in range(20)) + b"0\r\n\r\n"
    raw = _raw(port, _post(token, chunks, None, "Transfer-Encoding: chunked\r\n"))
    assert _status(raw) == 413, raw[:300]


def test_wire_200_headers(wire):
    port, token = wire
    extra = "".join(f"X-Junk-{i}: {'v' * 20}\r\n" for i in range(200))
    raw = _raw(port, _post(token, b'{"user": 1}', 11, extra))
    status, headers, payload = _split(raw)
    assert status == 400
    assert_envelope(400, headers, payload)


def test_wire_a_64kb_header(wire):
    port, token = wire
    raw = _raw(port, _post(token, b'{"user": 1}', 11, f"X-Big: {'v' * 65536}\r\n"))
    assert _status(raw) in (400, 431), raw[:300]  # waitress: max_request_header_size


def test_wire_invalid_utf8_in_the_request_line(wire):
    port, token = wire
    raw = _raw(
        port,
        b"GET /v1/users/\xff\xfe HTTP/1.1\r\nHost: x\r\nX-Auth-Token: "
        + token.encode()
        + b"\r\nConnection: close\r\n\r\n",
    )
    status, headers, payload = _split(raw)
    assert status in (400, 404), raw[:300]
    if status == 404:
        assert_envelope(404, headers, payload)


def test_wire_unknown_method(wire):
    port, token = wire
    raw = _raw(
        port,
        f"BREW /v1/users HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {token}\r\n"
        "Connection: close\r\n\r\n".encode(),
    )
    status, headers, payload = _split(raw)
    assert status in (405, 501), raw[:300]
    assert_envelope(status, headers, payload)
