"""Event hooks: plugins run after each committed change.

The API fires an event after every committed change: ``user.create``, ``user.update``,
``user.delete`` (API extensions may fire more).  Hooks are plugins in the entry-point
namespace ``myservice.hooks``; the **entry-point name is the event name**, so one class is
registered once per event it wants, e.g. in a third-party package's ``setup.cfg``::

    [options.entry_points]
    myservice.hooks =
        user.create = acme_hooks:SlackHook
        user.delete = acme_hooks:SlackHook

and the hook itself::

    from myservice.hooks import Event, Hook

    class SlackHook(Hook):
        name = "slack"                      # what [hooks] disabled refers to

        def __init__(self, conf):           # once per application
            super().__init__(conf)
            self.url = conf.plugin_options("slack").get("webhook_url", "")

        def __call__(self, event: Event) -> None:
            ...                             # event.name, event.resource, event.request_id...

Built in: ``audit`` (:mod:`myservice.hooks.audit`, JSON Lines file) and ``notify``
(:mod:`myservice.hooks.notify`, OpenStack-style AMQP notifications).  The full contract --
construction, ``name``, the :class:`Event` fields, the after-commit guarantees, the timeout
-- is in :mod:`myservice.hooks.base`; loading and firing in :mod:`myservice.hooks.dispatcher`.
"""

from myservice.hooks.base import (
    EVENTS,
    NAMESPACE,
    Event,
    Hook,
    HookConfigError,
    HookLoadError,
    to_jsonable,
)
from myservice.hooks.dispatcher import HookDispatcher, LoadedHook

__all__ = [
    "EVENTS",
    "NAMESPACE",
    "Event",
    "Hook",
    "HookConfigError",
    "HookDispatcher",
    "HookLoadError",
    "LoadedHook",
    "to_jsonable",
]
