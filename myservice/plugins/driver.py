"""DriverManager: exactly one plugin, chosen by name."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from myservice.plugins.discovery import EntryPoint
from myservice.plugins.exception import NoMatches
from myservice.plugins.extension import (
    ConflictResolver,
    Extension,
    ExtensionManager,
    T,
    check_name,
    closest,
    describe_entry_point,
    error_on_conflict,
)
from myservice.plugins.named import NamedExtensionManager, warning_on_missing_entrypoint

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - typing only
    from typing import Any

__all__ = ["DriverManager", "error_on_conflict"]


class DriverManager(NamedExtensionManager[T]):
    """Load the single plugin called ``name`` from ``namespace``.

    * Only the plugin(s) called ``name`` are imported.
    * Not found: NoMatches listing the names that exist and the closest one (or saying
      the namespace is empty).  ``on_missing_entrypoints_callback`` is called first when
      given (stevedore ignores it here).
    * Several distributions provide ``name``: ``conflict_resolver`` decides; the default
      :func:`~myservice.plugins.extension.error_on_conflict` raises MultipleMatches
      naming each distribution and version.
    * A plugin that fails to import or instantiate: its exception propagates (with a note
      naming the entry point and distribution) unless ``on_load_failure_callback`` is set.
    * ``map`` exceptions propagate.

    ``.driver`` is the loaded object (``obj`` when ``invoke_on_load``, else the plugin).
    """

    _default_conflict_resolver = staticmethod(error_on_conflict)

    def __init__(
        self,
        namespace: str,
        name: str,
        invoke_on_load: bool = False,
        invoke_args: tuple[Any, ...] | None = (),
        invoke_kwds: dict[str, Any] | None = None,
        on_load_failure_callback: Callable[..., Any] | None = None,
        on_missing_entrypoints_callback: Callable[[Iterable[str]], Any] | None = (
            warning_on_missing_entrypoint
        ),
        verify_requirements: bool | None = False,
        warn_on_missing_entrypoint: bool | None = None,
        *,
        conflict_resolver: ConflictResolver | None = None,
    ) -> None:
        check_name(name, "driver name")
        if on_missing_entrypoints_callback is warning_on_missing_entrypoint:
            # NoMatches below already says everything the warning would.
            on_missing_entrypoints_callback = None
        super().__init__(
            namespace,
            [name],
            invoke_on_load=invoke_on_load,
            invoke_args=invoke_args,
            invoke_kwds=invoke_kwds,
            name_order=False,
            propagate_map_exceptions=True,
            on_load_failure_callback=on_load_failure_callback or self._default_on_load_failure,
            on_missing_entrypoints_callback=on_missing_entrypoints_callback,
            verify_requirements=verify_requirements,
            warn_on_missing_entrypoint=warn_on_missing_entrypoint,
            conflict_resolver=conflict_resolver,
        )
        self._select_driver()

    @staticmethod
    def _default_on_load_failure(
        manager: ExtensionManager[Any], ep: EntryPoint, err: BaseException
    ) -> None:
        err.add_note(
            f"while loading driver {describe_entry_point(ep)} in namespace {manager.namespace!r}"
        )
        raise err

    @classmethod
    def make_test_instance(  # type: ignore[override]
        cls,
        extension: Extension[T],
        namespace: str = "TESTING",
        propagate_map_exceptions: bool = False,
        on_load_failure_callback: Callable[..., Any] | None = None,
        verify_requirements: bool | None = False,
        *,
        conflict_resolver: ConflictResolver | None = None,
    ) -> Any:
        """A DriverManager holding the single ``extension``, without entry points."""
        o = super().make_test_instance(
            [extension],
            namespace=namespace,
            propagate_map_exceptions=propagate_map_exceptions,
            on_load_failure_callback=on_load_failure_callback,
            verify_requirements=verify_requirements,
            conflict_resolver=conflict_resolver,
        )
        o._select_driver()
        return o

    def _select_driver(self) -> None:
        name = self._names[0]
        if not self.extensions:
            raise NoMatches(self._no_driver_message(name))
        if len(self.extensions) > 1:
            chosen = self._conflict_resolver(self.namespace, name, list(self.extensions))
            self.extensions = [chosen]
            self._by_name_cache = None

    def _no_driver_message(self, name: str) -> str:
        existing = sorted(set(self.entry_points_names()))
        message = f"No {self.namespace!r} driver found, looking for {name!r}: "
        if name in existing:
            return message + "it is installed but failed to load (see the error logged above)"
        if not existing:
            return message + (
                f"namespace {self.namespace!r} has no plugins installed on sys.path; "
                f"install the distribution that provides the driver"
            )
        hint = closest(name, existing)
        message += f"available drivers: {', '.join(existing)}"
        if hint:
            message += f"; did you mean {hint!r}?"
        return message

    def __call__(self, func: Callable[..., Any], *args: Any, **kwds: Any) -> Any:
        """Call ``func(extension, *args, **kwds)`` for the driver and return its result."""
        results = self.map(func, *args, **kwds)
        return results[0] if results else None

    @property
    def driver(self) -> Any:
        """The driver: ``obj`` when it was invoked on load, otherwise the plugin itself."""
        ext = self.extensions[0]
        return ext.obj if ext.obj is not None else ext.plugin
