"""The service context: everything a request needs that is built once per application.

:class:`ServiceContext` holds the parsed configuration, the started storage driver, the event
hooks dispatcher and the loaded API extensions.  :func:`build` makes one from a
:class:`~myservice.conf.Config`; :func:`from_global_conf` is what the Paste Deploy factories
call: it reuses the context the urlmap composite put in ``global_conf["myservice.context"]``
(so ``/``, ``/healthcheck`` and ``/v1`` share one storage driver) or builds a new one.

The API router puts the context in every request's environ under :data:`CONTEXT_KEY`.

Start-up failures are :class:`~myservice.conf.ConfigError` (one line, for the operator as is):
an unknown ``[storage] driver`` name (with the names that exist and the closest one), a driver
that cannot be imported, and (:class:`StartupFailure`) a driver that does not provide every
method of the contract (:data:`~myservice.storage.base.DRIVER_METHODS`, the missing ones
listed), or whose constructor or ``start()`` raises: the message of a
:class:`~myservice.storage.base.StartupError` or ``Unavailable`` as is, any other exception's
type and message (traceback logged at DEBUG).  Messages about a loaded driver name its
entry-point target and distribution (name and version).
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import webob

from myservice import conf as conf_mod
from myservice.plugins import DriverManager
from myservice.plugins.discovery import get_entry_points
from myservice.plugins.exception import MultipleMatches, NoUniqueMatch
from myservice.plugins.extension import describe_target
from myservice.storage.base import (
    DRIVER_METHODS,
    StartupError,
    StorageDriver,
    Unavailable,
    missing_methods,
)
from myservice.suggest import closest, did_you_mean

LOG = logging.getLogger(__name__)

#: environ key (and ``global_conf`` key) holding the :class:`ServiceContext`
CONTEXT_KEY = "myservice.context"
#: application URLs a :class:`ServiceContext` remembers (see ``application_url``)
URL_MEMO_SIZE = 64
#: what WebOb leaves unquoted in a URL's path (``webob.request.PATH_SAFE``)
_PATH_SAFE = "/~!$&'()*+,;=:@"

#: entry-point namespace of the storage drivers
STORAGE_NAMESPACE = "myservice.storage"
#: what a storage driver must be (named in the messages refusing one)
_CONTRACT = "myservice.storage.base.StorageDriver"


class StartupFailure(conf_mod.ConfigError):
    """The storage driver could not start; the message says why and what to do."""


class Hooks(Protocol):
    """What the API needs from the event hooks dispatcher."""

    def fire(
        self,
        event: str,
        resource: Mapping[str, Any],
        *,
        request_id: str | None,
        user_id: str | None,
        project_id: str | None,
    ) -> None:
        """Run the hooks of ``event`` (e.g. ``user.create``) for ``resource``; never raises."""


class NullHooks(Hooks):
    """A hooks dispatcher that does nothing (used when no dispatcher is available)."""


def link_base(environ: Mapping[str, Any], public_endpoint: str) -> str:
    """The URL of the application ``environ`` reached, as links to it must start:
    ``public_endpoint`` (``[api] public_endpoint``, no trailing ``/``) + the quoted
    ``SCRIPT_NAME``, or, when it is empty, ``webob.Request(environ).application_url`` (the
    request's scheme and ``Host``)."""
    if not public_endpoint:
        return webob.Request(dict(environ)).application_url
    script = environ.get("SCRIPT_NAME", "").encode("latin-1")
    return public_endpoint + urllib.parse.quote(script, safe=_PATH_SAFE)


@dataclass
class ServiceContext:
    """Configuration, storage driver, hooks and extensions of one application.

    ``extensions`` is an iterable of stevedore-style ``Extension`` records (``.name``,
    ``.obj``), e.g. an ``EnabledExtensionManager``; empty when no API extension is loaded.
    """

    conf: conf_mod.Config
    storage: StorageDriver
    hooks: Hooks = field(default_factory=NullHooks)
    extensions: Iterable[Any] = ()
    # (scheme, Host, server name, server port, SCRIPT_NAME), or (SCRIPT_NAME,) with a
    # public endpoint -> application URL
    _urls: dict[tuple[Any, ...], str] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    # [api] public_endpoint, read once (conf is immutable)
    _endpoint: str = field(default="", init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._endpoint = self.conf.api.public_endpoint

    def application_url(self, environ: Mapping[str, Any]) -> str:
        """The base of the links the application returns: ``[api] public_endpoint`` + the
        quoted ``SCRIPT_NAME`` when that option is set, else
        ``webob.Request(environ).application_url`` (the request's scheme and ``Host``).
        Remembered per ``SCRIPT_NAME`` with a public endpoint, else per scheme, ``Host``,
        server name, server port and ``SCRIPT_NAME`` (the only inputs of WebOb's computation,
        which costs ~6 us and gives the same few answers on every request).  At most
        :data:`URL_MEMO_SIZE` are kept (``Host`` is the client's): a full memo is emptied."""
        if self._endpoint:  # the client's Host plays no part
            key: tuple[Any, ...] = (environ.get("SCRIPT_NAME", ""),)
        else:
            key = (
                environ.get("wsgi.url_scheme"),
                environ.get("HTTP_HOST"),
                environ.get("SERVER_NAME"),
                environ.get("SERVER_PORT"),
                environ.get("SCRIPT_NAME", ""),
            )
        urls = self._urls
        url = urls.get(key)
        if url is None:
            if len(urls) >= URL_MEMO_SIZE:
                urls.clear()
            url = urls[key] = self._application_url(environ)
        return url

    def _application_url(self, environ: Mapping[str, Any]) -> str:
        return link_base(environ, self._endpoint)

    def close(self) -> None:
        """Stop the hooks dispatcher (if it can be stopped) and release the storage driver."""
        close_hooks = getattr(self.hooks, "close", None)
        if close_hooks is not None:
            close_hooks()
        self.storage.close()


def _make_hooks(conf: conf_mod.Config) -> Hooks:
    """The event hooks dispatcher: ``myservice.hooks.dispatcher.HookDispatcher(conf)`` when
    that module exists, else a :class:`NullHooks`.  The hooks engineer owns this seam."""
    try:
        from myservice.hooks.dispatcher import HookDispatcher
    except ModuleNotFoundError as exc:
        if exc.name not in ("myservice.hooks.dispatcher",):
            raise
        LOG.debug("myservice.hooks.dispatcher is not available; event hooks are off")
        return NullHooks()
    return HookDispatcher(conf)


def _make_extensions(conf: conf_mod.Config) -> Iterable[Any]:
    """The API extensions enabled by ``[api] extensions``, loaded (stevedore-style
    ``Extension`` records, ``.obj`` being the extension; see
    :func:`myservice.api.extensions.load_extensions`).  Raises
    :class:`~myservice.conf.ConfigError` for an alias that is not installed; an extension that
    fails to load is logged and left out."""
    from myservice.api.extensions import load_extensions

    return load_extensions(conf)


def _storage_names() -> list[str]:
    """Names registered in :data:`STORAGE_NAMESPACE` (without importing any plugin)."""
    return sorted({ep.name for ep in get_entry_points(STORAGE_NAMESPACE)})


def _where(conf: conf_mod.Config) -> str:
    source = conf.source("storage", "driver")
    if source == "default":
        return f"{conf.path or 'configuration'} (default)"
    return source


def _cannot_start(conf: conf_mod.Config, prefix: str, exc: BaseException) -> str:
    """``PREFIX: the driver cannot start: MESSAGE``; ``prefix`` names the configuration file,
    so a leading ``FILE: `` of the driver's own message (which names it for
    ``myservice-manage``) is dropped: the line names the file once."""
    text = str(exc)
    if conf.path is not None and text.startswith(f"{conf.path}: "):
        text = text[len(f"{conf.path}: ") :]
    return f"{prefix}: the driver cannot start: {text}"


def _close_after_failure(driver: Any, name: str) -> None:
    """Close a driver whose start-up failed; a failing ``close()`` is logged, never raised (it
    must not hide the error that stopped the start-up)."""
    close = getattr(driver, "close", None)
    if not callable(close):
        return
    try:
        close()
    except Exception as exc:  # noqa: BLE001 - the first error is the one to report
        LOG.warning(
            "storage driver %s: close() after the failed start-up also failed: %s",
            name,
            conf_mod.exception_line(exc, qualified=True),
        )
        LOG.debug("traceback of the failed close() of storage driver %s", name, exc_info=exc)


def _missing(driver: Any, methods: Iterable[str]) -> str:
    """``missing methods a, list_users (it has list_user)``: a misspelt method is named."""
    others = [n for n in dir(driver) if not n.startswith("_") and n not in DRIVER_METHODS]
    named = []
    for method in methods:
        near = closest(method, others)
        named.append(f"{method} (it has {near})" if near else method)
    return f"missing methods {', '.join(named)}"


def _contract_message(driver: Any, missing: list[str]) -> str:
    """``missing methods a, b; not callable: c (int)`` for the contract check."""
    absent = object()
    found = {method: getattr(driver, method, absent) for method in missing}
    parts = []
    lacking = [method for method, value in found.items() if value is absent]
    if lacking:
        parts.append(_missing(driver, lacking))
    wrong = [f"{m} ({type(v).__name__})" for m, v in found.items() if v is not absent]
    if wrong:
        parts.append(f"not callable: {', '.join(wrong)}")
    return "; ".join(parts)


def _load_storage(conf: conf_mod.Config) -> tuple[Any, str]:
    """Import, construct and check the driver; return it and its ``describe_target``."""
    name = conf.storage.driver
    where = _where(conf)
    prefix = f"{where}: [storage] driver = {name}"

    def on_failure(_manager: Any, entrypoint: Any, exc: BaseException) -> None:
        if isinstance(exc, StartupError):
            raise StartupFailure(_cannot_start(conf, prefix, exc)) from exc
        LOG.debug("traceback of the failure to import storage driver %s", name, exc_info=exc)
        failure = conf_mod.exception_line(exc, qualified=True)
        raise conf_mod.ConfigError(
            f"{prefix}: cannot load the driver {describe_target(entrypoint)}: {failure}"
        ) from exc

    try:
        manager = DriverManager(
            namespace=STORAGE_NAMESPACE,
            name=name,
            invoke_on_load=False,
            on_load_failure_callback=on_failure,
        )
    except MultipleMatches as exc:
        raise conf_mod.ConfigError(
            f"{prefix}: more than one installed package provides this driver: {exc}"
        ) from None
    except NoUniqueMatch:
        names = _storage_names()
        hint = did_you_mean(name, names)
        raise conf_mod.ConfigError(
            f"{prefix}: no such storage driver{hint} "
            f"(installed in '{STORAGE_NAMESPACE}': {', '.join(names) or 'none'})"
        ) from None
    extension = manager.extensions[0]
    factory = extension.plugin
    origin = describe_target(extension.entry_point)
    contract = f"{origin} does not implement the storage driver contract ({_CONTRACT})"
    if not callable(factory):
        raise StartupFailure(
            f"{prefix}: {origin} is not callable ({type(factory).__name__}): expected a "
            f"subclass of {_CONTRACT} or a factory returning a driver"
        )
    abstract = getattr(factory, "__abstractmethods__", None) if isinstance(factory, type) else ()
    if abstract:
        # what instantiating it would refuse with Python's own TypeError
        order = {method: i for i, method in enumerate(DRIVER_METHODS)}
        listed = sorted(abstract, key=lambda method: (order.get(method, len(order)), method))
        raise StartupFailure(f"{prefix}: {contract}: {_missing(factory, listed)}")
    driver = None
    try:
        driver = factory(conf)
        missing = missing_methods(driver)
    except (StartupError, Unavailable) as exc:
        if driver is not None:
            _close_after_failure(driver, name)
        raise StartupFailure(_cannot_start(conf, prefix, exc)) from exc
    except Exception as exc:
        LOG.debug("traceback of the failure of storage driver %s", name, exc_info=exc)
        if driver is not None:
            _close_after_failure(driver, name)
        failure = conf_mod.exception_line(exc, qualified=True)
        raise StartupFailure(
            f"{prefix}: {origin} failed while being constructed: {failure}"
        ) from exc
    if missing:
        _close_after_failure(driver, name)
        raise StartupFailure(f"{prefix}: {contract}: {_contract_message(driver, missing)}")
    return driver, origin


def load_storage(conf: conf_mod.Config) -> StorageDriver:
    """Load (without starting) the storage driver named by ``[storage] driver``.

    Raises :class:`~myservice.conf.ConfigError` for an unknown name, a name claimed by two
    distributions or a driver that fails to import, and :class:`StartupFailure` for a driver
    that fails to construct or lacks a method of the contract
    (:data:`~myservice.storage.base.DRIVER_METHODS`).  Messages name the entry-point target
    and its distribution.
    """
    return _load_storage(conf)[0]


def build(conf: conf_mod.Config) -> ServiceContext:
    """Load and start the storage driver, make the hooks dispatcher and load the extensions.

    Raises :class:`~myservice.conf.ConfigError` (or its subclass :class:`StartupFailure`)
    with a message for the operator when the service cannot start.
    """
    storage, origin = _load_storage(conf)
    name = conf.storage.driver
    prefix = f"{_where(conf)}: [storage] driver = {name}"
    try:
        storage.start()
    except (StartupError, Unavailable) as exc:
        _close_after_failure(storage, name)
        raise StartupFailure(_cannot_start(conf, prefix, exc)) from exc
    except Exception as exc:
        LOG.debug("traceback of the failed start() of storage driver %s", name, exc_info=exc)
        _close_after_failure(storage, name)
        failure = conf_mod.exception_line(exc, qualified=True)
        raise StartupFailure(f"{prefix}: {origin} failed in start(): {failure}") from exc
    LOG.info("storage driver %s started", name)
    try:
        extensions = _make_extensions(conf)
    except BaseException:
        _close_after_failure(storage, name)
        raise
    return ServiceContext(
        conf=conf,
        storage=storage,
        hooks=_make_hooks(conf),
        extensions=extensions,
    )


def from_global_conf(global_conf: Mapping[str, Any]) -> ServiceContext:
    """The context for a Paste Deploy factory: ``global_conf["myservice.context"]`` when the
    composite put one there, else one built from :func:`myservice.conf.from_global_conf`."""
    shared = global_conf.get(CONTEXT_KEY)
    if isinstance(shared, ServiceContext):
        return shared
    return build(conf_mod.from_global_conf(global_conf))
