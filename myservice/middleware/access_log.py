"""``access_log``: one INFO line per request on the logger ``myservice.access``.

The line is made once the response body is complete, so the duration covers producing the
body too::

    req-1f0e... 192.0.2.10 "GET /v1/users?limit=5" status 200 len 512 time 3.2 ms

Fields: request id, remote address, method, path with query string, status code, response
bytes, duration in milliseconds.  No header is ever logged (so neither is a token); control
characters in the path are escaped, and a ``"`` in the path or query string is written
``%22``, so the quoted field ends where the line's format says.  If the application raises,
the line shows status ``500`` and the exception propagates.  To silence it, set the level of
the ``myservice.access`` logger above INFO (the filter then costs one level check per
request).

When the request is finished:

* the application returned a ``list`` or ``tuple`` (every response of the ``/v1`` API): the
  body is already produced, so the bytes are counted at once and the response is passed on
  unwrapped;
* any other iterable (a generator, a file wrapper...): the body is wrapped, counted as the
  server iterates it, and the request is finished when the server closes it (after ``close``
  of the application's iterable).

**Where the line is logged** -- option ``interval`` (``[access_log] interval`` in the service
configuration, or ``interval = ...`` in ``[filter:access_log]``; seconds, default ``0.02``):

* ``interval > 0`` (the default): the request thread only takes the line's fields (a dozen
  reads, no formatting, no lock, no system call) and appends them to this filter's queue; a
  daemon thread of the filter wakes when the first line arrives, waits ``interval`` seconds
  so the lines of that moment gather, then logs them one after the other, and goes back to
  sleep when the queue is empty.  A line is therefore handed to logging at most ``interval``
  seconds (plus the time to log the lines before it) after its request finished, in the
  order the requests finished.  Logging a batch on one thread costs a fraction of logging
  each line on its own request thread between two requests (benchmarks/README.md, round 6).
  The record is the one ``LOG.info`` would have made on the request thread: its
  ``created``/``msecs``/``relativeCreated`` are the time the request finished, ``thread`` and
  ``threadName`` the request's thread, and ``request_id``/``global_request_id`` (shown by
  :class:`myservice.log.Formatter`) the request's.  When more than :data:`MAX_PENDING` lines
  wait (logging cannot keep up), the request thread logs the waiting lines itself before
  adding its own (back-pressure, order kept; nothing is dropped).  The queue is drained at
  interpreter exit (``atexit``: ``myservice-api``'s SIGTERM, a gunicorn worker's exit) before
  ``logging.shutdown``; a ``kill -9`` loses the lines still queued.  A child made by
  ``os.fork`` starts with an empty queue and its own thread.
* ``interval = 0``: each line is logged on the request's own thread, before the response is
  sent (list bodies) or at ``close`` (other bodies).

Either way the record goes through ``Logger.handle``: the logger's level, ``disabled`` flag
and filters, and every handler and formatter of the logging configuration (the
``[logger_*]``/``[handler_*]``/``[formatter_*]`` sections of the ini) apply as for
``LOG.info``; ``Logger.findCaller``'s stack walk is skipped (the record names this module's
``_emit`` as its origin).
"""

from __future__ import annotations

import atexit
import collections
import logging
import os
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import partial
from time import perf_counter_ns
from typing import Any

from myservice import log
from myservice.middleware._common import close_result, section_config
from myservice.wsgi.faults import REQUEST_ID_KEY, shown_path

LOG = logging.getLogger("myservice.access")

SECTION = "access_log"

#: when more lines than this wait in a filter's queue, the request thread logs them itself
MAX_PENDING = 10000

WSGIApp = Callable[[dict, Callable[..., Any]], Iterable[bytes]]

_INFO = logging.INFO
_FORMAT = '%s %s "%s %s" status %s len %d time %.1f ms'

# One finished request, as taken on its thread (a tuple: the cheapest thing to build):
# (environ request id, log request id, log global request id, remote address, method,
#  SCRIPT_NAME, PATH_INFO, QUERY_STRING, status line or None, body bytes, ns elapsed,
#  time.time() at the end, thread ident, thread name)
_Line = tuple


def _take(environ: dict, status: str | None, size: int, started: int) -> _Line:
    """The fields of a finished request (``started``: its ``perf_counter_ns``)."""
    elapsed = perf_counter_ns() - started
    thread = threading.current_thread()
    return (
        environ.get(REQUEST_ID_KEY, "-"),
        log.request_id.get(),
        log.global_request_id.get(),
        environ.get("REMOTE_ADDR", "-"),
        environ.get("REQUEST_METHOD", "-"),
        environ.get("SCRIPT_NAME", ""),
        environ.get("PATH_INFO", ""),
        environ.get("QUERY_STRING"),
        status,
        size,
        elapsed,
        time.time(),
        thread.ident,
        thread.name,
    )


def _emit(line: _Line, template: dict[str, Any] | None = None) -> None:
    """Format the message arguments of ``line`` and hand its record to ``LOG.handle``.

    ``template``: the attributes of a record made by ``LOG.makeRecord`` at the start of the
    batch (see :func:`_record_template`); each line's record is then a copy of it with the
    line's own values, instead of a new ``LogRecord.__init__`` (time, thread, process and
    path look-ups that would only be replaced).  ``None``: ``LOG.makeRecord`` per line."""
    rid, log_rid, log_grid, remote, method, script, path, query = line[:8]
    status, size, elapsed, ended, ident, thread_name = line[8:]
    path = shown_path(script + path)
    if query:
        path = f"{path}?{query}"
    if not path.isprintable():
        path = path.encode("unicode_escape").decode("ascii")
    if '"' in path:  # the field is quoted: a quote in it would let a client forge fields
        path = path.replace('"', "%22")
    args = (rid, remote, method, path, status[:3] if status else "-", size, elapsed / 1e6)
    # LOG.info() minus Logger.findCaller's stack walk (the caller is always this function),
    # with the request's time, thread and ids instead of the logging thread's.
    if template is None:
        record = LOG.makeRecord(LOG.name, _INFO, __file__, _LINE, _FORMAT, args, None, "_emit")
        attrs = record.__dict__
    else:
        record = _new_record(logging.LogRecord)
        record.__dict__ = attrs = template.copy()
        attrs["args"] = args
    attrs["relativeCreated"] += (ended - attrs["created"]) * 1000
    attrs["created"] = ended
    attrs["msecs"] = int((ended - int(ended)) * 1000) + 0.0
    if attrs["thread"] is not None:  # logging.logThreads
        attrs["thread"] = ident
        attrs["threadName"] = thread_name
    attrs["request_id"] = log_rid
    attrs["global_request_id"] = log_grid
    LOG.handle(record)


_new_record = object.__new__


def _record_template() -> dict[str, Any] | None:
    """The attributes of one record ``LOG.makeRecord`` makes now, for :func:`_emit` to copy;
    ``None`` when records are made by anything but the standard ``LogRecord`` and
    ``Logger.makeRecord`` (``logging.setLogRecordFactory``, a ``Logger`` subclass): then each
    line gets its own ``makeRecord`` call."""
    if (
        logging.getLogRecordFactory() is not logging.LogRecord
        or type(LOG).makeRecord is not logging.Logger.makeRecord
    ):
        return None
    record = LOG.makeRecord(LOG.name, _INFO, __file__, _LINE, _FORMAT, (), None, "_emit")
    return dict(record.__dict__)


_LINE = _emit.__code__.co_firstlineno


class LineQueue:
    """One filter's finished requests waiting to be logged, and the daemon thread that logs
    them (see the module docstring).  :meth:`flush` logs what is waiting, on the calling
    thread; tests and shutdown use it."""

    def __init__(self, interval: float) -> None:
        if interval <= 0:
            raise ValueError(f"LineQueue: interval must be > 0 seconds, got {interval!r}")
        self.interval = interval
        self._reset()
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=partial(_reset_after_fork, ref))
        atexit.register(partial(_flush_at_exit, ref))

    def _reset(self) -> None:
        self._lines: collections.deque[_Line] = collections.deque()
        self._wake = threading.Condition(threading.Lock())
        self._flush_lock = threading.Lock()  # one thread logs at a time: order is kept
        self._thread: threading.Thread | None = None
        # True while the logger thread sleeps on an empty queue (or is not started): the next
        # put() must wake it.  Set under _wake before each look of the thread at the queue,
        # so a put() either sees it or has appended before that look.  The put() that wakes
        # the thread clears it (under _wake), so the puts made before the woken thread gets
        # to run do not notify again.
        self._idle = True

    def put(self, line: _Line) -> None:
        """Queue ``line``; wake the logger thread if it sleeps on an empty queue."""
        lines = self._lines
        if len(lines) >= MAX_PENDING:
            self.flush()
        lines.append(line)
        if self._idle:
            with self._wake:
                if self._idle:
                    self._idle = False
                    if self._thread is None:
                        self._start()
                    self._wake.notify()

    def flush(self) -> None:
        """Log every waiting line, in order, on the calling thread."""
        with self._flush_lock:
            lines = self._lines
            if not lines:
                return
            template = _record_template()
            while lines:
                _emit(lines.popleft(), template)

    def __len__(self) -> int:
        return len(self._lines)

    def _start(self) -> None:
        thread = threading.Thread(target=self._run, name="myservice-access-log", daemon=True)
        self._thread = thread
        thread.start()

    def _run(self) -> None:
        lines, wake = self._lines, self._wake
        while True:
            with wake:
                # armed before every look at the queue (a put() appends, then reads the
                # flag): woken to a queue a flush() has emptied, the thread must be woken
                # again by the next put(), whose notify cleared the flag
                self._idle = True
                while not lines:
                    wake.wait()
                    self._idle = True
                self._idle = False
            time.sleep(self.interval)  # let the lines of this moment gather
            try:
                self.flush()
            except Exception as exc:  # a broken handler must not stop the thread
                _report_flush_failure(exc)


def _report_flush_failure(exc: Exception) -> None:
    """Log (at ERROR, with the traceback) that a batch could not be logged; the line that
    failed is dropped, the ones after it stay queued.  If even that fails (the broken handler
    is on this logger's path too), say it on stderr as ``logging`` itself does."""
    try:
        logging.getLogger(__name__).error("Logging access-log lines failed", exc_info=exc)
    except Exception:
        traceback.print_exception(exc, file=sys.stderr)


def _reset_after_fork(ref: weakref.ReferenceType[LineQueue]) -> None:
    queue = ref()
    if queue is not None:
        queue._reset()


def _flush_at_exit(ref: weakref.ReferenceType[LineQueue]) -> None:
    queue = ref()
    if queue is not None:
        queue.flush()


class _Request:
    """One request's state: the status seen by ``start_response`` and, for a lazy body, the
    wrapper the server iterates and closes (the request is finished at ``close``)."""

    __slots__ = (
        "_filter",
        "_environ",
        "_start_response",
        "_started",
        "status",
        "_result",
        "_size",
        "_done",
    )

    def __init__(
        self,
        access_log: AccessLog,
        environ: dict,
        start_response: Callable[..., Any],
        started: int,
    ) -> None:
        self._filter = access_log
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
                self._filter.finished(self._environ, self.status, self._size, self._started)


class AccessLog:
    """The filter; see the module docstring.  ``interval``: seconds (> 0: lines logged by a
    background thread, see :class:`LineQueue`; 0: on the request thread); its default is
    ``[access_log] interval``'s, given by :func:`filter_factory`."""

    __slots__ = ("app", "queue")

    def __init__(self, app: WSGIApp, interval: float) -> None:
        self.app = app
        self.queue: LineQueue | None = LineQueue(interval) if interval > 0 else None

    def finished(self, environ: dict, status: str | None, size: int, started: int) -> None:
        """Log (or queue) the line of a finished request."""
        line = _take(environ, status, size, started)
        queue = self.queue
        if queue is None:
            _emit(line)
        else:
            queue.put(line)

    def flush(self) -> None:
        """Log the lines still queued (no-op with ``interval = 0``)."""
        if self.queue is not None:
            self.queue.flush()

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not LOG.isEnabledFor(_INFO):
            return self.app(environ, start_response)
        started = perf_counter_ns()
        request = _Request(self, environ, start_response, started)
        try:
            result = self.app(environ, request.start_response)
        except BaseException:
            self.finished(environ, "500", 0, started)
            raise
        kind = type(result)
        if kind is list or kind is tuple:
            size = 0
            for chunk in result:
                size += len(chunk)
            self.finished(environ, request.status, size, started)
            return result
        return request.wrap(result)


def filter_factory(global_conf: Mapping[str, Any], **local_conf: str) -> Callable[[WSGIApp], Any]:
    """Paste filter factory; option ``interval`` (seconds, 0 to 5; see the module docstring)."""
    interval = section_config(global_conf, local_conf, SECTION).interval

    def _filter(app: WSGIApp) -> AccessLog:
        return AccessLog(app, interval)

    return _filter
