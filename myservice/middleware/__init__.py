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

``global_conf`` is the ``[DEFAULT]`` of ``api-paste.ini`` (plus ``here`` and ``__file__``);
``local_conf`` holds the other options of the filter's ``[filter:...]`` section as strings.
The factory validates them (raising :class:`myservice.conf.ConfigError` with a message for the
operator) and returns a function that wraps an application.  A third-party package registers
one in its own metadata::

    [options.entry_points]
    myservice.middleware =
        my_filter = my_package.wsgi:filter_factory

and, once ``pip install``-ed, is usable with no new code through :func:`plugin_filter_factory`::

    [filter:my_filter]
    use = egg:myservice#plugin
    plugin = my_filter
    some_option = value        # passed to my_package.wsgi:filter_factory

The filters of this package are registered in the same namespace, so ``plugin = request_id``
works too.
"""

from __future__ import annotations

import configparser
from collections.abc import Callable, Mapping
from typing import Any

from myservice.conf import ConfigError
from myservice.suggest import did_you_mean

#: entry-point namespace of middleware plugins
NAMESPACE = "myservice.middleware"


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
    with :class:`myservice.plugins.DriverManager` and returns what it returns for
    ``(global_conf, **local_conf)``.

    Raises :class:`~myservice.conf.ConfigError` naming the ini file and the section when
    ``plugin`` is missing, unknown (with the names that exist and the closest one) or fails to
    load.
    """
    from myservice.plugins import DriverManager, discovery

    ini_file = global_conf.get("__file__")
    where = ini_file or "api-paste.ini"
    name = (plugin or "").strip()
    if not name:
        raise ConfigError(
            f"{where} [filter:...]: 'use = egg:myservice#plugin' needs 'plugin = NAME', the "
            f"name of a filter in the {NAMESPACE!r} namespace"
        )
    names = sorted({ep.name for ep in discovery.get_entry_points(NAMESPACE)})
    if name not in names:
        hint = did_you_mean(name, names)
        raise ConfigError(
            f"{where} {_section_of(ini_file, name)}: plugin = {name}: no such middleware in "
            f"namespace {NAMESPACE!r}{hint} (installed: {', '.join(names) or 'none'}; "
            "a third-party filter must be pip-installed into this environment)"
        )
    try:
        factory = DriverManager(NAMESPACE, name).driver
    except Exception as exc:
        raise ConfigError(
            f"{where} {_section_of(ini_file, name)}: plugin = {name}: the middleware plugin "
            f"failed to load: {type(exc).__name__}: {exc}"
        ) from exc
    return factory(global_conf, **local_conf)
