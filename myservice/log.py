"""Request-aware logging.

The request id of the request being served lives in two context variables, set by the
``request_id`` filter for the duration of the request.  :class:`Formatter` copies them onto
every log record as ``%(request_id)s`` and ``%(global_request_id)s``, so any format string
in ``etc/api-paste.ini``'s logging sections can show them.  Outside a request both read
``-``.
"""

from __future__ import annotations

import logging
import time
from contextvars import ContextVar
from typing import Any

request_id: ContextVar[str] = ContextVar("myservice_request_id", default="-")
global_request_id: ContextVar[str] = ContextVar("myservice_global_request_id", default="-")


def _stamp(record: logging.LogRecord) -> None:
    if not hasattr(record, "request_id"):
        record.request_id = request_id.get()
    if not hasattr(record, "global_request_id"):
        record.global_request_id = global_request_id.get()


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

    def format(self, record: logging.LogRecord) -> str:
        _stamp(record)
        return super().format(record)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 - logging's name
        """``logging.Formatter.formatTime``'s text, with the seconds part cached."""
        second = int(record.created)
        cached_second, cached_fmt, text = self._second
        if cached_second != second or cached_fmt != datefmt:
            text = time.strftime(datefmt or self.default_time_format, self.converter(second))
            self._second = (second, datefmt, text)
        if datefmt:
            return text
        if self.default_msec_format:
            return self.default_msec_format % (text, record.msecs)
        return text


class RequestIdFilter(logging.Filter):
    """A logging filter that stamps the same two attributes; for ``dictConfig`` users."""

    def filter(self, record: logging.LogRecord) -> bool:
        _stamp(record)
        return True
