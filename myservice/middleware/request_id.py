"""``request_id``: give every request a fresh ``req-<uuid4>`` id.

* ``environ['openstack.request_id']`` is set to a new id, and every response carries it in
  ``X-OpenStack-Request-ID`` (error responses also carry it in their envelope).
* An inbound ``X-OpenStack-Request-ID`` of exactly the form ``req-<uuid4>`` (lowercase hex,
  with dashes) is kept as ``environ['openstack.global_request_id']``; it is never echoed.
  Anything else is ignored.
* The context variables :data:`myservice.log.request_id` and
  :data:`myservice.log.global_request_id` hold both ids while the application runs, and are
  reset afterwards, also when it raises.  A body that is still to be produced (any iterable
  but a ``list`` or ``tuple``) keeps them until it is closed, so log lines written while it is
  produced carry them too; a ``list``/``tuple`` body is complete when the application returns,
  so they are reset then and the list is passed on as it is (no wrapper for the server to
  iterate and close).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from myservice import log
from myservice.middleware._common import close_result, no_options
from myservice.wsgi.faults import GLOBAL_REQUEST_ID_KEY, REQUEST_ID_HEADER, REQUEST_ID_KEY

WSGIApp = Callable[[dict, Callable[..., Any]], Iterable[bytes]]

_VALID_ID = re.compile(
    r"req-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
).fullmatch


#: high hex digit of byte 8 -> the same digit with the RFC 4122 variant bits (10xx) set
_VARIANT = {d: "89ab"[int(d, 16) & 3] for d in "0123456789abcdef"}


def new_request_id(_urandom: Callable[[int], bytes] = os.urandom) -> str:
    """A fresh ``req-<uuid4>``: random bits from ``os.urandom`` formatted by hand, which is
    about 3 times faster than ``str(uuid.uuid4())`` and yields the same form (version 4,
    RFC 4122 variant): the version digit is written as ``4`` and the variant digit mapped,
    on the hex text, with no intermediate ``bytearray``."""
    h = _urandom(16).hex()
    return f"req-{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


def is_request_id(value: str) -> bool:
    """Whether ``value`` is exactly ``req-<uuid4>`` in lowercase hex with dashes."""
    return _VALID_ID(value) is not None


class _Body:
    """The application's response iterable; resets the log context when closed."""

    __slots__ = ("_result", "_tokens")

    def __init__(self, result: Iterable[bytes], tokens: tuple) -> None:
        self._result = result
        self._tokens = tokens

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._result)

    def close(self) -> None:
        try:
            close_result(self._result)
        finally:
            _reset(self._tokens)


def _reset(tokens: tuple) -> None:
    rid_token, grid_token = tokens
    try:
        log.request_id.reset(rid_token)
        if grid_token is not None:
            log.global_request_id.reset(grid_token)
    except ValueError:  # closed from another context than the one that set them
        log.request_id.set("-")
        log.global_request_id.set("-")


class RequestId:
    """The filter; see the module docstring."""

    __slots__ = ("app",)

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        rid = new_request_id()
        environ[REQUEST_ID_KEY] = rid
        grid_token = None
        inbound = environ.get("HTTP_X_OPENSTACK_REQUEST_ID")
        if inbound is not None and _VALID_ID(inbound) is not None:
            environ[GLOBAL_REQUEST_ID_KEY] = inbound
            grid_token = log.global_request_id.set(inbound)
        tokens = (log.request_id.set(rid), grid_token)
        header = (REQUEST_ID_HEADER, rid)

        def _start_response(status, headers, exc_info=None):
            headers.append(header)
            return start_response(status, headers, exc_info)

        try:
            result = self.app(environ, _start_response)
        except BaseException:
            _reset(tokens)
            raise
        kind = type(result)
        if kind is list or kind is tuple:
            _reset(tokens)
            return result
        return _Body(result, tokens)


def filter_factory(global_conf: Mapping[str, Any], **local_conf: str) -> Callable[[WSGIApp], Any]:
    """Paste filter factory; the filter takes no options."""
    no_options(global_conf, local_conf, "request_id")
    return RequestId
