"""The event-hook contract: the :class:`Event` a hook receives and the :class:`Hook` base class.

A hook is a class registered in the ``myservice.hooks`` entry-point namespace under one or more
**event names** (the entry-point name is the event, e.g. ``user.create``; one class may be
registered under several events).  The contract, for third-party hook authors:

* **Construction.** The class is instantiated **once per application** as ``HookClass(conf)``,
  where ``conf`` is the service's :class:`myservice.conf.Config` -- once, even when the class is
  registered under several events.  A third-party hook reads its own options from a
  ``[plugin:NAME]`` section with ``conf.plugin_options(NAME)`` (raw strings; validate them in
  ``__init__`` and raise :class:`HookConfigError` with a precise message).  An exception raised
  by the constructor (or by importing the module) is logged with the hook's distribution and
  the service starts without that hook.
* **Name.** The class has a ``name`` class attribute (a string).  Operators disable a hook
  by that name in ``[hooks] disabled`` -- a disabled hook whose ``name`` is a class attribute is
  never instantiated.
* **Call.** ``hook(event)`` is called with an :class:`Event` for every event it is registered
  under.  The return value is ignored.
* **After the commit, after the response.** Hooks run *after* the change is committed, in the
  dispatcher's own threads: ``fire`` only queues the event, so the response does not wait for
  any hook.  Hooks cannot undo or corrupt the change: each hook gets its own deep copy of the
  resource, and every exception it raises is caught and logged (ERROR with the request id,
  event, hook name and distribution; the traceback at DEBUG).  The request still succeeds.
* **Order.** A hook receives the events of one process in the order they were fired (one queue
  and one delivery thread per hook instance), across all the events it is registered under.
  Different hooks run independently of each other.
* **Time limit.** Each call runs in a worker thread of the dispatcher's bounded pool and is
  waited for at most ``[hooks] timeout`` seconds; a slower call is abandoned (logged, left to
  finish on its own, possibly overlapping the hook's next call).  An instance may be called
  from different threads, so it must be thread-safe.  Use short timeouts for any I/O of your
  own.  A hook that falls ``[hooks] queue_size`` events behind misses further events (each one
  logged at ERROR).  The logging context variable ``myservice.log.request_id`` holds the
  event's request id during the call.
* **Batches (optional).** A hook may define ``call_batch(events)``: when two or more events
  are waiting for it, the dispatcher calls ``call_batch`` once with all of them (in order, at
  most ``myservice.hooks.dispatcher.MAX_BATCH``) instead of calling the hook once per event --
  e.g. ``audit`` writes them with one fsync.  It counts as one call for the time limit; an
  exception fails every event of the batch.
* **Durability.** Queued events are delivered on a clean shutdown (``close()``, bounded by
  ``[hooks] timeout``); a process killed with ``kill -9`` loses the events still queued.
* **Clean-up.** An optional ``close()`` method is called once when the application shuts the
  dispatcher down.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = ["Event", "Hook", "HookConfigError", "HookLoadError", "HookNotConfigured", "to_jsonable"]

#: the entry-point namespace of event hooks
NAMESPACE = "myservice.hooks"

#: the events the core API fires (extensions may fire more)
EVENTS: tuple[str, ...] = ("user.create", "user.update", "user.delete")


class HookLoadError(ImportError):
    """A hook cannot be loaded (e.g. an optional dependency is missing); the message says how
    to fix it."""


class HookConfigError(ValueError):
    """A hook's options are wrong; the message names the section, option and what was
    expected."""


class HookNotConfigured(Exception):
    """The hook is off because the option that turns it on is empty; logged at INFO, not as a
    failure (e.g. ``notify`` without ``[notify] transport_url``)."""


@dataclass(frozen=True)
class Event:
    """One committed change, as a hook sees it.

    ``name``: the event name (``user.create``, ``user.update``, ``user.delete``...).
    ``resource``: the resource after the change (for a delete, as it was before), JSON-ready
    (datetimes as ISO 8601 strings); it is the hook's own copy.
    ``request_id``: the ``req-<uuid>`` of the API request that made the change.
    ``user_id`` / ``project_id``: who made it (``None`` if unauthenticated).
    ``timestamp``: when the event was fired, a timezone-aware UTC datetime.
    """

    name: str
    resource: dict[str, Any]
    request_id: str | None
    user_id: str | None
    project_id: str | None
    timestamp: _dt.datetime

    def as_dict(self) -> dict[str, Any]:
        """The event as a JSON-ready dict (``timestamp`` as an ISO 8601 string)."""
        return {
            "event": self.name,
            "timestamp": self.timestamp.isoformat(),
            "request_id": self.request_id,
            "user_id": self.user_id,
            "project_id": self.project_id,
            "resource": to_jsonable(self.resource),
        }


class Hook:
    """Convenience base class for hooks (subclassing it is optional; the duck-typed contract of
    the module docstring is what counts).

    Subclasses set :attr:`name` and implement :meth:`__call__`.
    """

    #: the hook's name, as used by ``[hooks] disabled``
    name: ClassVar[str] = ""

    def __init__(self, conf: Any) -> None:
        self.conf = conf

    def __call__(self, event: Event) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        """Release resources; called once at shutdown.  The default does nothing."""


#: exact types that are JSON-ready as they are (subclasses take the general path)
_SCALARS = frozenset({str, int, float, bool, type(None)})


def to_jsonable(value: Any) -> Any:
    """A JSON-ready deep copy of ``value``: mappings become dicts with string keys, sequences
    and sets become lists, datetimes and dates ISO 8601 strings (aware datetimes in UTC), UUIDs
    and decimals strings, enums their value; any other non-JSON object its ``str()``."""
    cls = type(value)
    if cls in _SCALARS:
        return value
    if cls is dict:  # the common case (a resource as the API shows it), without isinstance
        return {
            k if type(k) is str else str(k): v if type(v) in _SCALARS else to_jsonable(v)
            for k, v in value.items()
        }
    return _to_jsonable(value)


def _to_jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return [to_jsonable(v) for v in items]
    if isinstance(value, _dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(_dt.UTC)
        return value.isoformat()
    if isinstance(value, _dt.date | _dt.time):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, uuid.UUID | decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
