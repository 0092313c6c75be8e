"""Helpers for the filter tests: a tiny raw WSGI app, paste-like construction, envelopes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from myservice import log

#: environ keys the echo app reports
ECHO_KEYS = (
    "openstack.request_id",
    "openstack.global_request_id",
    "wsgi.url_scheme",
    "HTTP_HOST",
    "SERVER_NAME",
    "SERVER_PORT",
    "REMOTE_ADDR",
    "SCRIPT_NAME",
    "PATH_INFO",
    "CONTENT_LENGTH",
    "HTTP_TRANSFER_ENCODING",
    "HTTP_X_IDENTITY_STATUS",
    "HTTP_X_USER_ID",
    "HTTP_X_PROJECT_ID",
    "HTTP_X_ROLES",
    "HTTP_X_USER_NAME",
    "HTTP_X_SERVICE_ROLES",
    "HTTP_X_SERVICE_TOKEN",
)


def echo_app(environ: dict, start_response: Callable) -> list[bytes]:
    """Answers 200 with a JSON object of ECHO_KEYS, the body it read and the log context."""
    length = environ.get("CONTENT_LENGTH")
    body = environ["wsgi.input"].read(int(length)) if length else b""
    data = {k: environ.get(k) for k in ECHO_KEYS}
    data["body"] = body.decode("latin-1")
    data["log_request_id"] = log.request_id.get()
    data["log_global_request_id"] = log.global_request_id.get()
    out = json.dumps(data).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(out)))]
    )
    return [out]


def build(module, app, global_conf: dict, **local_conf: str):
    """``module.filter_factory(global_conf, **local_conf)(app)`` as Paste Deploy does."""
    return module.filter_factory(global_conf, **local_conf)(app)


def assert_envelope(resp, status: int, request_id: str | None = None) -> dict:
    """The error of ``resp``'s envelope, after checking its shape and request id."""
    assert resp.status_int == status
    assert resp.content_type == "application/json"
    errors = resp.json["errors"]
    assert len(errors) == 1
    error = errors[0]
    assert error["status"] == status
    assert error["code"].startswith("myservice.")
    if request_id is not None:
        assert error["request_id"] == request_id
    return error


def wait_for(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    """Poll ``predicate`` every 5 ms until it is true; fail after ``timeout`` seconds (for what
    a background thread does, e.g. the access log's queue)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)
