"""The storage driver contract.

A storage driver is a plugin in the ``myservice.storage`` namespace, chosen by
``[storage] driver = NAME`` in ``etc/myservice.conf``.  Write one by subclassing
:class:`StorageDriver` and registering the class in your package's entry points::

    [options.entry_points]
    myservice.storage =
        mydriver = mypackage.driver:MyDriver

At start-up, once (:func:`myservice.wsgi.context.load_storage` and ``build``), the service
imports the entry point, calls it with the :class:`~myservice.conf.Config` (a class or a
factory), checks that the object has every method of :data:`DRIVER_METHODS` (``start``,
``close`` and the abstract methods of :class:`StorageDriver`; a duck-typed class is accepted
if it has them all, as callables), then calls ``start()``.  Anything short of that stops the
start-up with one line naming the config file, ``[storage] driver = NAME``, the entry-point
target and its distribution (name and version): a subclass that leaves abstract methods
unimplemented or an object missing methods (they are listed), or an exception other than
:class:`StartupError`/:class:`Unavailable` from the constructor or ``start()`` (its type and
message; the traceback is logged at DEBUG).  A driver constructed before the failure is
closed (``close()`` errors are logged, never shown instead of the first error).

Users are plain dicts.  What a driver receives and returns:

- ``create_user(values)`` receives ``name`` (str, 1..255 chars, unique), ``email`` (str or
  None, up to 255), ``enabled`` (bool), ``description`` (str or None, up to 1024) — already
  validated — and returns the stored user: those keys plus ``id`` (a new ``str(uuid4())``),
  ``created_at`` and ``updated_at`` (timezone-aware UTC ``datetime``; equal on creation);
  :func:`myservice.storage.common.new_user` builds exactly that record.
- ``get_user``, ``update_user`` and ``delete_user`` take the id as the client sent it (any
  string: match it verbatim, never interpret it).
- ``list_users(limit, marker, name)`` returns at most ``limit`` users in creation order (ties
  broken by id), starting after the user whose id is ``marker``; ``name`` filters by exact name.
  The order is stable across calls and processes.
- ``update_user(id, values)`` receives only the keys to change and returns the whole user with a
  new ``updated_at``.
- User metadata (the ``user_metadata`` API extension): string keys (1..255 chars) to string
  values (up to 1024) per user.  ``get_metadata(id)`` returns the dict (``NotFound`` for an
  unknown user), ``set_metadata_item(id, key, value)`` creates or replaces one key,
  ``delete_metadata_item(id, key)`` removes one (``NotFound`` if the user or key is unknown).
  Deleting a user deletes its metadata.

What a driver may raise: :class:`NotFound` (unknown id), :class:`Conflict` (duplicate name, also
under concurrent creates), :class:`MarkerNotFound` (unknown marker), :class:`Unavailable` (the
backend cannot be reached; the API answers 503 and the same process must recover once the
backend is back; set its ``nothing_written`` when a failed write certainly changed nothing),
:class:`StartupError` (from the constructor or ``start()``: misconfiguration, a missing client
library, a schema that is behind; the message is shown to the operator as is, as is that of an
:class:`Unavailable` raised there).  Any other exception is a bug: at start-up it stops the
service (see above), on a request it becomes a 500.

A driver must be safe to call from several threads at once (waitress) and, for persistent
drivers, from several processes over one database (gunicorn workers).
"""

from __future__ import annotations

import abc
from typing import Any

from myservice.conf import Config

User = dict[str, Any]


class StorageError(Exception):
    """Base class of the errors a driver raises on purpose."""


class NotFound(StorageError):
    """No resource with that id."""


class Conflict(StorageError):
    """The change would violate a uniqueness rule (duplicate name)."""


class MarkerNotFound(StorageError):
    """The ``marker`` of a list call names no resource."""


class Unavailable(StorageError):
    """The backend cannot be reached right now.

    ``nothing_written``: pass ``True`` only when the driver knows the failed call changed
    nothing (it failed before any commit was attempted), so a client may simply send the same
    write again.  Left ``False``, a failed write is reported to the client as one whose outcome
    is unknown (the commit may have reached the backend before the connection was lost), and
    it is told to check before retrying.  Reads are answered the same either way.
    """

    def __init__(self, *args: object, nothing_written: bool = False) -> None:
        super().__init__(*args)
        self.nothing_written = nothing_written


class StartupError(StorageError):
    """The driver cannot start; the message tells the operator what to do."""


class StorageDriver(abc.ABC):
    """Base class of storage drivers.  See the module docstring for the contract."""

    #: the driver's name in ``myservice.storage`` (informational)
    name: str = ""

    def __init__(self, conf: Config) -> None:
        self.conf = conf

    def start(self) -> None:  # noqa: B027 - optional hook
        """Prepare the backend (connect, check or upgrade the schema).  Called once at start-up,
        before the first request.  May raise :class:`StartupError`."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and files."""

    @abc.abstractmethod
    def check(self) -> None:
        """Raise :class:`Unavailable` when the backend cannot serve requests (health check)."""

    @abc.abstractmethod
    def create_user(self, values: User) -> User: ...

    @abc.abstractmethod
    def get_user(self, user_id: str) -> User: ...

    @abc.abstractmethod
    def list_users(
        self, limit: int, marker: str | None = None, name: str | None = None
    ) -> list[User]: ...

    @abc.abstractmethod
    def update_user(self, user_id: str, values: User) -> User: ...

    @abc.abstractmethod
    def delete_user(self, user_id: str) -> None: ...

    @abc.abstractmethod
    def get_metadata(self, user_id: str) -> dict[str, str]: ...

    @abc.abstractmethod
    def set_metadata_item(self, user_id: str, key: str, value: str) -> None: ...

    @abc.abstractmethod
    def delete_metadata_item(self, user_id: str, key: str) -> None: ...


#: The methods the service calls on a driver, in the order :class:`StorageDriver` declares
#: them: the hooks ``start`` and ``close`` and every abstract method.  A loaded driver that
#: lacks one of them (or holds something that is not callable under that name) is refused at
#: start-up (see :func:`missing_methods`).
DRIVER_METHODS: tuple[str, ...] = tuple(
    name
    for name in vars(StorageDriver)
    if name in ("start", "close") or name in StorageDriver.__abstractmethods__
)


def missing_methods(driver: object) -> list[str]:
    """The names of :data:`DRIVER_METHODS` that ``driver`` lacks or that are not callable on
    it, in :data:`DRIVER_METHODS` order (empty: ``driver`` fulfils the contract's shape)."""
    return [name for name in DRIVER_METHODS if not callable(getattr(driver, name, None))]
