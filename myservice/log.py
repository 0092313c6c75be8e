"""Request-aware logging.

The request id of the request being served lives in two context variables, set by the
``request_id`` filter for the duration of the request.  :class:`Formatter` copies them onto
every log record as ``%(request_id)s`` and ``%(global_request_id)s``, so any format string
in ``etc/api-paste.ini``'s logging sections can show them.  Outside a request both read
``-``.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar

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
    """

    def format(self, record: logging.LogRecord) -> str:
        _stamp(record)
        return super().format(record)


class RequestIdFilter(logging.Filter):
    """A logging filter that stamps the same two attributes; for ``dictConfig`` users."""

    def filter(self, record: logging.LogRecord) -> bool:
        _stamp(record)
        return True
