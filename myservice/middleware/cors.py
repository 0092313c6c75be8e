"""``cors``: Cross-Origin Resource Sharing for browser clients (dashboards).

Options of ``[cors]``: ``allowed_origin`` (exact origins; ``*`` only when listed; empty turns
the filter off: the factory returns the application itself), ``allow_credentials``,
``allow_methods``, ``allow_headers``, ``expose_headers``, ``max_age``.  ``*`` together with
``allow_credentials = true`` is refused at start-up (any site could read the answers to its
visitors' credentialed requests).

* Preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) from an allowed
  origin is answered by the filter: ``200`` with ``Access-Control-Allow-Origin``,
  ``-Allow-Methods``, ``-Allow-Headers``, ``-Max-Age`` (and ``-Allow-Credentials``) and
  ``Vary: Origin``.  If the requested method or headers are not allowed, the answer is a
  ``200`` without ``Access-Control-*`` headers, which makes the browser refuse the request.
* Actual requests from an allowed origin get ``Access-Control-Allow-Origin``,
  ``-Expose-Headers`` (and ``-Allow-Credentials``) and ``Vary: Origin``.
* Requests from any other origin get no CORS headers at all (a preflight from such an origin is
  passed to the application like any ``OPTIONS`` request).
* With ``*`` listed, an origin not listed by name (``null`` included) is answered
  ``Access-Control-Allow-Origin: *``, never its own value.
* Every response passing through the filter, with or without ``Origin``, carries ``Vary:
  Origin`` (added to the application's ``Vary`` header, once), so a shared cache never serves
  the answer for one origin to another (Fetch standard, "CORS protocol and HTTP caches").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from myservice.conf import Config, ConfigError
from myservice.middleware._common import service_config

WSGIApp = Callable[[dict, Callable[..., Any]], Iterable[bytes]]

SECTION = "cors"

#: ``allow_methods`` when not given: every method the API serves (the defaults of ``[cors]``)
DEFAULT_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _vary_origin(headers: list[tuple[str, str]]) -> None:
    """Add ``Origin`` to the ``Vary`` of ``headers`` (in place): appended to the first ``Vary``
    header if there is one, nothing if one already names ``Origin`` or is ``*``."""
    first = -1
    for index, (name, value) in enumerate(headers):
        if name.lower() == "vary":
            for token in value.split(","):
                token = token.strip().lower()
                if token == "origin" or token == "*":
                    return
            if first < 0:
                first = index
    if first < 0:
        headers.append(("Vary", "Origin"))
    else:
        name, value = headers[first]
        headers[first] = (name, f"{value}, Origin" if value.strip() else "Origin")


class CORS:
    """The filter; see the module docstring.  All header values are computed here, once."""

    __slots__ = (
        "app",
        "_origins",
        "_wildcard",
        "_credentials",
        "_methods",
        "_headers_lower",
        "_preflight_tail",
        "_actual_tail",
    )

    def __init__(
        self,
        app: WSGIApp,
        allowed_origin: Iterable[str],
        *,
        allow_credentials: bool = False,
        allow_methods: Iterable[str] = DEFAULT_METHODS,
        allow_headers: Iterable[str] = (),
        expose_headers: Iterable[str] = (),
        max_age: int = 3600,
    ) -> None:
        origins = [o.rstrip("/") for o in allowed_origin]
        self.app = app
        self._wildcard = "*" in origins
        if self._wildcard and allow_credentials:
            raise ValueError(
                "allowed_origin '*' with allow_credentials: list the origins explicitly "
                "or turn credentials off"
            )
        self._origins = frozenset(o for o in origins if o != "*")
        self._credentials = allow_credentials
        methods = [m.upper() for m in allow_methods]
        self._methods = frozenset(methods)
        headers = list(allow_headers)
        self._headers_lower = frozenset(h.lower() for h in headers)
        cred = [("Access-Control-Allow-Credentials", "true")] if allow_credentials else []
        self._preflight_tail = [
            ("Access-Control-Allow-Methods", ", ".join(methods)),
            ("Access-Control-Allow-Headers", ", ".join(headers)),
            ("Access-Control-Max-Age", str(max_age)),
            *cred,
        ]
        self._actual_tail = list(cred)
        if expose_headers:
            self._actual_tail.insert(
                0, ("Access-Control-Expose-Headers", ", ".join(expose_headers))
            )

    def _allow_origin(self, origin: str) -> str | None:
        """The ``Access-Control-Allow-Origin`` value for ``origin``, or ``None``."""
        if origin in self._origins:
            return origin
        if self._wildcard:
            # never the request's own value (e.g. "null"): "*" is what was configured
            return "*"
        return None

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        origin = environ.get("HTTP_ORIGIN")
        allow = None if origin is None else self._allow_origin(origin)
        if allow is None:
            # no CORS headers, but the answer still depends on Origin for a shared cache

            def _vary_only(status, headers, exc_info=None):
                _vary_origin(headers)
                return start_response(status, headers, exc_info)

            return self.app(environ, _vary_only)
        if environ["REQUEST_METHOD"] == "OPTIONS":
            requested = environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD")
            if requested is not None:
                return self._preflight(environ, start_response, allow, requested)
        extra = [("Access-Control-Allow-Origin", allow), *self._actual_tail]

        def _start_response(status, headers, exc_info=None):
            headers.extend(extra)
            _vary_origin(headers)
            return start_response(status, headers, exc_info)

        return self.app(environ, _start_response)

    def _preflight(
        self, environ: dict, start_response: Callable[..., Any], allow: str, method: str
    ) -> list[bytes]:
        headers = [("Content-Length", "0"), ("Vary", "Origin")]
        wanted = environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS", "")
        wanted_ok = all(
            h.strip().lower() in self._headers_lower for h in wanted.split(",") if h.strip()
        )
        if method in self._methods and wanted_ok:
            headers.append(("Access-Control-Allow-Origin", allow))
            headers.extend(self._preflight_tail)
        start_response("200 OK", headers)
        return [b""]


def filter_factory(global_conf: Mapping[str, Any], **local_conf: str) -> Callable[[WSGIApp], Any]:
    """Paste filter factory; options of ``[cors]`` (see the module docstring)."""
    cfg = service_config(global_conf, local_conf, SECTION)
    opts = cfg.cors
    for origin in opts.allowed_origin:
        if origin != "*" and "://" not in origin:
            where = cfg.source(SECTION, "allowed_origin")
            raise ConfigError(
                f"{where}: [cors] allowed_origin: {origin!r} is not an origin: expected "
                "scheme://host[:port] (e.g. https://dashboard.example) or '*'"
            )
    if opts.allow_credentials and "*" in opts.allowed_origin:
        raise ConfigError(_wildcard_with_credentials(cfg, opts.allowed_origin))

    def _filter(app: WSGIApp) -> WSGIApp:
        if not opts.allowed_origin:
            return app
        return CORS(
            app,
            opts.allowed_origin,
            allow_credentials=opts.allow_credentials,
            allow_methods=opts.allow_methods,
            allow_headers=opts.allow_headers,
            expose_headers=opts.expose_headers,
            max_age=opts.max_age,
        )

    return _filter


def _wildcard_with_credentials(cfg: Config, origins: Iterable[str]) -> str:
    """The one-line error for ``allowed_origin = *`` with ``allow_credentials = true``, naming
    where each was set and the values to use instead."""
    where = cfg.source(SECTION, "allowed_origin")
    cred_from = cfg.source(SECTION, "allow_credentials")
    cred_note = f" (set in {cred_from})" if cred_from != where else ""
    named = [o for o in origins if o != "*"]
    instead = ", ".join(named) if named else "https://dashboard.example"
    return (
        f"{where}: [cors] allowed_origin = * with allow_credentials = true{cred_note}: any "
        "web site could read the answers to its visitors' credentialed requests; list the "
        f"origins explicitly (allowed_origin = {instead}) or set allow_credentials = false"
    )
