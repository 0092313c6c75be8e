"""WSGI middleware: one module per Paste filter, each with a class and a ``filter_factory``.

Filters shipped here (``use = egg:myservice#NAME`` in ``api-paste.ini``):
``http_proxy_to_wsgi``, ``request_id``, ``catch_errors``, ``sizelimit``, ``auth``, ``cors``,
``access_log``.  They are plain WSGI callables (no WebOb on the request path) that read and
validate their options once, in the factory.

Plugin contract
---------------
A middleware plugin is an entry point in the namespace :data:`NAMESPACE`
(``myservice.middleware``) whose target is a Paste filter factory::

    def factory(global_conf: dict, **local_conf: str) -> Callable[[WSGIApp], WSGIApp]

* ``global_conf`` is the ``[DEFAULT]`` of ``api-paste.ini`` (plus ``here`` and ``__file__``);
  under the ``urlmap`` composite (the shipped ``api-paste.ini``) it also holds
  ``"myservice.config"`` (the parsed service configuration, a
  :class:`myservice.conf.Config`) and ``"myservice.context"`` (the
  :class:`myservice.wsgi.context.ServiceContext`), so not every value is a string.  Read it,
  never modify it.
* ``local_conf`` holds the plugin's options as strings: the options of ``[plugin:NAME]`` in
  the service configuration file (``[DEFAULT] config_file``, e.g. ``etc/myservice.conf``),
  overridden by the other options of the filter's ``[filter:...]`` section of
  ``api-paste.ini`` (``use`` and ``plugin`` excluded).  Without a service configuration
  (no composite and no ``config_file``) only the ``[filter:...]`` options are given.
* The factory validates them, raising :class:`myservice.conf.ConfigError` with a message for
  the operator (``plugin_filter_factory`` prefixes it with the ini file and the section
  unless it names the ini file already, and says which options came from ``[plugin:NAME]``),
  and returns a callable ``filter(app)`` that returns a WSGI application.  Both are called
  once, when the application is built.
* Anything else is refused with a one-line :class:`~myservice.conf.ConfigError` naming the
  ini file, the section, the plugin, its entry-point target and its distribution: a plugin
  that fails to import, a target that is not callable or does not accept
  ``(global_conf, **local_conf)``, a factory raising another exception or returning
  something not callable, a filter raising or returning something not callable.  The
  original exception is chained and its traceback logged at DEBUG.

A third-party package registers a plugin in its own metadata::

    [options.entry_points]
    myservice.middleware =
        my_filter = my_package.wsgi:filter_factory

and, once ``pip install``-ed, is usable with no new code through :func:`plugin_filter_factory`::

    [filter:my_filter]
    use = egg:myservice#plugin
    plugin = my_filter
    some_option = value        # passed to my_package.wsgi:filter_factory

with defaults for its options, if wanted, in the service configuration::

    [plugin:my_filter]
    some_option = default value

The filters of this package are registered in the same namespace, so ``plugin = request_id``
works too.
"""

from __future__ import annotations

import configparser
import inspect
import logging
import reprlib
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from myservice import conf
from myservice.conf import ConfigError, exception_line, one_line
from myservice.suggest import did_you_mean

#: entry-point namespace of middleware plugins
NAMESPACE = "myservice.middleware"

#: what a middleware plugin must be; ends every message about one that is not
CONTRACT = (
    "a paste filter factory, factory(global_conf, **local_conf), returning a callable "
    "filter(app) that returns a WSGI application"
)

LOG = logging.getLogger(__name__)


def _section_of(ini_file: str | None, name: str) -> str:
    """The ``[filter:...]`` section of ``ini_file`` whose ``plugin =`` is ``name``."""
    if ini_file:
        parser = configparser.RawConfigParser(strict=False)
        try:
            parser.read(ini_file, encoding="utf-8")
        except (configparser.Error, OSError, UnicodeDecodeError):
            parser = None
        if parser is not None:
            for section in parser.sections():
                if (
                    section.startswith("filter:")
                    and parser.has_option(section, "plugin")
                    and parser.get(section, "plugin").strip() == name
                ):
                    return f"[{section}]"
    return "[filter:...]"


def plugin_filter_factory(
    global_conf: Mapping[str, Any], plugin: str | None = None, **local_conf: str
) -> Callable[[Any], Any]:
    """Paste filter factory that loads the filter factory ``plugin`` from :data:`NAMESPACE`
    with :class:`myservice.plugins.DriverManager`, calls it with ``global_conf`` and the
    plugin's options (``[plugin:NAME]`` of the service configuration overridden by
    ``local_conf``) and returns its filter, checked once when it is applied.

    Raises :class:`~myservice.conf.ConfigError` naming the ini file and the section when
    ``plugin`` is missing, unknown (with the names that exist and the closest one), fails to
    load, or breaks the contract of the module docstring (then naming the plugin's entry-point
    target and distribution too).
    """
    from myservice.plugins import DriverManager, discovery
    from myservice.plugins.extension import describe_target

    ini_file = global_conf.get("__file__")
    where = ini_file or "api-paste.ini"
    name = (plugin or "").strip()
    if not name:
        raise ConfigError(
            f"{where} [filter:...]: 'use = egg:myservice#plugin' needs 'plugin = NAME', the "
            f"name of a filter in the {NAMESPACE!r} namespace"
        )
    entry_points = [ep for ep in discovery.get_entry_points(NAMESPACE) if ep.name == name]
    if not entry_points:
        names = sorted({ep.name for ep in discovery.get_entry_points(NAMESPACE)})
        hint = did_you_mean(name, names)
        raise ConfigError(
            f"{where} {_section_of(ini_file, name)}: plugin = {name}: no such middleware in "
            f"namespace {NAMESPACE!r}{hint} (installed: {', '.join(names) or 'none'}; "
            "a third-party filter must be pip-installed into this environment)"
        )
    head = f"{where} {_section_of(ini_file, name)}: plugin = {name}"
    try:
        extension = DriverManager(NAMESPACE, name).extensions[0]
    except Exception as exc:
        LOG.debug("middleware plugin %s failed to load", name, exc_info=True)
        targets = " or ".join(describe_target(ep) for ep in entry_points)
        raise ConfigError(
            f"{head}: the middleware plugin {targets} failed to load: {exception_line(exc)}"
        ) from exc
    factory = extension.plugin
    target = describe_target(extension.entry_point)
    if not callable(factory):
        raise ConfigError(
            f"{head}: {target} is {_what(factory)}, not callable; expected {CONTRACT}"
        )

    options, inherited = _plugin_options(global_conf, name, local_conf)
    call = _PluginCall(head, where, inherited)
    result = call(
        factory,
        target,
        "factory(global_conf, **local_conf)",
        (global_conf,),
        options,
        when="",
        gives="a callable filter",
    )

    def checked_filter(app: Any) -> Any:
        """Apply the plugin's filter once, at build time, and check it gave an application."""
        return call(
            result,
            f"the filter returned by {target}",
            "filter(app)",
            (app,),
            {},
            when=" when applied to the next application",
            gives="a WSGI application",
        )

    checked_filter.__wrapped__ = result  # type: ignore[attr-defined]
    return checked_filter


class _PluginCall:
    """Calls a middleware plugin's factory or filter once, at build time, turning every
    breach of the contract into one :class:`ConfigError` led by ``head`` (file, section,
    plugin)."""

    def __init__(self, head: str, where: str, inherited: str) -> None:
        self.head = head
        self.where = where
        self.inherited = inherited

    def __call__(
        self,
        func: Any,
        what: str,
        call: str,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        *,
        when: str,
        gives: str,
    ) -> Any:
        """``func(*args, **kwargs)``, which must accept them (``call`` shows how it is called),
        not raise (``when`` says when it ran), and return a callable (``gives`` says what it
        should be)."""
        head = self.head
        _check_call(head, what, func, call, *args, **kwargs)
        try:
            result = func(*args, **kwargs)
        except ConfigError as exc:
            _reraise_plugin_config_error(exc, self.where, head, self.inherited)
        except Exception as exc:
            LOG.debug("%s: %s raised", head, what, exc_info=True)
            raise ConfigError(
                f"{head}: {what} raised {exception_line(exc)}{when}; expected {CONTRACT} (raising "
                "myservice.conf.ConfigError for a bad option)"
            ) from exc
        if not callable(result):
            raise ConfigError(
                f"{head}: {what} returned {_what(result)}, not {gives}; expected {CONTRACT}"
            )
        return result


def _plugin_options(
    global_conf: Mapping[str, Any], name: str, local_conf: Mapping[str, str]
) -> tuple[dict[str, str], str]:
    """The options for the plugin ``name``: ``[plugin:NAME]`` of the service configuration
    overridden by ``local_conf``; and, if some came from there, ``'OPTS from FILE
    [plugin:NAME]'`` for messages ('' otherwise)."""
    cfg = _service_config(global_conf)
    defaults = cfg.plugin_options(name) if cfg is not None else {}
    inherited = sorted(k for k in defaults if k not in local_conf)
    if not inherited:
        return dict(local_conf), ""
    origin = cfg.path or "the service configuration"
    source = f"{', '.join(inherited)} from {origin} [plugin:{name}]"
    LOG.debug("middleware plugin %s: options %s", name, source)
    return {**defaults, **local_conf}, source


def _service_config(global_conf: Mapping[str, Any]) -> conf.Config | None:
    """The service configuration the filters of this application share: the composite's
    ``myservice.config`` (or its context's), else ``[DEFAULT] config_file`` loaded as the
    built-in filters do, else None."""
    from myservice.wsgi.context import CONTEXT_KEY

    shared = global_conf.get(conf.GLOBAL_CONF_KEY)
    if isinstance(shared, conf.Config):
        return shared
    shared = getattr(global_conf.get(CONTEXT_KEY), "conf", None)
    if isinstance(shared, conf.Config):
        return shared
    if global_conf.get("config_file"):
        return conf.from_global_conf(global_conf)
    return None


def _reraise_plugin_config_error(
    exc: ConfigError, where: str, head: str, inherited: str
) -> NoReturn:
    """Raise the plugin's own ConfigError ``exc``, led by the ini file and section unless it
    names the file already, and saying which options came from ``[plugin:NAME]``."""
    message = str(exc)
    if where not in message:
        message = f"{head}: {message}"
    if inherited:
        message += f" (options {inherited})"
    if message == str(exc):
        raise exc
    raise ConfigError(message) from exc


def _check_call(head: str, what: str, func: Any, call: str, *args: Any, **kwargs: Any) -> None:
    """Refuse ``func`` whose signature does not take ``(*args, **kwargs)``, before calling it
    (a TypeError from the call itself could come from anywhere inside it)."""
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):  # no signature to check (some builtins): just call it
        return
    try:
        signature.bind(*args, **kwargs)
    except TypeError as exc:
        LOG.debug("%s: %s cannot be called as %s", head, what, call, exc_info=True)
        raise ConfigError(
            f"{head}: {what} cannot be called as {call}: {one_line(exc)}; expected {CONTRACT}"
        ) from exc


def _what(obj: Any) -> str:
    if obj is None:
        return "None"
    if isinstance(obj, (bool, int, float, str, bytes)):
        return f"{reprlib.repr(obj)} (type {type(obj).__qualname__})"
    return f"an object of type {type(obj).__qualname__}"
