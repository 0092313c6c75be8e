"""NamedExtensionManager: load only the plugins whose names are listed.

Names are filtered BEFORE import: a plugin that was not asked for is never imported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from myservice.plugins import _log
from myservice.plugins.discovery import EntryPoint
from myservice.plugins.extension import (
    ConflictResolver,
    Extension,
    ExtensionManager,
    T,
    check_name,
    closest,
    warn_deprecated,
)

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - typing only
    from typing import Any

LOG = _log.getLogger(__name__)


def warning_on_missing_entrypoint(missing_names: Iterable[str]) -> None:
    """Default ``on_missing_entrypoints_callback``: log each missing name at WARNING.

    Managers replace this default by a richer message that also lists the names that
    exist in the namespace and the closest one.
    """
    LOG.warning("Could not load %s", ", ".join(sorted(missing_names)))


def _check_names(names: Any) -> list[str]:
    if isinstance(names, str):
        raise TypeError(
            f"names must be a list of plugin names, got the string {names!r}; "
            f"did you mean [{names!r}]?"
        )
    try:
        items = list(names)
    except TypeError:
        raise TypeError(
            f"names must be a list of plugin names, got {type(names).__name__} {names!r}"
        ) from None
    for item in items:
        check_name(item, "each plugin name in names")
    return items


class NamedExtensionManager(ExtensionManager[T]):
    """Load only the plugins named in ``names``.

    :param names: the plugin names to load (a list of strings).
    :param name_order: order ``extensions`` as in ``names`` (one extension per name,
        conflicts resolved by ``conflict_resolver``); otherwise discovery order.
    :param on_missing_entrypoints_callback: ``callback(missing_names: set[str])`` called
        when some names were not loaded (not installed, or failed to load).  The default
        logs a WARNING listing the names that do exist and the closest one; None disables it.
    :param warn_on_missing_entrypoint: deprecated; False silences the default callback.

    Other parameters are those of :class:`~myservice.plugins.extension.ExtensionManager`.
    """

    def __init__(
        self,
        namespace: str,
        names: Sequence[str],
        invoke_on_load: bool = False,
        invoke_args: tuple[Any, ...] | None = (),
        invoke_kwds: dict[str, Any] | None = None,
        name_order: bool = False,
        propagate_map_exceptions: bool = False,
        on_load_failure_callback: Callable[..., Any] | None = None,
        on_missing_entrypoints_callback: Callable[[Iterable[str]], Any] | None = (
            warning_on_missing_entrypoint
        ),
        verify_requirements: bool | None = False,
        warn_on_missing_entrypoint: bool | None = None,
        *,
        conflict_resolver: ConflictResolver | None = None,
    ) -> None:
        self._init_attributes(
            namespace,
            names,
            name_order=name_order,
            propagate_map_exceptions=propagate_map_exceptions,
            on_load_failure_callback=on_load_failure_callback,
            conflict_resolver=conflict_resolver,
        )
        self._check_deprecated(verify_requirements)
        if warn_on_missing_entrypoint is not None:
            warn_deprecated(
                "warn_on_missing_entrypoint is deprecated; pass "
                "on_missing_entrypoints_callback=None to silence missing-name warnings"
            )
        if warn_on_missing_entrypoint is False and (
            on_missing_entrypoints_callback is warning_on_missing_entrypoint
        ):
            on_missing_entrypoints_callback = None
        extensions = self._load_plugins(
            invoke_on_load, tuple(invoke_args or ()), dict(invoke_kwds or {})
        )
        self._missing_names = self._find_missing(extensions)
        self._init_plugins(extensions)
        if self._missing_names and on_missing_entrypoints_callback is not None:
            if on_missing_entrypoints_callback is warning_on_missing_entrypoint:
                self._warn_missing(self._missing_names)
            else:
                on_missing_entrypoints_callback(set(self._missing_names))

    def _init_test_attributes(
        self, extensions: list[Extension[T]], namespace: str, **options: Any
    ) -> None:
        # a test instance asks for exactly the names it holds
        self._init_attributes(namespace, [e.name for e in extensions], **options)

    def _init_attributes(  # type: ignore[override]
        self,
        namespace: str,
        names: Sequence[str],
        name_order: bool = False,
        propagate_map_exceptions: bool = False,
        on_load_failure_callback: Callable[..., Any] | None = None,
        conflict_resolver: ConflictResolver | None = None,
    ) -> None:
        super()._init_attributes(
            namespace,
            propagate_map_exceptions=propagate_map_exceptions,
            on_load_failure_callback=on_load_failure_callback,
            conflict_resolver=conflict_resolver,
        )
        self._names = _check_names(names)
        self._names_set = frozenset(self._names)
        self._name_order = name_order
        self._missing_names: set[str] = set()

    def _wanted(self, ep: EntryPoint) -> bool:
        return ep.name in self._names_set

    def _report_empty_namespace(self) -> None:
        # Missing names are reported by the missing-entrypoints callback instead.
        LOG.debug("namespace %r has no plugins installed on sys.path", self.namespace)

    def _load_one_plugin(
        self,
        ep: EntryPoint,
        invoke_on_load: bool,
        invoke_args: tuple[Any, ...],
        invoke_kwds: dict[str, Any],
    ) -> Extension[T] | None:
        # Kept for subclasses that call it directly: never load an unrequested name.
        if ep.name not in self._names_set:
            return None
        return super()._load_one_plugin(ep, invoke_on_load, invoke_args, invoke_kwds)

    def _find_missing(self, extensions: list[Extension[T]]) -> set[str]:
        loaded = {e.name for e in extensions}
        return {n for n in self._names if n not in loaded}

    def _init_plugins(self, extensions: list[Extension[T]]) -> None:
        super()._init_plugins(extensions)
        if self._name_order:
            by_name = self._extensions_by_name
            self.extensions = [by_name[n] for n in dict.fromkeys(self._names) if n in by_name]

    def _missing_message(self, missing: Iterable[str]) -> str:
        existing = sorted(set(self.entry_points_names()))
        parts = []
        for name in sorted(missing):
            if name in existing:
                parts.append(f"{name!r} (installed, but it failed to load; see the error above)")
                continue
            hint = closest(name, existing)
            parts.append(f"{name!r}" + (f" (did you mean {hint!r}?)" if hint else ""))
        if existing:
            available = f"available: {', '.join(existing)}"
        else:
            available = "the namespace has no plugins installed"
        return f"Could not load {', '.join(parts)} from namespace {self.namespace!r}; {available}"

    def _warn_missing(self, missing: Iterable[str]) -> None:
        LOG.warning("%s", self._missing_message(missing))
