"""A start-up WARNING for ``[plugin:NAME]`` sections of the service configuration that no
installed plugin is called: a mistyped ``[plugin:acme_hok]`` would otherwise leave the hook
``acme_hook`` without its options, in silence.

A plugin reads its section by its own name: a storage driver, an API extension or a
middleware plugin by its entry-point name, an event hook by its ``name`` attribute.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from myservice import conf as conf_mod
from myservice.plugins.discovery import get_entry_points
from myservice.suggest import did_you_mean

LOG = logging.getLogger(__name__)

#: the namespaces whose entry-point names are plugin names (hooks: see ``hook_names``)
NAMESPACES = ("myservice.storage", "myservice.middleware", "myservice.api.extensions")


def warn_unknown(conf: conf_mod.Config, hook_names: Iterable[str]) -> None:
    """Log a WARNING for each ``[plugin:NAME]`` of ``conf`` whose NAME is no installed
    plugin's name (``hook_names``: the names of the installed event hooks)."""
    if not conf.plugins:
        return
    names = set(hook_names)
    for namespace in NAMESPACES:
        names.update(ep.name for ep in get_entry_points(namespace))
    for name in sorted(set(conf.plugins) - names):
        LOG.warning(
            "%s [plugin:%s]: no installed plugin is called %r, so no plugin reads this section%s",
            conf.path or "configuration",
            name,
            name,
            did_you_mean(name, sorted(names)),
        )
