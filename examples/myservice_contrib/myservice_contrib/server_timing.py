"""``server_timing``: a middleware filter adding ``Server-Timing: app;dur=X`` to every response.

``X`` is the time in milliseconds (three decimals) from the request entering the filter to
the application calling ``start_response`` (the headers cannot wait for a streamed body).
Enable it in ``etc/api-paste.ini``::

    [filter:server_timing]
    use = egg:myservice#plugin
    plugin = server_timing
    # optional: the metric name (an HTTP token), default "app"
    metric = app

and add ``server_timing`` to the pipeline line (outermost to time the whole pipeline).

The paste filter factory contract (:mod:`myservice.middleware`):
``filter_factory(global_conf, **local_conf) -> (app -> app)``; options arrive as strings and
are validated here, raising :class:`myservice.conf.ConfigError` naming the file and section.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from myservice.conf import ConfigError

WSGIApp = Callable[[dict, Callable[..., Any]], Iterable[bytes]]

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
OPTIONS = ("metric",)


class ServerTiming:
    """The WSGI filter: times the wrapped application up to its ``start_response``."""

    def __init__(self, app: WSGIApp, metric: str = "app") -> None:
        self.app = app
        self.metric = metric

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.perf_counter()

        def timed_start_response(status: str, headers: list, exc_info: Any = None) -> Any:
            elapsed_ms = (time.perf_counter() - started) * 1000.0
            headers = [h for h in headers if h[0].lower() != "server-timing"]
            headers.append(("Server-Timing", f"{self.metric};dur={elapsed_ms:.3f}"))
            if exc_info is not None:
                return start_response(status, headers, exc_info)
            return start_response(status, headers)

        return self.app(environ, timed_start_response)


def filter_factory(global_conf: Mapping[str, Any], **local_conf: str) -> Callable[[WSGIApp], Any]:
    """Paste filter factory; ``metric`` (an HTTP token) names the timing, default ``app``."""
    where = f"{global_conf.get('__file__', 'api-paste.ini')} [filter:server_timing]"
    unknown = sorted(k for k in local_conf if k not in OPTIONS)
    if unknown:
        raise ConfigError(
            f"{where}: unknown option(s) {', '.join(unknown)} (allowed: {', '.join(OPTIONS)})"
        )
    metric = local_conf.get("metric", "app").strip()
    if not _TOKEN.match(metric):
        raise ConfigError(
            f"{where}: metric = {metric!r}: expected an HTTP token such as 'app' "
            "(letters, digits and !#$%&'*+-.^_`|~, no spaces)"
        )

    def make_filter(app: WSGIApp) -> ServerTiming:
        return ServerTiming(app, metric)

    return make_filter
