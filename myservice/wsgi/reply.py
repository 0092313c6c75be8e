"""What a controller returns: :class:`Reply`, a status, an optional JSON body and headers.

Controllers never touch ``start_response``; the router sends the reply.  Error answers are
not replies: controllers raise :class:`myservice.wsgi.faults.APIError` (or let a storage
exception through) and the router renders the envelope.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from myservice.wsgi.faults import StartResponse, status_line

JSON = "application/json"

_STATUS_LINES = {code: status_line(code) for code in (200, 201, 202, 204)}


#: one encoder for every reply (``json.dumps`` with options builds a new one per call)
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_CONTENT_TYPE = ("Content-Type", JSON)


def dump_json(body: Any) -> bytes:
    """``body`` as compact UTF-8 JSON."""
    return _ENCODE(body).encode("utf-8")


class Reply:
    """A successful answer: ``status``, ``body`` (JSON-serialisable, ``None`` for no body)
    and extra ``headers``.  ``Content-Type: application/json`` and ``Content-Length`` are
    added for a body; a 204 carries neither.  For ``HEAD`` the body is left out but the
    headers are those of the ``GET``."""

    __slots__ = ("status", "body", "headers")

    def __init__(
        self, status: int = 200, body: Any = None, headers: Iterable[tuple[str, str]] = ()
    ) -> None:
        self.status = status
        self.body = body
        self.headers = list(headers)

    def send(self, environ: dict, start_response: StartResponse) -> list[bytes]:
        """Start the WSGI response and return its body iterable."""
        line = _STATUS_LINES.get(self.status) or status_line(self.status)
        if self.body is None:
            start_response(line, self.headers)
            return []
        data = dump_json(self.body)
        headers = [_CONTENT_TYPE, ("Content-Length", str(len(data)))]
        if self.headers:
            headers.extend(self.headers)
        start_response(line, headers)
        if environ["REQUEST_METHOD"] == "HEAD":
            return []
        return [data]
