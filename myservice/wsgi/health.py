"""``/healthcheck``: is this process able to serve?  For load balancers and orchestrators.

The application answers its mount point itself (``/healthcheck`` and ``/healthcheck/``; no
authentication):

* ``GET``: 200 ``OK`` as ``text/plain``, or ``{"status": "OK"}`` when the client's ``Accept``
  prefers ``application/json``;
* ``HEAD``: 204 when healthy;
* 503 when ``storage.check()`` raises (the backend is unreachable) or when the file named by
  ``[healthcheck] disable_by_file_path`` exists (take a node out of rotation without stopping
  it) -- the error envelope for JSON clients, one line of text otherwise;
* any other method: 405 with ``Allow: GET, HEAD``;
* any path below the mount point (``/healthcheck/db``): 404 naming the health check's own
  path, whatever the method, so a probe configured with a wrong URL fails instead of
  reporting health it never asked about.

``[healthcheck]`` options may be overridden in the ``[app:healthcheck]`` section of
``api-paste.ini`` (``disable_by_file_path = /etc/myservice/disabled``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any

from myservice.storage.base import Unavailable
from myservice.suggest import no_resource
from myservice.wsgi import context as context_mod
from myservice.wsgi import faults
from myservice.wsgi.reply import JSON, dump_json
from myservice.wsgi.router import JSON_ONLY, accept_qualities

LOG = logging.getLogger(__name__)

TEXT = "text/plain; charset=utf-8"
ALLOW = "GET, HEAD"
_PASTE_KEYS = frozenset({"use", "paste.app_factory"})


def wants_json(environ: dict) -> bool:
    """Whether the client prefers ``application/json`` to ``text/plain``: it gives JSON a
    higher quality value than text (a tie, no header or one stating no preference: text).
    Parameters other than ``q`` are ignored, as for the API (see
    :func:`myservice.wsgi.router.accept_qualities`)."""
    accept = environ.get("HTTP_ACCEPT", "")
    if not accept or accept == "*/*":
        return False
    if accept in JSON_ONLY:
        return True
    qualities = accept_qualities(accept, JSON, "text/plain")
    return qualities is not None and qualities[0] > qualities[1]


class HealthCheck:
    """The health application over one storage driver.  ``disable_path`` may be empty."""

    def __init__(self, storage: Any, disable_path: str = "") -> None:
        self.storage = storage
        self.disable_path = disable_path

    def problem(self) -> str | None:
        """Why this process should not get traffic, or ``None`` when healthy."""
        if self.disable_path and os.path.exists(self.disable_path):
            return "disabled by the operator ([healthcheck] disable_by_file_path exists)"
        try:
            self.storage.check()
        except Unavailable as exc:
            LOG.warning("health check: storage unavailable: %s", exc)
            return "the storage backend is unavailable"
        except Exception:
            LOG.exception("health check: the storage driver's check() failed")
            return "the storage backend check failed"
        return None

    def __call__(self, environ: dict, start_response: faults.StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        as_json = wants_json(environ)
        if environ.get("PATH_INFO", "") not in ("", "/"):
            here = faults.shown_path(environ.get("SCRIPT_NAME", "")) or "/"
            detail = no_resource(faults.request_path(environ), here)
            return self._error(environ, start_response, 404, detail, as_json, [])
        if method not in ("GET", "HEAD"):
            detail = f"{method} is not allowed on the health check; allowed: {ALLOW}."
            return self._error(environ, start_response, 405, detail, as_json, [("Allow", ALLOW)])
        problem = self.problem()
        if problem is not None:
            return self._error(environ, start_response, 503, problem, as_json, [])
        if method == "HEAD":
            start_response("204 No Content", [("Cache-Control", "no-store")])
            return []
        if as_json:
            body, ctype = dump_json({"status": "OK"}), JSON
        else:
            body, ctype = b"OK", TEXT
        start_response(
            "200 OK",
            [
                ("Content-Type", ctype),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
            ],
        )
        return [body]

    @staticmethod
    def _error(
        environ: dict,
        start_response: faults.StartResponse,
        status: int,
        detail: str,
        as_json: bool,
        headers: list[tuple[str, str]],
    ) -> Iterable[bytes]:
        headers = [*headers, ("Cache-Control", "no-store")]
        if as_json:
            return faults.respond(environ, start_response, status, detail, headers=headers)
        body = f"{faults.reason(status)}: {detail}\n".encode()
        start_response(
            faults.status_line(status),
            [("Content-Type", TEXT), ("Content-Length", str(len(body))), *headers],
        )
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [body]


def healthcheck_factory(global_conf: Mapping[str, Any], **local: Any) -> HealthCheck:
    """Paste ``app_factory``; local options override ``[healthcheck]``."""
    ctx = context_mod.from_global_conf(global_conf)
    own = {k: v for k, v in local.items() if k not in _PASTE_KEYS and k not in global_conf}
    origin = f"{global_conf.get('__file__', 'api-paste.ini')} [app:healthcheck]"
    conf = ctx.conf.with_overrides("healthcheck", own, origin)
    return HealthCheck(ctx.storage, conf.healthcheck.disable_by_file_path)
