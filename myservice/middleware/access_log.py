"""``access_log``: one INFO line per request on the logger ``myservice.access``.

The line is written once the response body is complete, so the duration covers producing the
body too::

    req-1f0e... 192.0.2.10 "GET /v1/users?limit=5" status 200 len 512 time 3.2 ms

Fields: request id, remote address, method, path with query string, status code, response
bytes, duration in milliseconds.  No header is ever logged (so neither is a token); control
characters in the path are escaped.  If the application raises, the line shows status ``500``
and the exception propagates.  Takes no options; to silence it, set the level of the
``myservice.access`` logger above INFO (the filter then costs one level check).

When the line is written:

* the application returned a ``list`` or ``tuple`` (every response of the ``/v1`` API): the
  body is already produced, so the bytes are counted and the line is written at once, before
  the server sends it; the response is passed on unwrapped;
* any other iterable (a generator, a file wrapper...): the body is wrapped, counted as the
  server iterates it, and the line is written when the server closes it (after ``close`` of the
  application's iterable).

Either way the line is written inside the request, so ``%(request_id)s`` of the formatter
shows this request's id.  The record goes through ``Logger.handle``: the logger's level,
``disabled`` flag and filters, and every handler and formatter of the logging configuration
(the ``[logger_*]``/``[handler_*]``/``[formatter_*]`` sections of the ini) apply as for
``LOG.info``.  Per request the filter checks the level once, reads one ``perf_counter_ns``,
and builds the message arguments only when the line is written; ``Logger.findCaller``'s stack
walk is skipped (the record names this module's ``_log`` as its origin).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from time import perf_counter_ns
from typing import Any

from myservice.middleware._common import close_result, no_options
from myservice.wsgi.faults import REQUEST_ID_KEY

LOG = logging.getLogger("myservice.access")

WSGIApp = Callable[[dict, Callable[..., Any]], Iterable[bytes]]

_INFO = logging.INFO
_FORMAT = '%s %s "%s %s" status %s len %d time %.1f ms'


def _log(environ: dict, status: str | None, size: int, started: int) -> None:
    """Write the line (``started``: the request's ``perf_counter_ns``)."""
    elapsed = (perf_counter_ns() - started) / 1e6
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    query = environ.get("QUERY_STRING")
    if query:
        path = f"{path}?{query}"
    if not path.isprintable():
        path = path.encode("unicode_escape").decode("ascii")
    args = (
        environ.get(REQUEST_ID_KEY, "-"),
        environ.get("REMOTE_ADDR", "-"),
        environ.get("REQUEST_METHOD", "-"),
        path,
        status[:3] if status else "-",
        size,
        elapsed,
    )
    # LOG.info() minus Logger.findCaller's stack walk: the caller is always this function,
    # so the record names it directly.  handle() applies the logger's disabled flag, filters
    # and handlers exactly as LOG.info() would.
    LOG.handle(LOG.makeRecord(LOG.name, _INFO, __file__, _LINE, _FORMAT, args, None, "_log"))


_LINE = _log.__code__.co_firstlineno


class _Request:
    """One request's state: the status seen by ``start_response`` and, for a lazy body, the
    wrapper the server iterates and closes (the line is written at ``close``)."""

    __slots__ = ("_environ", "_start_response", "_started", "status", "_result", "_size", "_done")

    def __init__(self, environ: dict, start_response: Callable[..., Any], started: int) -> None:
        self._environ = environ
        self._start_response = start_response
        self._started = started
        self.status: str | None = None

    def start_response(self, status: str, headers: list, exc_info: Any = None) -> Any:
        self.status = status
        return self._start_response(status, headers, exc_info)

    def wrap(self, result: Iterable[bytes]) -> _Request:
        self._result = result
        self._size = 0
        self._done = False
        return self

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._result:
            self._size += len(chunk)
            yield chunk

    def close(self) -> None:
        try:
            close_result(self._result)
        finally:
            if not self._done:
                self._done = True
                _log(self._environ, self.status, self._size, self._started)


class AccessLog:
    """The filter; see the module docstring."""

    __slots__ = ("app",)

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not LOG.isEnabledFor(_INFO):
            return self.app(environ, start_response)
        started = perf_counter_ns()
        request = _Request(environ, start_response, started)
        try:
            result = self.app(environ, request.start_response)
        except BaseException:
            _log(environ, "500", 0, started)
            raise
        kind = type(result)
        if kind is list or kind is tuple:
            size = 0
            for chunk in result:
                size += len(chunk)
            _log(environ, request.status, size, started)
            return result
        return request.wrap(result)


def filter_factory(global_conf: Mapping[str, Any], **local_conf: str) -> Callable[[WSGIApp], Any]:
    """Paste filter factory; the filter takes no options."""
    no_options(global_conf, local_conf, "access_log")
    return AccessLog
