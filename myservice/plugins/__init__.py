"""Stevedore-compatible plugin managers on importlib-metadata.

``from myservice.plugins import DriverManager`` and
``from myservice.plugins import driver`` both work, as with stevedore.  See
:mod:`myservice.plugins.discovery` for discovery order and the on-disk cache.
"""

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
