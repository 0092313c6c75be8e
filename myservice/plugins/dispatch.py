"""Dispatch managers: call a subset of the loaded plugins, chosen per call."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from myservice.plugins import _log
from myservice.plugins.enabled import EnabledExtensionManager
from myservice.plugins.exception import NoMatches
from myservice.plugins.extension import Extension, T, check_name

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - typing only
    from typing import Any

LOG = _log.getLogger(__name__)


class DispatchExtensionManager(EnabledExtensionManager[T]):
    """An EnabledExtensionManager whose :meth:`map` takes a per-call ``filter_func``."""

    def map(  # type: ignore[override]
        self,
        filter_func: Callable[..., bool],
        func: Callable[..., Any],
        *args: Any,
        **kwds: Any,
    ) -> list[Any]:
        """Call ``func(ext, *args, **kwds)`` for each ext with ``filter_func(ext, *args, **kwds)``.

        Raises NoMatches when the manager has no extensions at all.
        """
        if not self.extensions:
            raise NoMatches(self._no_extensions_message())
        response: list[Any] = []
        for e in self.extensions:
            if filter_func(e, *args, **kwds):
                self._invoke_one_plugin(response.append, func, e, args, kwds)
        return response

    def map_method(  # type: ignore[override]
        self, filter_func: Callable[..., bool], method_name: str, *args: Any, **kwds: Any
    ) -> list[Any]:
        """Call ``ext.obj.<method_name>(*args, **kwds)`` on each ext accepted by filter_func."""
        return self.map(filter_func, self._call_extension_method, method_name, *args, **kwds)


class NameDispatchExtensionManager(DispatchExtensionManager[T]):
    """A DispatchExtensionManager whose :meth:`map` takes the names to call.

    ``by_name`` maps each name to its extension (conflicts resolved by
    ``conflict_resolver``).  As in stevedore, names that are not loaded are skipped
    (DEBUG log) and an empty result is returned rather than raising NoMatches.
    """

    def _init_plugins(self, extensions: list[Extension[T]]) -> None:
        super()._init_plugins(extensions)
        self.by_name: dict[str, Extension[T]] = dict(self._extensions_by_name)

    def map(  # type: ignore[override]
        self, names: Sequence[str], func: Callable[..., Any], *args: Any, **kwds: Any
    ) -> list[Any]:
        """Call ``func(ext, *args, **kwds)`` for the extension of each name, in ``names`` order."""
        if isinstance(names, str):
            raise TypeError(
                f"names must be a list of plugin names, got the string {names!r}; "
                f"did you mean [{names!r}]?"
            )
        response: list[Any] = []
        for name in names:
            check_name(name)
            e = self.by_name.get(name)
            if e is None:
                LOG.debug(
                    "Missing extension %r in namespace %r being ignored", name, self.namespace
                )
                continue
            self._invoke_one_plugin(response.append, func, e, args, kwds)
        return response

    def map_method(  # type: ignore[override]
        self, names: Sequence[str], method_name: str, *args: Any, **kwds: Any
    ) -> list[Any]:
        """Call ``ext.obj.<method_name>(*args, **kwds)`` for the extension of each name."""
        return self.map(names, self._call_extension_method, method_name, *args, **kwds)
