"""Start-up checks of the names an operator or a hook author can mistype, each a WARNING
(the service still starts: hooks are optional, and extensions may fire events of their own).

* ``[hooks] disabled`` naming no installed hook (``bh_gdoo`` for ``bh_good``): the hook the
  operator meant keeps running;
* a hook registered under an event the core never fires but close to one it does
  (``user.craete``): the hook never runs;
* two enabled hooks with the same ``name``: ``[hooks] disabled`` can only turn off both.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from myservice.hooks.base import EVENTS
from myservice.suggest import closest, did_you_mean

LOG = logging.getLogger(__name__)


def check(
    disabled: Collection[str],
    seen: Collection[str],
    hooks: Mapping[str, Sequence[Any]],
    instances: Iterable[Any],
) -> None:
    """Log a WARNING for each mistake of the module docstring.

    ``disabled``: the names of ``[hooks] disabled``; ``seen``: the names of every installed
    hook class (enabled, disabled or failing); ``hooks``: event name -> its enabled hooks;
    ``instances``: every enabled hook (``LoadedHook``: ``name``, ``origin``)."""
    _unknown_disabled(disabled, seen)
    _unknown_events(hooks)
    _clashes(instances)


def _unknown_disabled(disabled: Collection[str], seen: Collection[str]) -> None:
    for name in sorted(set(disabled) - set(seen)):
        LOG.warning(
            "[hooks] disabled: no installed event hook is called %r%s (installed: %s)",
            name,
            did_you_mean(name, seen),
            ", ".join(sorted(seen)) or "none",
        )


def _unknown_events(hooks: Mapping[str, Sequence[Any]]) -> None:
    for event, loaded in hooks.items():
        meant = None if event in EVENTS else closest(event, EVENTS)
        if meant is not None:
            LOG.warning(
                "Event hooks %s are registered for event %r, which the API never fires; did "
                "you mean %r? (the API fires %s; an extension may fire events of its own)",
                ", ".join(hook.origin for hook in loaded),
                event,
                meant,
                ", ".join(EVENTS),
            )


def _clashes(instances: Iterable[Any]) -> None:
    by_name: dict[str, list[Any]] = {}
    for hook in instances:
        by_name.setdefault(hook.name, []).append(hook)
    for name, same in by_name.items():
        if len(same) > 1:
            LOG.warning(
                "Event hooks %s are all called %r: [hooks] disabled = %s turns off every one "
                "of them",
                ", ".join(hook.origin for hook in same),
                name,
                name,
            )
