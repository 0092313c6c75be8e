"""Request-aware logging.

The request id of the request being served lives in two context variables, set by the
``request_id`` filter for the duration of the request.  :class:`Formatter` copies them onto
every log record as ``%(request_id)s`` and ``%(global_request_id)s``, so any format string
in ``etc/api-paste.ini``'s logging sections can show them.  Outside a request both read
``-``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from contextvars import ContextVar
from functools import partial
from typing import Any

request_id: ContextVar[str] = ContextVar("myservice_request_id", default="-")
global_request_id: ContextVar[str] = ContextVar("myservice_global_request_id", default="-")


def _stamp(record: logging.LogRecord) -> None:
    """Give ``record`` the request ids of the current context, unless it has its own."""
    attrs = record.__dict__
    if "request_id" not in attrs:
        attrs["request_id"] = request_id.get()
    if "global_request_id" not in attrs:
        attrs["global_request_id"] = global_request_id.get()


#: logging.Formatter.default_msec_format, and its ``,%03d`` part for every millisecond
_STOCK_MSEC_FORMAT = "%s,%03d"
_MSEC_SUFFIXES = tuple(f",{msecs:03d}" for msecs in range(1000))


class Formatter(logging.Formatter):
    """A ``logging.Formatter`` that knows ``%(request_id)s`` and ``%(global_request_id)s``.

    Usable from ``logging.config.fileConfig`` (``class = myservice.log.Formatter``).

    ``%(asctime)s`` is the same text as ``logging.Formatter`` writes (``datefmt``, or the
    default format plus milliseconds), but the date and time of a second are formatted once:
    each formatter instance remembers the last whole second it formatted and its text, so the
    lines of one second cost one ``converter`` + ``strftime`` together (the per-line
    ``localtime`` + ``strftime`` cost as much as the rest of the line).  A change of the local
    time zone made inside the process (``time.tzset()``) shows from the next second on.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # (whole second, date format, its text); replaced as a whole, so threads sharing
        # the formatter read either the old triple or the new one, never a mix.
        self._second: tuple[int, str | None, str] = (-1, None, "")
        # (format string, whether it shows %(asctime)s), for usesTime
        self._uses_time: tuple[str | None, bool] = (None, False)

    def format(self, record: logging.LogRecord) -> str:
        """``logging.Formatter.format`` (message, ``asctime`` when the format shows it,
        ``formatMessage``, then the exception and stack texts), in one call, with the two
        request ids stamped on the record first."""
        _stamp(record)
        return super().format(record)

    def usesTime(self) -> bool:  # noqa: N802 - logging's name
        """``logging.Formatter.usesTime``, computed once per format string."""
        fmt = self._style._fmt
        cached_fmt, uses = self._uses_time
        if cached_fmt is not fmt:
            uses = super().usesTime()
            self._uses_time = (fmt, uses)
        return uses

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 - logging's name
        """``logging.Formatter.formatTime``'s text, with the seconds part cached."""
        second = int(record.created)
        cached_second, cached_fmt, text = self._second
        if cached_second != second or cached_fmt != datefmt:
            text = time.strftime(datefmt or self.default_time_format, self.converter(second))
            self._second = (second, datefmt, text)
        if datefmt:
            return text
        msec_format = self.default_msec_format
        if msec_format == _STOCK_MSEC_FORMAT:
            msecs = int(record.msecs)
            if 0 <= msecs < 1000:
                return text + _MSEC_SUFFIXES[msecs]  # logging's "%s,%03d", without the %
        if msec_format:
            return msec_format % (text, record.msecs)
        return text


class RequestIdFilter(logging.Filter):
    """A logging filter that stamps the same two attributes; for ``dictConfig`` users."""

    def filter(self, record: logging.LogRecord) -> bool:
        _stamp(record)
        return True


class BatchingStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A ``logging.StreamHandler`` that takes the ``write`` + ``flush`` off the logging thread.

    Usable from ``logging.config.fileConfig``
    (``class = myservice.log.BatchingStreamHandler``, ``args = (sys.stderr,)``; optional
    ``kwargs = {"interval": 0.05, "max_bytes": 65536}``).

    Contract:

    * ``emit`` formats the record on the calling thread (so ``%(request_id)s`` is the
      request's) and appends the text to a buffer; it makes no system call.
    * A daemon writer thread, started on the first ``emit`` (and again on the first ``emit``
      in a forked child), writes the buffer with one ``write`` + ``flush`` at most
      ``interval`` seconds after the first line of a batch arrived, or as soon as the buffer
      holds ``max_bytes`` characters.
    * A record at ``ERROR`` or above is written at once, on the calling thread, together with
      every line still buffered before it.
    * Lines are written in the order their ``emit`` calls ended; none is written twice.
    * ``flush()`` and ``close()`` (hence ``logging.shutdown``, run at exit) write what is
      buffered; after ``close()`` every ``emit`` writes at once.
    * In a child made by ``os.fork`` the buffer starts empty (the parent writes the lines it
      held) and the writer thread is started again when the child first logs.
    """

    def __init__(self, stream: Any = None, interval: float = 0.05, max_bytes: int = 65536) -> None:
        super().__init__(stream)
        if interval <= 0:
            raise ValueError(
                f"BatchingStreamHandler: interval must be > 0 seconds, got {interval!r}"
            )
        if max_bytes <= 0:
            raise ValueError(f"BatchingStreamHandler: max_bytes must be > 0, got {max_bytes!r}")
        self.interval = float(interval)
        self.max_bytes = int(max_bytes)
        self._init_state()
        os.register_at_fork(after_in_child=partial(_reinit_after_fork, weakref.ref(self)))

    def _init_state(self) -> None:
        # Lock order: Handler.lock (held by flush/close/setStream callers; not by handle,
        # see there) -> _write_lock -> _buffer_lock (= the lock of _cond).
        # The writer thread never takes Handler.lock.
        self._write_lock = threading.Lock()
        # emit() takes the buffer lock directly (a C-level context manager); the writer
        # waits on a Condition over the same lock
        self._buffer_lock = threading.Lock()
        self._cond = threading.Condition(self._buffer_lock)
        self._pending: list[str] = []
        self._size = 0
        self._closing = False
        self._thread: threading.Thread | None = None

    def handle(self, record: logging.LogRecord) -> Any:
        """``logging.Handler.handle`` without the handler's I/O lock around ``emit``: this
        handler's ``emit`` takes its own buffer lock, and writes under its own write lock."""
        passed = self.filter(record)
        if passed:
            self.emit(passed if isinstance(passed, logging.LogRecord) else record)
        return passed

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        if record.levelno >= logging.ERROR or self._closing:
            self._write_pending(record, text)
            return
        with self._buffer_lock:
            was_empty = not self._pending
            self._pending.append(text)
            self._size += len(text)
            if self._thread is None:
                self._start_writer()
            if was_empty or self._size >= self.max_bytes:
                self._cond.notify()

    def flush(self) -> None:
        """Write every buffered line, then flush the stream."""
        self._write_pending(None, "")

    def close(self) -> None:
        """Stop the writer thread, write what is buffered, and close as StreamHandler does."""
        with self._cond:
            self._closing = True
            thread = self._thread
            self._cond.notify()
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self._write_pending(None, "")
        super().close()

    def setStream(self, stream: Any) -> Any:  # noqa: N802 - logging's name
        """Write the buffered lines to the old stream, then switch as StreamHandler does."""
        self.acquire()
        try:
            self.flush()
            return super().setStream(stream)
        finally:
            self.release()

    def _start_writer(self) -> None:
        thread = threading.Thread(
            target=self._run, name=f"myservice-log-writer-{self.name or id(self)}", daemon=True
        )
        self._thread = thread
        thread.start()

    def _run(self) -> None:
        cond = self._cond
        while True:
            with cond:
                while not self._pending and not self._closing:
                    cond.wait()
                if not self._closing and self._size < self.max_bytes:
                    cond.wait(self.interval)
                closing = self._closing
            self._write_pending(None, "")
            if closing:
                return

    def _write_pending(self, record: logging.LogRecord | None, extra: str) -> None:
        with self._write_lock:
            with self._cond:
                lines = self._pending
                self._pending = []
                self._size = 0
            if extra:
                lines.append(extra)
            try:
                stream = self.stream
                if lines:
                    stream.write("".join(lines))
                if stream and hasattr(stream, "flush"):
                    stream.flush()
            except RecursionError:
                raise
            except Exception:
                self.handleError(record or _WRITE_ERROR_RECORD)


_WRITE_ERROR_RECORD = logging.LogRecord(
    __name__, logging.ERROR, __file__, 0, "BatchingStreamHandler: writing a batch failed", (), None
)


def _reinit_after_fork(ref: weakref.ReferenceType[BatchingStreamHandler]) -> None:
    handler = ref()
    if handler is not None:
        handler._init_state()
