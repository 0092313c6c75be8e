"""HookManager: every plugin registered under one name (an event), all called."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from myservice.plugins.extension import Extension, T, check_name
from myservice.plugins.named import NamedExtensionManager

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - typing only
    from typing import Any

HookConflictResolver = Callable[
    [str, str, "list[Extension[Any]]"], "Extension[Any] | list[Extension[Any]]"
]


class HookManager(NamedExtensionManager[T]):
    """Load every plugin named ``name`` in ``namespace`` (several are expected).

    ``manager[name]`` is the list of hooks; :meth:`map` returns every hook's result.
    Only plugins called ``name`` are imported.

    :param conflict_resolver: unlike stevedore (which ignores it here), honoured: when
        more than one hook is registered it is called as
        ``resolver(namespace, name, hooks)`` and returns either one Extension (only that
        hook is kept) or a list of Extensions (those hooks are kept, in that order).
        Default None keeps every hook, in discovery order.
    :param on_missing_entrypoints_callback: called with ``{name}`` when no hook was
        loaded; default None (no hooks for an event is normal).

    Other parameters are those of :class:`~myservice.plugins.named.NamedExtensionManager`.
    """

    def __init__(
        self,
        namespace: str,
        name: str,
        invoke_on_load: bool = False,
        invoke_args: tuple[Any, ...] | None = (),
        invoke_kwds: dict[str, Any] | None = None,
        on_load_failure_callback: Callable[..., Any] | None = None,
        on_missing_entrypoints_callback: Callable[[Iterable[str]], Any] | None = None,
        verify_requirements: bool | None = False,
        warn_on_missing_entrypoint: bool | None = None,
        *,
        conflict_resolver: HookConflictResolver | None = None,
    ) -> None:
        self._hook_resolver = conflict_resolver
        super().__init__(
            namespace,
            [check_name(name, "hook name")],
            invoke_on_load=invoke_on_load,
            invoke_args=invoke_args,
            invoke_kwds=invoke_kwds,
            on_load_failure_callback=on_load_failure_callback,
            on_missing_entrypoints_callback=on_missing_entrypoints_callback,
            verify_requirements=verify_requirements,
            warn_on_missing_entrypoint=warn_on_missing_entrypoint,
        )

    @property
    def _name(self) -> str:
        return self._names[0] if self._names else ""

    def _init_plugins(self, extensions: list[Extension[T]]) -> None:
        resolver = getattr(self, "_hook_resolver", None)
        if resolver is not None and len(extensions) > 1:
            chosen = resolver(self.namespace, self._name, list(extensions))
            extensions = list(chosen) if isinstance(chosen, list | tuple) else [chosen]
        super()._init_plugins(extensions)

    def items(self) -> list[tuple[str, Extension[T]]]:  # type: ignore[override]
        """``(name, hook)`` for every hook (the name repeats)."""
        return [(e.name, e) for e in self.extensions]

    def __getitem__(self, name: str) -> list[Extension[T]]:  # type: ignore[override]
        """Every loaded hook for ``name`` (KeyError for any other name)."""
        check_name(name, "hook name")
        if name != self._name:
            raise KeyError(
                f"this HookManager loads hooks named {self._name!r} in namespace "
                f"{self.namespace!r}, not {name!r}; create HookManager({self.namespace!r}, "
                f"{name!r}) for those"
            )
        return list(self.extensions)
