"""``contrib_counter``: an event hook appending ``EVENT USER_ID`` lines to a file.

Registered under ``user.create`` in ``myservice.hooks``.  Configure it in
``etc/myservice.conf``::

    [plugin:contrib_counter]
    path = %(state_path)s/created-users.log

Without ``path`` the hook refuses to start (:class:`~myservice.hooks.base.HookConfigError`;
the service logs it and runs without the hook).  Disable it with
``[hooks] disabled = contrib_counter``.

The hook contract (:mod:`myservice.hooks.base`): built once as ``ContribCounter(conf)``,
called as ``hook(event)`` after the change is committed, in a worker thread (so it must be
thread-safe); its exceptions are logged, never seen by the client.  Each line is written with
one ``write`` on a file opened with ``O_APPEND``, so lines from several threads or processes do
not interleave.
"""

from __future__ import annotations

import os

from myservice.conf import Config
from myservice.hooks.base import Event, HookConfigError
from myservice_contrib._options import resolve_path, section_options

PLUGIN = "contrib_counter"


class ContribCounter:
    """Appends ``"<event name> <user id>\\n"`` to ``[plugin:contrib_counter] path``."""

    #: the name used in ``[hooks] disabled``
    name = PLUGIN

    def __init__(self, conf: Config) -> None:
        options = section_options(conf, PLUGIN, ("path",), HookConfigError)
        raw = options.get("path", "").strip()
        if not raw:
            raise HookConfigError(
                f"{conf.path or 'configuration'} [plugin:{PLUGIN}] path: required, the file "
                "to append one line per event to (e.g. %(state_path)s/created-users.log)"
            )
        self.path = resolve_path(conf, raw)

    def __call__(self, event: Event) -> None:
        line = f"{event.name} {event.resource.get('id', '-')}\n".encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
