"""Fixtures of the reliability tests: the application built from the shipped
``etc/api-paste.ini`` over a tmp config (``built``, ``client`` and ``token`` of
``tests/serving/test_functional.py``: SQLite under ``tmp_path``, an admin token created before
start-up), plus helpers to find the ``/v1`` router in it and to count users.
"""

from __future__ import annotations

from typing import Any

import webob

from myservice.wsgi.faults import REQUEST_ID_HEADER
from myservice.wsgi.router import Router
from tests.serving.test_functional import built, client, token  # noqa: F401  (fixtures)


def wsgi_call(app: Any, request: webob.Request) -> webob.Response:
    """Call ``app`` with ``request`` as a WSGI server does: consume the body, then call the
    result's ``close()`` (PEP 3333; the request_id filter resets the log context there)."""
    status, headers, app_iter = request.call_application(app)
    try:
        body = b"".join(app_iter)
    finally:
        close = getattr(app_iter, "close", None)
        if close is not None:
            close()
    return webob.Response(status=status, headerlist=headers, body=body)


def find_router(app: Any) -> Router:
    """The :class:`Router` inside the urlmap's ``/v1`` pipeline (following ``.app``)."""
    for prefix, sub in app._prefixes:
        if prefix == "/v1":
            node = sub
            while not isinstance(node, Router):
                node = node.app
            return node
    raise AssertionError("no /v1 application in the urlmap")


def user_count(app: Any) -> int:
    """How many users the storage driver holds (read directly, not through the API)."""
    storage = app.context.storage
    return len(storage.list_users(1_000_000))


def assert_envelope(status: int, headers: Any, body: bytes) -> dict:
    """The single error of an envelope answer, after checking it: JSON, ``status`` equal to
    the HTTP status, ``request_id`` equal to the ``X-OpenStack-Request-ID`` header."""
    import json

    error = json.loads(body)["errors"][0]
    assert error["status"] == status, body
    assert error["code"].startswith("myservice."), body
    lowered = {k.lower(): v for k, v in dict(headers).items()}
    assert error["request_id"] == lowered[REQUEST_ID_HEADER.lower()], (body, headers)
    return error
