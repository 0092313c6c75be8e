"""The API extension contract.

An API extension is a class registered in the ``myservice.api.extensions`` entry-point
namespace under its **alias**::

    [options.entry_points]
    myservice.api.extensions =
        user_notes = my_package.notes:UserNotesExtension

Operators choose which extensions load with ``[api] extensions`` in ``etc/myservice.conf``
(``*``, the default, for every installed one; otherwise a comma-separated list of aliases).
Extensions not listed are never imported.  An alias that is listed but not installed stops
the service at start-up with a :class:`~myservice.conf.ConfigError` naming the file, the
option, the aliases that exist and the closest one.

The contract, for extension authors:

* **Construction.** The class is instantiated **once per application** as ``Cls(conf)``, where
  ``conf`` is the service's :class:`myservice.conf.Config`.  Read your own options from a
  ``[plugin:ALIAS]`` section with ``conf.plugin_options(ALIAS)`` (raw strings: validate them
  in ``__init__``).  Keep no process-global state; anything the extension needs at request
  time (the storage driver, the hooks) comes from the ``context`` its controllers receive.
* **Description.** Class (or instance) attributes ``alias`` (the entry-point name),
  ``name`` (human name), ``description`` (one sentence) and ``updated`` (ISO 8601 date or
  date-time, e.g. ``"2024-05-01T00:00:00Z"``): ``GET /v1/extensions`` shows them.
* **Routes.** ``add_routes(router)`` is called once, at start-up, with the ``/v1``
  :class:`myservice.wsgi.router.Router` (really a recorder with the same ``add_route`` /
  ``add_routes`` methods: the routes reach the router only when ``add_routes`` returns
  normally, so a failing extension never leaves half of its routes behind).  Call
  ``router.add_route(method, path, controller, policy_rule)`` for each new resource or new
  action on an existing resource; paths are relative to ``/v1`` and use Routes' ``{var}``
  syntax.  A controller is ``controller(request, context, **path_vars) -> Reply``
  (:class:`webob.Request`, :class:`~myservice.wsgi.context.ServiceContext`,
  :class:`~myservice.wsgi.reply.Reply`); it raises :class:`~myservice.wsgi.faults.APIError` for
  a client error, and storage exceptions (``NotFound``...) become 404/409/503 in the router.
  ``add_routes`` returns ``None``.
* **Description of the routes (optional).** ``openapi_paths()`` returns the OpenAPI 3.1
  operations of the routes ``add_routes`` adds, ``{path: {method: operation}}`` with the
  same paths (relative to ``/v1``); ``GET /v1/openapi.json`` includes them.  Path parameters,
  ``tags``, ``operationId`` and the errors every ``/v1`` operation may answer are filled in;
  helpers and the shared error responses are in :mod:`myservice.api.openapi`.  A route not
  described gets a generic operation; a description of a path that is not a route is left
  out (WARNING).
* **Failure.** If importing the module, ``__init__`` or ``add_routes`` raises (any
  exception, or a route that clashes with an existing ``(method, path)``), the error is logged
  at ERROR with the extension's distribution and the service starts without it: it is not
  listed in ``/v1/extensions`` and none of its routes exist.

Reuse :func:`myservice.api.common.read_json` (body parsing and JSON Schema validation with
precise 400 messages) and :mod:`myservice.api.policy` (``READ``/``WRITE`` rules) rather than
writing your own.  :class:`~myservice.api.extensions.metadata.UserMetadataExtension` is the
built-in example; ``examples/myservice_contrib`` has a third-party one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, Protocol

from myservice.api import policy
from myservice.conf import Config

__all__ = ["APIExtension", "RouteSink"]


class RouteSink(Protocol):
    """What ``add_routes`` receives: the ``add_route`` / ``add_routes`` methods of the router."""

    def add_route(self, method: str, path: str, controller: Any, rule: policy.Rule) -> None: ...

    def add_routes(self, table: Iterable[Any]) -> None: ...


class APIExtension:
    """Base class of API extensions.  See the module docstring for the contract.

    Subclasses set :attr:`alias`, :attr:`name`, :attr:`description` and :attr:`updated`, and
    override :meth:`add_routes`.
    """

    #: the entry-point name, used in ``[api] extensions`` and ``/v1/extensions/{alias}``
    alias: ClassVar[str] = ""
    #: a human-readable name
    name: ClassVar[str] = ""
    #: one sentence saying what the extension adds
    description: ClassVar[str] = ""
    #: when the extension's API last changed, ISO 8601 (``"2024-05-01T00:00:00Z"``)
    updated: ClassVar[str] = ""

    def __init__(self, conf: Config) -> None:
        self.conf = conf

    def add_routes(self, router: RouteSink) -> None:
        """Add this extension's routes with ``router.add_route(method, path, controller,
        rule)``.  Called once at start-up; returns ``None``; may raise (the extension is
        then left out, see the module docstring)."""

    def openapi_paths(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Optional: the OpenAPI operations of this extension's routes (see the module
        docstring); the default describes none."""
        return {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} alias={self.alias!r}>"
