"""Paste Deploy application factories of ``/`` (versions document) and ``/v1`` (the API).

``etc/api-paste.ini`` names them ``egg:myservice#versions`` and ``egg:myservice#api_v1``.
Both take the :class:`~myservice.wsgi.context.ServiceContext` from ``global_conf`` (the
urlmap composite shares one) or build it from ``config_file``.

:data:`STORAGE_ERRORS` is the one place where storage exceptions become HTTP answers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs

from myservice import conf as conf_mod
from myservice.api import openapi
from myservice.storage import base as storage
from myservice.wsgi import context as context_mod
from myservice.wsgi import faults
from myservice.wsgi.reply import Reply
from myservice.wsgi.router import PUBLIC, ROUTES, Route, Router, accepts_json, not_acceptable

LOG = logging.getLogger(__name__)

App = Callable[[dict, faults.StartResponse], Iterable[bytes]]


def _not_found(exc: BaseException, environ: dict) -> faults.APIError:
    why = f" ({exc})" if str(exc) else ""
    return faults.APIError(404, f"No resource at {faults.request_path(environ)}{why}.")


def _conflict(exc: BaseException, environ: dict) -> faults.APIError:
    return faults.APIError(
        409, str(exc) or "The change conflicts with an existing resource (duplicate name)."
    )


def _bad_marker(exc: BaseException, environ: dict) -> faults.APIError:
    marker = parse_qs(environ.get("QUERY_STRING", "")).get("marker", [""])[0]
    return faults.APIError(
        400,
        f"Query parameter 'marker' names no resource: {marker!r} (use an id from a "
        f"previous page, or omit 'marker' to start from the beginning).",
        code="invalid_marker",
    )


_READS = frozenset(("GET", "HEAD"))


def _unavailable(exc: BaseException, environ: dict) -> faults.APIError:
    """503.  A write the driver cannot vouch for (``Unavailable.nothing_written`` false) gets
    its own code, ``outcome_unknown``: it may have been saved, so the client must look before
    sending it again (a create that was saved answers 409 the second time, a delete 404).
    Such a write fires no event hook even if it was saved, so its WARNING says so: the line an
    operator reconciling the audit log looks for."""
    method = environ.get("REQUEST_METHOD")
    if method in _READS or getattr(exc, "nothing_written", False):
        LOG.warning("storage unavailable: %s", exc)
        return faults.APIError(
            503, "The storage backend is unavailable right now; retry later.", headers=[]
        )
    LOG.warning(
        "storage unavailable during %s %s, outcome unknown (it may have been saved; no event "
        "hook ran for it): %s",
        method,
        faults.request_path(environ),
        exc,
    )
    return faults.APIError(
        503,
        "The storage backend became unavailable during this change: it may or may not have "
        "been saved. Check (GET) before sending it again.",
        code="outcome_unknown",
        headers=[],
    )


#: storage exception -> the client's error; the router looks classes up along the MRO
STORAGE_ERRORS: Mapping[type[BaseException], Callable[[BaseException, dict], faults.APIError]] = {
    storage.NotFound: _not_found,
    storage.Conflict: _conflict,
    storage.MarkerNotFound: _bad_marker,
    storage.Unavailable: _unavailable,
}


def _check_local(local: Mapping[str, Any], global_conf: Mapping[str, Any], name: str) -> None:
    unknown = sorted(k for k in local if k not in global_conf)
    if unknown:
        raise conf_mod.ConfigError(
            f"{global_conf.get('__file__', 'api-paste.ini')} [app:{name}]: unknown option(s) "
            f"{', '.join(unknown)} (this application takes no options; configure it in "
            f"the file named by config_file)"
        )


class _RouteRecorder:
    """Collects the routes an extension adds, so they reach the router all or none."""

    def __init__(self) -> None:
        self.rows: list[Route] = []

    def add_route(self, method: str, path: str, controller: Any, rule: Any) -> None:
        self.rows.append(Route(method, path, controller, rule))

    def add_routes(self, table: Iterable[Any]) -> None:
        self.rows.extend(Route(*row) for row in table)


def _origin(record: Any) -> str:
    entry_point = getattr(record, "entry_point", None)
    dist = getattr(entry_point, "dist", None)
    target = getattr(entry_point, "value", None)
    parts = [
        f"{getattr(dist, 'name', '?')} {getattr(dist, 'version', '?')}" if dist else "",
        f"({target})" if target else "",
    ]
    return " ".join(p for p in parts if p) or "unknown origin"


def add_extension_routes(router: Router, extension: Any) -> None:
    """Add the routes ``extension.add_routes`` declares to ``router``, all or none.

    Raises whatever ``add_routes`` raises, or :class:`ValueError` from the router for a
    clash with an existing ``(method, path)`` or a bad row.
    """
    recorder = _RouteRecorder()
    add_routes = getattr(extension, "add_routes", None)
    if add_routes is not None:
        add_routes(recorder)
    router.add_routes(recorder.rows)


def build_router(ctx: context_mod.ServiceContext) -> Router:
    """The ``/v1`` router over ``ctx``: :data:`~myservice.wsgi.router.ROUTES` plus the routes
    each loaded extension adds in its ``add_routes(router)``.

    An extension whose ``add_routes`` raises, or whose routes are refused (a clash with an
    existing ``(method, path)``, a bad row), is logged at ERROR and left out: none of its
    routes exist and ``ctx.extensions`` (what ``GET /v1/extensions`` lists) no longer holds it.
    """
    router = Router(ROUTES, ctx, error_map=STORAGE_ERRORS)
    kept = []
    for record in ctx.extensions:
        extension = getattr(record, "obj", record)
        alias = getattr(extension, "alias", None) or getattr(record, "name", "?")
        try:
            add_extension_routes(router, extension)
        except Exception as exc:
            LOG.error(
                "API extension %s from %s left out: its routes could not be added: %s: %s",
                alias,
                _origin(record),
                type(exc).__name__,
                exc,
            )
            LOG.debug("traceback of API extension %s", alias, exc_info=True)
            continue
        kept.append(record)
    ctx.extensions = tuple(kept)
    # Last, so it describes every route above; PUBLIC: served without a token.
    document = openapi.OpenAPIDocument()
    router.add_route("GET", openapi.PATH, document.show, PUBLIC)
    document.build(router.routes, ctx.extensions)
    return router


def api_v1_factory(global_conf: Mapping[str, Any], **local: Any) -> Router:
    """Paste ``app_factory`` of ``/v1``."""
    _check_local(local, global_conf, "api_v1")
    return build_router(context_mod.from_global_conf(global_conf))


class Versions:
    """``GET /``: the API versions document, unauthenticated; anything else under it is 404
    (405 for another method on ``/``)."""

    ALLOW = "GET, HEAD"

    def __init__(self, public_endpoint: str = "") -> None:
        #: ``[api] public_endpoint``: the base of the links; empty: the request's own URL
        self.public_endpoint = public_endpoint

    def __call__(self, environ: dict, start_response: faults.StartResponse) -> Iterable[bytes]:
        try:
            if (environ.get("PATH_INFO") or "/") != "/":
                raise faults.APIError(404, f"No resource at {faults.request_path(environ)}.")
            method = environ["REQUEST_METHOD"]
            if method not in ("GET", "HEAD"):
                raise faults.APIError(
                    405,
                    f"{method} is not allowed on {faults.request_path(environ)}; "
                    f"allowed: {self.ALLOW}.",
                    headers=[("Allow", self.ALLOW)],
                )
            if not accepts_json(environ):
                raise not_acceptable(environ)
        except faults.APIError as err:
            return faults.respond_error(environ, start_response, err)
        base = context_mod.link_base(environ, self.public_endpoint)
        doc = {
            "versions": [
                {
                    "id": "v1.0",
                    "status": "CURRENT",
                    "links": [{"rel": "self", "href": f"{base}/v1/"}],
                }
            ]
        }
        return Reply(200, doc).send(environ, start_response)


def versions_factory(global_conf: Mapping[str, Any], **local: Any) -> Versions:
    """Paste ``app_factory`` of ``/``."""
    _check_local(local, global_conf, "versions")
    shared = global_conf.get(context_mod.CONTEXT_KEY)
    conf = shared.conf if shared is not None else conf_mod.from_global_conf(global_conf)
    return Versions(conf.api.public_endpoint)
