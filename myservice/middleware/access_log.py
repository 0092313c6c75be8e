"""``access_log``: one INFO line per request on the logger ``myservice.access``.

The line is written when the response body has been sent (when the server closes the
response iterable), so the duration covers producing the body too::

    req-1f0e... 192.0.2.10 "GET /v1/users?limit=5" status 200 len 512 time 3.2 ms

Fields: request id, remote address, method, path with query string, status code, response
bytes, duration in milliseconds.  No header is ever logged (so neither is a token); control
characters in the path are escaped.  If the application raises, the line shows status ``500``
and the exception propagates.  Takes no options; to silence it, set the level of the
``myservice.access`` logger above INFO (the filter then costs nearly nothing).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from myservice.middleware._common import close_result, no_options
from myservice.wsgi.faults import REQUEST_ID_KEY

LOG = logging.getLogger("myservice.access")

WSGIApp = Callable[[dict, Callable[..., Any]], Iterable[bytes]]

_FORMAT = '%s %s "%s %s" status %s len %d time %.1f ms'


def _path(environ: dict) -> str:
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    query = environ.get("QUERY_STRING")
    if query:
        path = f"{path}?{query}"
    if not path.isprintable():
        path = path.encode("unicode_escape").decode("ascii")
    return path


def _log(environ: dict, status: str | None, size: int, started: float) -> None:
    # LOG.info() minus Logger.findCaller's stack walk (a fifth of the cost of a line): the
    # caller is always this function, so the record names it directly.  handle() applies the
    # logger's disabled flag, filters and handlers exactly as LOG.info() would.
    args = (
        environ.get(REQUEST_ID_KEY, "-"),
        environ.get("REMOTE_ADDR", "-"),
        environ.get("REQUEST_METHOD", "-"),
        _path(environ),
        status[:3] if status else "-",
        size,
        (time.perf_counter() - started) * 1000.0,
    )
    LOG.handle(LOG.makeRecord(LOG.name, logging.INFO, __file__, _LINE, _FORMAT, args, None, "_log"))


_LINE = _log.__code__.co_firstlineno


class _LoggedBody:
    """Counts the bytes of the body; logs the line once, when closed."""

    __slots__ = ("_result", "_environ", "_state", "_started", "_size", "_done")

    def __init__(self, result: Iterable[bytes], environ: dict, state: list, started: float):
        self._result = result
        self._environ = environ
        self._state = state
        self._started = started
        self._size = 0
        self._done = False

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
                _log(self._environ, self._state[0], self._size, self._started)


class AccessLog:
    """The filter; see the module docstring."""

    __slots__ = ("app",)

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not LOG.isEnabledFor(logging.INFO):
            return self.app(environ, start_response)
        started = time.perf_counter()
        state: list = [None]

        def _start_response(status, headers, exc_info=None):
            state[0] = status
            return start_response(status, headers, exc_info)

        try:
            result = self.app(environ, _start_response)
        except BaseException:
            _log(environ, "500", 0, started)
            raise
        return _LoggedBody(result, environ, state, started)


def filter_factory(global_conf: Mapping[str, Any], **local_conf: str) -> Callable[[WSGIApp], Any]:
    """Paste filter factory; the filter takes no options."""
    no_options(global_conf, local_conf, "access_log")
    return AccessLog
