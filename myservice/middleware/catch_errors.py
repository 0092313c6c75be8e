"""``catch_errors``: the fault barrier.

Any exception raised by the application below -- when it is called, or while its body is
produced up to the first non-empty chunk (before the server can have sent the headers) --
becomes a ``500`` in the error envelope whose detail says nothing internal; the traceback is
logged at ERROR with the request id.  A :class:`myservice.wsgi.faults.APIError` that reaches
the barrier is an expected error: it is rendered with its own status and logged at DEBUG.

An exception after the first chunk cannot become a response any more (the status line is
on the wire); it is logged at ERROR and re-raised so the server drops the connection.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from myservice.middleware._common import no_options
from myservice.wsgi import faults

LOG = logging.getLogger(__name__)

WSGIApp = Callable[[dict, Callable[..., Any]], Iterable[bytes]]

INTERNAL_ERROR_DETAIL = (
    "An unexpected error occurred while processing the request. "
    "Quote the request id when reporting it."
)


def _close(result: Any) -> None:
    close = getattr(result, "close", None)
    if close is not None:
        try:
            close()
        except Exception:
            LOG.exception("closing the response body failed")


class _Rest:
    """The body after its first chunk(s): re-raises late errors after logging them."""

    __slots__ = ("_head", "_iterator", "_result", "_environ")

    def __init__(self, head: list[bytes], iterator: Iterator[bytes], result: Any, environ: dict):
        self._head = head
        self._iterator = iterator
        self._result = result
        self._environ = environ

    def __iter__(self) -> Iterator[bytes]:
        yield from self._head
        try:
            yield from self._iterator
        except Exception:
            LOG.exception(
                "Error while sending the response body of request %s; the response is cut short",
                self._environ.get(faults.REQUEST_ID_KEY, "-"),
            )
            raise

    def close(self) -> None:
        _close(self._result)


class CatchErrors:
    """The filter; see the module docstring."""

    __slots__ = ("app",)

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            result = self.app(environ, start_response)
        except Exception as exc:
            return self._error(environ, start_response, exc)
        if type(result) is list or type(result) is tuple:
            return result  # fully produced already: nothing left that can raise
        # A lazy body (generator...): produce it up to its first non-empty chunk, so that an
        # error there can still become a proper response.
        head: list[bytes] = []
        try:
            iterator = iter(result)
            for chunk in iterator:
                head.append(chunk)
                if chunk:
                    break
            else:
                return _Rest(head, iter(()), result, environ)
        except Exception as exc:
            _close(result)
            return self._error(environ, start_response, exc)
        return _Rest(head, iterator, result, environ)

    @staticmethod
    def _error(environ: dict, start_response: Callable[..., Any], exc: Exception) -> list[bytes]:
        rid = environ.get(faults.REQUEST_ID_KEY, "-")
        # start_response may have been called by the application already: pass exc_info so
        # the server replaces those headers (PEP 3333).
        exc_info = sys.exc_info()
        if isinstance(exc, faults.APIError):
            LOG.debug("Request %s failed with %s: %s", rid, exc.status, exc.detail, exc_info=exc)
            return faults.respond(
                environ,
                start_response,
                exc.status,
                exc.detail,
                code=exc.code,
                title=exc.title,
                headers=exc.headers,
                exc_info=exc_info,
            )
        LOG.error(
            "Unexpected error serving request %s (%s %r)",
            rid,
            environ.get("REQUEST_METHOD", "-"),
            environ.get("PATH_INFO", ""),
            exc_info=exc,
        )
        return faults.respond(
            environ, start_response, 500, INTERNAL_ERROR_DETAIL, exc_info=exc_info
        )


def filter_factory(global_conf: Mapping[str, Any], **local_conf: str) -> Callable[[WSGIApp], Any]:
    """Paste filter factory; the filter takes no options."""
    no_options(global_conf, local_conf, "catch_errors")
    return CatchErrors
