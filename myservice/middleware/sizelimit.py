"""``sizelimit``: refuse request bodies larger than ``[sizelimit] max_request_body_size``.

* ``Content-Length`` over the limit: ``413`` at once, the application is not called.
* ``Content-Length`` that is not a non-negative decimal integer: ``400`` (leading zeros are
  dropped before the application sees it).
* No ``Content-Length`` but ``Transfer-Encoding: chunked`` (gunicorn passes such bodies
  through; waitress de-chunks them itself and sets ``CONTENT_LENGTH``): at most limit+1 bytes
  are read first; over the limit: ``413``; otherwise the application gets the body as a
  ``BytesIO`` with ``CONTENT_LENGTH`` set and ``HTTP_TRANSFER_ENCODING`` removed.

The 413 detail states the limit in bytes and where it was set: the ``[filter:sizelimit]``
section of ``api-paste.ini``, ``[sizelimit]`` of the configuration file, or the default (files
by name only, without their directory: the detail is sent to clients).
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from myservice.middleware._common import service_config
from myservice.wsgi import faults

WSGIApp = Callable[[dict, Callable[..., Any]], Iterable[bytes]]

SECTION = "sizelimit"
_READ_SIZE = 65536


class RequestBodySizeLimiter:
    """The filter; see the module docstring.  ``limit`` is in bytes."""

    __slots__ = ("app", "limit", "_too_large")

    def __init__(
        self, app: WSGIApp, limit: int, source: str = "[sizelimit] max_request_body_size"
    ) -> None:
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        self.app = app
        self.limit = limit
        # built once: the check per request stays a comparison
        self._too_large = f"The request body is larger than the limit of {limit} bytes ({source})."

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = environ.get("CONTENT_LENGTH")
        if length:
            if not (length.isdigit() and length.isascii()):
                return faults.respond(
                    environ,
                    start_response,
                    400,
                    "The Content-Length header must be a non-negative integer.",
                )
            digits = length.lstrip("0")  # int() refuses over 4300 digits: compare lengths
            if len(digits) > 18 or int(digits or "0") > self.limit:
                return faults.respond(environ, start_response, 413, self._too_large)
            if len(digits) != len(length):  # leading zeros: hand on the canonical form
                environ["CONTENT_LENGTH"] = digits or "0"
            return self.app(environ, start_response)
        encoding = environ.get("HTTP_TRANSFER_ENCODING")
        if encoding is not None and "chunked" in encoding.lower():
            body = self._read(environ["wsgi.input"])
            if body is None:
                return faults.respond(environ, start_response, 413, self._too_large)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            del environ["HTTP_TRANSFER_ENCODING"]
        return self.app(environ, start_response)

    def _read(self, stream: Any) -> bytes | None:
        """The whole body, or ``None`` if it has more than ``limit`` bytes (then at most
        limit+1 bytes have been read)."""
        wanted = self.limit + 1
        parts: list[bytes] = []
        size = 0
        while size < wanted:
            chunk = stream.read(min(_READ_SIZE, wanted - size))
            if not chunk:
                break
            parts.append(chunk)
            size += len(chunk)
        if size > self.limit:
            return None
        return b"".join(parts)


def limit_source(origin: str) -> str:
    """Where the limit was set, for the 413 detail, from ``Config.source`` (``'FILE'``,
    ``'FILE [filter:sizelimit]'`` or ``'default'``).  Files are named without their directory:
    the detail goes to clients."""
    if origin == "default":
        return "the default of [sizelimit] max_request_body_size"
    paste = f" [filter:{SECTION}]"  # the filter's own section of the paste ini file
    if origin.endswith(paste):
        return f"{os.path.basename(origin[: -len(paste)])}{paste} max_request_body_size"
    return f"{os.path.basename(origin)} [{SECTION}] max_request_body_size"


def filter_factory(global_conf: Mapping[str, Any], **local_conf: str) -> Callable[[WSGIApp], Any]:
    """Paste filter factory; option ``max_request_body_size`` (bytes, >= 0)."""
    cfg = service_config(global_conf, local_conf, SECTION)
    limit = cfg.sizelimit.max_request_body_size
    source = limit_source(cfg.source(SECTION, "max_request_body_size"))

    def _filter(app: WSGIApp) -> RequestBodySizeLimiter:
        return RequestBodySizeLimiter(app, limit, source)

    return _filter
