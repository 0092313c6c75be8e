"""The one error formatter of the service.

Every error response, whichever layer produces it (router 404/405, filters 401/403/413,
controllers 400/404/409/415, the fault barrier's 500, storage 503), is the JSON envelope::

    {"errors": [{"status": 404, "code": "myservice.not_found", "title": "Not Found",
                 "detail": "...", "request_id": "req-..."}]}

``status`` equals the HTTP status and ``request_id`` equals the ``X-OpenStack-Request-ID``
response header (taken from ``environ["openstack.request_id"]``).  Rendering is plain WSGI,
no WebOb objects, because filters call it on their fast path.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from http import HTTPStatus
from urllib.parse import quote

REQUEST_ID_KEY = "openstack.request_id"
GLOBAL_REQUEST_ID_KEY = "openstack.global_request_id"
REQUEST_ID_HEADER = "X-OpenStack-Request-ID"

#: status -> slug used in ``code`` (``myservice.<slug>``) when the caller gives none.
_SLUGS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    411: "length_required",
    413: "request_too_large",
    415: "unsupported_media_type",
    500: "internal_error",
    503: "service_unavailable",
}

StartResponse = Callable[..., object]

#: what :func:`shown_path` leaves unescaped besides letters and digits
_PATH_SAFE = "/-._~!$&'()*+,;=:@?"


def request_path(environ: dict) -> str:
    """``SCRIPT_NAME + PATH_INFO`` of a request (``/`` for an empty path), as
    :func:`shown_path` shows it: the path a message about the request names."""
    return shown_path(environ.get("SCRIPT_NAME", "") + (environ.get("PATH_INFO") or "/"))


def shown_path(raw: str) -> str:
    """A WSGI path as a person should read it in a message or a log line.

    ``PATH_INFO`` holds the request's bytes as latin-1 characters (PEP 3333): a UTF-8 path is
    shown as its text (``/v1/users/café``, not ``cafÃ©``), anything else (bytes that are not
    UTF-8, control characters) percent-escaped (``/v1/%FF``).  A printable ASCII path, the
    usual case, is returned as it is."""
    if raw.isascii() and raw.isprintable():
        return raw
    try:
        data = raw.encode("latin-1")
    except UnicodeEncodeError:  # already text (not from a server): show its UTF-8
        data = raw.encode("utf-8", "surrogateescape")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if text and text.isprintable():
        return text
    return quote(data, safe=_PATH_SAFE)


class APIError(Exception):
    """An error meant for the client; raised anywhere below the router or a filter.

    ``status`` is the HTTP status, ``detail`` a sentence for a human (never internal
    details), ``code`` the slug after ``myservice.`` (defaults from the status), ``headers``
    extra response headers (``Allow``, ``WWW-Authenticate``...).
    """

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        code: str | None = None,
        title: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.code = code
        self.title = title
        self.headers = list(headers)


def reason(status: int) -> str:
    """The standard reason phrase of ``status`` ("Not Found")."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def status_line(status: int) -> str:
    return f"{status} {reason(status)}"


def envelope(
    status: int,
    detail: str,
    request_id: str | None,
    *,
    code: str | None = None,
    title: str | None = None,
) -> dict:
    """The error envelope as a dict (for tests and for JSON rendering)."""
    slug = code or _SLUGS.get(status, "error")
    return {
        "errors": [
            {
                "status": status,
                "code": slug if slug.startswith("myservice.") else f"myservice.{slug}",
                "title": title or reason(status),
                "detail": detail,
                "request_id": request_id,
            }
        ]
    }


def respond(
    environ: dict,
    start_response: StartResponse,
    status: int,
    detail: str,
    *,
    code: str | None = None,
    title: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    exc_info=None,
) -> list[bytes]:
    """Start an error response in the envelope and return its body (a WSGI result).

    For ``HEAD`` requests the body is empty but ``Content-Length`` is that of the body a
    ``GET`` would have had.
    """
    rid = environ.get(REQUEST_ID_KEY)
    body = json.dumps(
        envelope(status, detail, rid, code=code, title=title), ensure_ascii=False
    ).encode("utf-8")
    out = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
    ]
    out.extend(headers)
    if exc_info is not None:
        start_response(status_line(status), out, exc_info)
    else:
        start_response(status_line(status), out)
    if environ.get("REQUEST_METHOD") == "HEAD":
        return [b""]
    return [body]


def respond_error(environ: dict, start_response: StartResponse, error: APIError) -> list[bytes]:
    """:func:`respond` for an :class:`APIError`."""
    return respond(
        environ,
        start_response,
        error.status,
        error.detail,
        code=error.code,
        title=error.title,
        headers=error.headers,
    )
