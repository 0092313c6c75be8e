"""The ``urlmap`` composite: the top of the application in ``etc/api-paste.ini``.

::

    [composite:main]
    use = egg:myservice#urlmap
    / = versions_pipeline
    /v1 = api_v1_pipeline
    /healthcheck = healthcheck_pipeline

Contract:

* Each option whose name starts with ``/`` maps a path prefix to an application (any
  ``[app:]``, ``[pipeline:]``, ``[composite:]`` or ``[filter-app:]`` section of the same
  file).  Prefixes are tried longest first and match whole segments only: ``/v1`` serves
  ``/v1`` and ``/v1/users`` but not ``/v10``.  The matched prefix moves from ``PATH_INFO``
  to the end of ``SCRIPT_NAME`` (as in Paste's urlmap).  ``/`` matches exactly ``/`` (and
  an empty path); it is not a catch-all.
* Any other path is answered ``404`` in the error envelope of :mod:`myservice.wsgi.faults`
  with a fresh ``X-OpenStack-Request-ID`` (made by the ``request_id`` filter's generator).
* The service configuration is parsed once (``[DEFAULT] config_file``) and the
  :class:`~myservice.wsgi.context.ServiceContext` (storage driver, hooks) is built once; both
  reach every sub-application's factories in ``global_conf`` under
  ``"myservice.config"`` and ``"myservice.context"``.  Objects already present there (a test
  injecting its own) are used as they are.
* Nothing is kept at module level: two applications loaded in one process share nothing.
* Start-up errors are :class:`~myservice.conf.ConfigError` with one actionable line (see
  :func:`myservice.wsgi.loader.explain`).
"""

from __future__ import annotations

import configparser
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from myservice import conf
from myservice.middleware.request_id import new_request_id
from myservice.suggest import closest_path, no_resource
from myservice.wsgi import faults, plugin_sections, shutdown
from myservice.wsgi.loader import explain, for_runner

LOG = logging.getLogger(__name__)

#: the key under which the composite hands the ServiceContext to every factory
CONTEXT_KEY = "myservice.context"

WSGIApp = Callable[[dict, Callable[..., Any]], Iterable[bytes]]


class URLMap:
    """Dispatch on path prefixes; see the module docstring.

    ``apps`` maps a normalised prefix (no trailing slash; ``""`` for ``/``) to its
    application.  ``context`` is the shared ServiceContext (or ``None``), kept so a server
    can close it on shutdown.
    """

    def __init__(self, apps: Mapping[str, WSGIApp], context: Any = None) -> None:
        self.context = context
        self._root = apps.get("")
        # longest prefix first
        self._prefixes = sorted(
            ((prefix, app) for prefix, app in apps.items() if prefix),
            key=lambda item: len(item[0]),
            reverse=True,
        )

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        for prefix, app in self._prefixes:
            if path == prefix or path.startswith(prefix + "/"):
                environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + prefix
                environ["PATH_INFO"] = path[len(prefix) :]
                return app(environ, start_response)
        if self._root is not None and path in ("", "/"):
            return self._root(environ, start_response)
        rid = new_request_id()
        environ[faults.REQUEST_ID_KEY] = rid
        return faults.respond(
            environ,
            start_response,
            404,
            no_resource(faults.shown_path(path or "/"), self._closest(environ, path))
            + " See / for the API versions.",
            headers=[(faults.REQUEST_ID_HEADER, rid)],
        )

    def _closest(self, environ: dict, path: str) -> str | None:
        """For a mistyped prefix, the path with the closest prefix (``/vl/users`` ->
        ``/v1/users``); else ``None``."""
        first, slash, rest = path.lstrip("/").partition("/")
        close = closest_path(f"/{first}", (prefix for prefix, _ in self._prefixes))
        if close is None:
            return None
        return faults.shown_path(f"{environ.get('SCRIPT_NAME', '')}{close}{slash}{rest}")

    def close(self) -> None:
        """Close the shared ServiceContext (storage connections), if it can be closed."""
        close = getattr(self.context, "close", None)
        if close is not None:
            close()


def normalize_prefix(key: str, origin: str) -> str:
    """``/v1/`` -> ``/v1``, ``/`` -> ``""``; refuses anything that is not an absolute path."""
    if not key.startswith("/") or "//" in key or any(c.isspace() for c in key):
        raise conf.ConfigError(
            f"{origin}: option {key!r}: expected a path prefix such as /v1 mapped to an "
            "application name"
        )
    return key.rstrip("/")


def urlmap_factory(loader: Any, global_conf: Mapping[str, Any], **local_conf: str) -> URLMap:
    """Paste ``composite_factory``: build the sub-applications named in ``local_conf``.

    Raises :class:`~myservice.conf.ConfigError` naming the ini file, the section and what is
    wrong, for a bad mapping, a bad or missing service configuration, an unknown storage
    driver, or an unknown filter or application in any sub-application -- under ``paster
    serve`` or ``gunicorn --paste`` as the error class they print without a traceback
    (:func:`myservice.wsgi.loader.for_runner`).
    """
    try:
        app = _build(loader, global_conf, local_conf)
    except conf.ConfigError as exc:
        clean = for_runner(exc)
        if clean is exc:
            raise
        raise clean from exc
    shutdown.exit_on_sigterm(app)  # paster serve: SIGTERM stops as cleanly as SIGINT
    return app


def _build(loader: Any, global_conf: Mapping[str, Any], local_conf: Mapping[str, str]) -> URLMap:
    ini = str(global_conf.get("__file__", "api-paste.ini"))
    origin = f"{ini} [composite:{_section_name(ini)}]"
    mapping: dict[str, str] = {}
    for key, value in local_conf.items():
        prefix = normalize_prefix(key, origin)
        name = value.strip()
        if not name:
            raise conf.ConfigError(f"{origin}: {key} = : expected the name of an application")
        if prefix in mapping:
            raise conf.ConfigError(f"{origin}: {key}: the prefix is mapped twice")
        mapping[prefix] = name
    if not mapping:
        raise conf.ConfigError(
            f"{origin}: no path is mapped; add lines such as '/v1 = api_v1_pipeline'"
        )

    cfg = conf.from_global_conf(global_conf)
    context = global_conf.get(CONTEXT_KEY)
    if context is None:
        context = _build_context(cfg)
    shared = {**global_conf, conf.GLOBAL_CONF_KEY: cfg, CONTEXT_KEY: context}

    apps: dict[str, WSGIApp] = {}
    try:
        for prefix, name in mapping.items():
            try:
                apps[prefix] = loader.get_app(name, global_conf=shared)
            except conf.ConfigError:
                raise
            except (LookupError, ImportError, configparser.Error) as exc:
                raise explain(exc, ini) from None
    except BaseException:
        if CONTEXT_KEY not in global_conf:  # built here: release the storage driver
            _close_quietly(context)
        raise
    plugin_sections.warn_unknown(cfg, getattr(getattr(context, "hooks", None), "names", ()))
    LOG.debug("urlmap %s: %s", ini, {p or "/": n for p, n in mapping.items()})
    return URLMap(apps, context)


def _build_context(cfg: conf.Config) -> Any:
    """The ServiceContext (storage driver started); ConfigError when it cannot start."""
    from myservice.wsgi import context as context_module

    return context_module.build(cfg)


def _close_quietly(context: Any) -> None:
    close = getattr(context, "close", None)
    if close is None:
        return
    try:
        close()
    except Exception:  # already failing; the original error matters more
        LOG.warning("closing the service context failed", exc_info=True)


def _section_name(ini: str) -> str:
    """The name of the composite section using ``egg:myservice#urlmap`` (``main`` if unsure)."""
    parser = configparser.RawConfigParser(strict=False)
    try:
        parser.read(ini, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return "main"
    for section in parser.sections():
        kind, _, name = section.partition(":")
        if kind in ("composite", "composit") and parser.has_option(section, "use"):
            if parser.get(section, "use").strip().endswith("#urlmap"):
                return name.strip()
    return "main"
