"""The built-in hooks, as one bundle registered under each core event.

setuptools refuses two entry points with the same name in one group of one distribution, so
myservice cannot register ``user.create = ...audit:AuditHook`` *and*
``user.create = ...notify:NotifyHook``.  It registers this tuple instead; the dispatcher runs
each class of a tuple as a hook of its own (own ``name`` for ``[hooks] disabled``, own timeout,
own error handling, instantiated once), in tuple order.  Third-party packages may do the same.
"""

from myservice.hooks.audit import AuditHook
from myservice.hooks.notify import NotifyHook

#: the built-in hooks, in the order they run: audit first (local, durable), then notify
HOOKS = (AuditHook, NotifyHook)
