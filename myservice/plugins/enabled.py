"""EnabledExtensionManager: load every plugin, keep those ``check_func`` accepts."""

from __future__ import annotations

from collections.abc import Callable

from myservice.plugins import _log
from myservice.plugins.discovery import EntryPoint
from myservice.plugins.extension import ConflictResolver, Extension, ExtensionManager, T

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - typing only
    from typing import Any

LOG = _log.getLogger(__name__)


class EnabledExtensionManager(ExtensionManager[T]):
    """Load the plugins of ``namespace`` for which ``check_func(extension)`` is true.

    ``check_func`` receives the loaded :class:`~myservice.plugins.extension.Extension`
    (so it can look at ``plugin`` or ``obj``); rejected extensions are dropped (DEBUG log).
    Other parameters are those of :class:`~myservice.plugins.extension.ExtensionManager`.
    """

    def __init__(
        self,
        namespace: str,
        check_func: Callable[[Extension[T]], bool],
        invoke_on_load: bool = False,
        invoke_args: tuple[Any, ...] | None = (),
        invoke_kwds: dict[str, Any] | None = None,
        propagate_map_exceptions: bool = False,
        on_load_failure_callback: Callable[..., Any] | None = None,
        verify_requirements: bool | None = False,
        *,
        conflict_resolver: ConflictResolver | None = None,
    ) -> None:
        if not callable(check_func):
            raise TypeError(
                f"check_func must be a callable taking an Extension and returning a bool, "
                f"got {type(check_func).__name__} {check_func!r}"
            )
        self.check_func = check_func
        super().__init__(
            namespace,
            invoke_on_load=invoke_on_load,
            invoke_args=invoke_args,
            invoke_kwds=invoke_kwds,
            propagate_map_exceptions=propagate_map_exceptions,
            on_load_failure_callback=on_load_failure_callback,
            verify_requirements=verify_requirements,
            conflict_resolver=conflict_resolver,
        )

    def _load_one_plugin(
        self,
        ep: EntryPoint,
        invoke_on_load: bool,
        invoke_args: tuple[Any, ...],
        invoke_kwds: dict[str, Any],
    ) -> Extension[T] | None:
        ext = super()._load_one_plugin(ep, invoke_on_load, invoke_args, invoke_kwds)
        if ext is not None and not self.check_func(ext):
            LOG.debug("ignoring extension %r (rejected by check_func)", ep.name)
            return None
        return ext
