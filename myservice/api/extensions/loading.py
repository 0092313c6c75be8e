"""Loading the API extensions enabled by ``[api] extensions``.

:func:`load_extensions` is what :func:`myservice.wsgi.context.build` calls: it reads
``[api] extensions`` and loads the extensions of :data:`NAMESPACE` with the plugin managers,
filtering by alias **before** anything is imported (``*``: an
:class:`~myservice.plugins.ExtensionManager` over every entry point; a list: a
:class:`~myservice.plugins.NamedExtensionManager` over those names, in the listed order).
Each class is instantiated once as ``Cls(conf)``.

:func:`myservice.wsgi.app.build_router` then calls each loaded extension's ``add_routes``;
an extension whose ``add_routes`` fails is logged and dropped there (its routes reach the
router all or none).

An extension that fails to import or to initialise is logged at ERROR (alias, entry-point
target, distribution and version, the exception; traceback at DEBUG) and left out
(:attr:`LoadedExtensions.failed`); the service starts without it.  An alias listed in
``[api] extensions`` that no installed distribution provides is a start-up
:class:`~myservice.conf.ConfigError`, and so is an enabled alias that two installed
distributions provide (as for a storage driver or a middleware plugin): which one the operator
meant cannot be guessed, and a third-party package must not replace a built-in extension by
claiming its alias.
"""

from __future__ import annotations

import datetime as _dt
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from myservice import conf as conf_mod
from myservice.plugins import ExtensionManager, NamedExtensionManager
from myservice.plugins.discovery import get_entry_points
from myservice.plugins.extension import Extension, describe_entry_point
from myservice.suggest import closest

LOG = logging.getLogger(__name__)

#: entry-point namespace of API extensions
NAMESPACE = "myservice.api.extensions"
#: the ``[api] extensions`` value meaning "every installed extension"
ALL = "*"


@dataclass
class LoadedExtensions:
    """The extensions of one application: ``records`` (``Extension`` records whose ``obj`` is
    the extension instance, in load order) and ``failed`` (alias -> why it was left out).

    Iterating yields the records, so it can stand wherever a stevedore manager would.
    """

    records: list[Extension[Any]] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Extension[Any]]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def names(self) -> list[str]:
        """The aliases of the loaded extensions, in order."""
        return [record.name for record in self.records]


def _origin(entry_point: Any) -> str:
    return describe_entry_point(entry_point)


def available_aliases() -> list[str]:
    """The aliases installed in :data:`NAMESPACE` (nothing is imported)."""
    return sorted({ep.name for ep in get_entry_points(NAMESPACE)})


def _where(conf: conf_mod.Config) -> str:
    source = conf.source("api", "extensions")
    if source == "default":
        return f"{conf.path or 'configuration'} (default)"
    return source


def _check_requested(conf: conf_mod.Config, requested: list[str]) -> None:
    existing = available_aliases()
    unknown = [alias for alias in requested if alias not in existing]
    if not unknown:
        return
    parts = []
    for alias in unknown:
        close = closest(alias, existing)
        parts.append(f"{alias!r}" + (f" (did you mean {close!r}?)" if close else ""))
    raise conf_mod.ConfigError(
        f"{_where(conf)}: [api] extensions: no such API extension "
        f"{', '.join(parts)} (installed in {NAMESPACE!r}: {', '.join(existing) or 'none'}; "
        f"use '{ALL}' for all of them, or pip-install the package providing it)"
    )


def _check_unique(conf: conf_mod.Config, requested: list[str]) -> None:
    """Raise :class:`~myservice.conf.ConfigError` when an enabled alias is provided by more
    than one installed entry point (nothing is imported)."""
    providers: dict[str, list[Any]] = {}
    for entry_point in get_entry_points(NAMESPACE):
        if ALL in requested or entry_point.name in requested:
            providers.setdefault(entry_point.name, []).append(entry_point)
    for alias, found in providers.items():
        if len(found) > 1:
            raise conf_mod.ConfigError(
                f"{_where(conf)}: [api] extensions: API extension {alias!r} is provided by "
                f"more than one installed package: {'; '.join(_origin(ep) for ep in found)} "
                "(uninstall all but one of them, or leave the alias out of [api] extensions)"
            )


def _check_description(record: Extension[Any]) -> None:
    """WARNING for each description attribute ``GET /v1/extensions`` would show wrong: an
    empty or non-string ``name`` / ``description``, an ``updated`` that is not an ISO 8601
    date or date-time.  The extension still loads: its routes work without them."""
    obj = record.obj
    for attribute in ("name", "description"):
        value = getattr(obj, attribute, None)
        if not isinstance(value, str) or not value.strip():
            LOG.warning(
                "API extension %s: %s is %r; expected a non-empty string (GET /v1/extensions "
                "shows it)",
                _origin(record.entry_point),
                attribute,
                value,
            )
    updated = getattr(obj, "updated", None)
    if not _is_iso_8601(updated):
        LOG.warning(
            "API extension %s: updated is %r; expected an ISO 8601 date or date-time such as "
            "'2024-05-01T00:00:00Z' (GET /v1/extensions shows it)",
            _origin(record.entry_point),
            updated,
        )


def _is_iso_8601(value: Any) -> bool:
    if isinstance(value, _dt.date):
        return True
    if not isinstance(value, str):
        return False
    try:
        _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def load_extensions(conf: conf_mod.Config) -> LoadedExtensions:
    """Load the extensions enabled by ``[api] extensions`` (see the module docstring).

    Raises :class:`~myservice.conf.ConfigError` for an alias that is not installed or is
    provided twice; every other failure is logged and the extension left out
    (``LoadedExtensions.failed``).
    """
    requested = list(dict.fromkeys(conf.api.extensions))
    result = LoadedExtensions()

    def on_failure(_manager: Any, entry_point: Any, exc: BaseException) -> None:
        reason = f"{type(exc).__name__}: {exc}"
        LOG.error(
            "API extension %s failed to load and is disabled: %s",
            _origin(entry_point),
            reason,
        )
        LOG.debug("traceback of API extension %s", entry_point.name, exc_info=exc)
        result.failed[entry_point.name] = reason

    common: dict[str, Any] = dict(
        invoke_on_load=True,
        invoke_args=(conf,),
        on_load_failure_callback=on_failure,
    )
    if requested:
        _check_unique(conf, requested)
    if ALL in requested:
        manager: ExtensionManager[Any] = ExtensionManager(NAMESPACE, **common)
        records = list(manager)
    elif not requested:
        LOG.info("no API extension enabled ([api] extensions is empty)")
        return result
    else:
        _check_requested(conf, requested)
        manager = NamedExtensionManager(
            NAMESPACE,
            names=requested,
            name_order=True,
            on_missing_entrypoints_callback=None,
            **common,
        )
        records = list(manager)
    for record in records:
        obj = record.obj
        alias = getattr(obj, "alias", "")
        if alias != record.name:
            if alias:
                LOG.warning(
                    "API extension %s declares alias %r; using its entry-point name %r",
                    _origin(record.entry_point),
                    alias,
                    record.name,
                )
            try:
                obj.alias = record.name
            except AttributeError:
                pass
        _check_description(record)
        result.records.append(record)
    if result.records:
        LOG.info("API extensions loaded: %s", ", ".join(result.names()))
    return result
