"""Stevedore-compatible plugin managers on importlib-metadata.

``from myservice.plugins import DriverManager`` and
``from myservice.plugins import driver`` both work, as with stevedore.  See
:mod:`myservice.plugins.discovery` for discovery order and the on-disk cache.

The package imports nothing by itself: each name below is imported on first use
(module ``__getattr__``), so ``import myservice.plugins.driver`` pays only for the
driver manager and its bases, not for every manager.
"""

from __future__ import annotations

from importlib import import_module

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from myservice.plugins import (
        discovery,
        dispatch,
        driver,
        enabled,
        exception,
        extension,
        hook,
        named,
    )
    from myservice.plugins.dispatch import DispatchExtensionManager, NameDispatchExtensionManager
    from myservice.plugins.driver import DriverManager
    from myservice.plugins.enabled import EnabledExtensionManager
    from myservice.plugins.exception import MultipleMatches, NoMatches, NoUniqueMatch
    from myservice.plugins.extension import (
        Extension,
        ExtensionManager,
        error_on_conflict,
        ignore_conflicts,
    )
    from myservice.plugins.hook import HookManager
    from myservice.plugins.named import NamedExtensionManager

# public name -> the submodule defining it (a submodule maps to itself)
_LAZY = {
    "DispatchExtensionManager": "dispatch",
    "NameDispatchExtensionManager": "dispatch",
    "DriverManager": "driver",
    "EnabledExtensionManager": "enabled",
    "MultipleMatches": "exception",
    "NoMatches": "exception",
    "NoUniqueMatch": "exception",
    "Extension": "extension",
    "ExtensionManager": "extension",
    "error_on_conflict": "extension",
    "ignore_conflicts": "extension",
    "HookManager": "hook",
    "NamedExtensionManager": "named",
    "discovery": "discovery",
    "dispatch": "dispatch",
    "driver": "driver",
    "enabled": "enabled",
    "exception": "exception",
    "extension": "extension",
    "hook": "hook",
    "named": "named",
}

__all__ = [
    "DispatchExtensionManager",
    "DriverManager",
    "EnabledExtensionManager",
    "Extension",
    "ExtensionManager",
    "HookManager",
    "MultipleMatches",
    "NameDispatchExtensionManager",
    "NamedExtensionManager",
    "NoMatches",
    "NoUniqueMatch",
    "discovery",
    "dispatch",
    "driver",
    "enabled",
    "error_on_conflict",
    "exception",
    "extension",
    "hook",
    "ignore_conflicts",
    "named",
]


def __getattr__(name: str) -> object:
    """Import the submodule providing ``name`` on first access (PEP 562)."""
    try:
        module_name = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    module = import_module(f"{__name__}.{module_name}")
    value = module if module_name == name else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
