"""The v1 API router: a Routes ``Mapper`` over a route table declared as data.

A route is ``(method, path, controller, policy rule)`` (:class:`Route`).  :data:`ROUTES` is the
core table of ``/v1``; paths are relative to where the application is mounted (the urlmap
composite mounts it at ``/v1``, so ``/users`` answers ``/v1/users``).  Path variables use the
Routes syntax ``{name}`` and match one path segment.

Every route is connected explicitly with ``conditions=dict(method=[...])``; ``mapper.resource()``
is never used (it would add Rails ``new``/``edit``/``.:(format)`` routes).  Matching is
``mapper.routematch(url, environ)`` on the raw WSGI environ; there is no
``RoutesMiddleware``, so ``?_method=DELETE`` is never honoured.  A ``GET`` route also answers
``HEAD`` (same headers, no body).

For each request the router, in this order:

1. puts the :class:`~myservice.wsgi.context.ServiceContext` in ``environ["myservice.context"]``;
2. requires a confirmed identity (401, :func:`myservice.api.policy.authenticate`) -- except
   on the paths of routes whose rule is :data:`PUBLIC` (only ``GET /openapi.json``, the API
   description, added by :func:`myservice.wsgi.app.build_router`): those are matched and
   answered without identity and without a role check.  A ``PUBLIC`` route must have a
   literal path (no ``{var}``); the ``auth`` filter in front must let it through too
   (``[auth] public_paths``);
3. matches the path and method: an unknown path is 404, a known path with another method is
   405 with ``Allow`` listing that path's methods;
4. checks the route's policy rule (403) and that the client accepts JSON (406);
5. calls ``controller(request, context, **path_vars)`` (``request`` a ``webob.Request``;
   ``path_vars`` as text: the server's latin-1 ``PATH_INFO`` (PEP 3333) re-read as UTF-8, a
   variable that is not UTF-8 once percent-decoded is 400),
   which returns a :class:`~myservice.wsgi.reply.Reply` or raises
   :class:`~myservice.wsgi.faults.APIError`; exceptions listed in the router's ``error_map``
   (the storage exceptions, see :data:`myservice.wsgi.app.STORAGE_ERRORS`) become their
   :class:`APIError`; anything else propagates to the ``catch_errors`` filter (500).

Every error is rendered by :mod:`myservice.wsgi.faults`.

How a request is matched (fast, and still Routes' answer)
---------------------------------------------------------
The ``routes.Mapper`` built from the table stays the matcher of record: every match is decided
by a Routes route's own compiled regular expression and its ``method`` condition, as
``Route.match`` decides it.  What the router avoids is asking *every* route:
``Mapper.routematch`` first runs one regular expression made of all routes, then tries the
routes whose static prefix starts the URL (longest prefix first, then declaration order) until
one matches.  At start-up (:meth:`Router._compile`) the router computes, for every method of
the table and every literal first path segment of it, the routes ``Mapper.routematch`` could
ever return for such a request, in the order it would try them: a route is left out only if
its ``method`` condition excludes the method or its static prefix cannot begin a path with that
first segment.  A request then tries only those (``GET /users/{id}``: ``GET /users`` fails on
its regex, ``GET /users/{user_id}`` matches), each with its prefix checked first exactly as
Routes does, so the route found is the one ``routematch`` finds.  The table has already settled
the method, and every route has a ``method`` condition only and no defaults, so a route is
matched by its regular expression alone (``Route.regmatch``; the path variables are its named
groups, which is all ``Route.match`` returns for such a route, at a fifth of the cost).  Any
other request (a first segment or method the table does not name, a path not starting with
``/``) goes to ``Mapper.routematch`` itself.  Nothing depends on the path beyond its first
segment, so the table is bounded by the route table, not by traffic.
``tests/api/test_router_dispatch.py`` checks the two agree on generated paths and methods.

Adding routes from outside this module (API extensions)
-------------------------------------------------------
``Router(routes, extension_routes=more)`` takes extra routes at construction, and
:meth:`Router.add_route` / :meth:`Router.add_routes` add them later (at start-up, before the
first request).  An API extension adds its resources in its ``add_routes(router)`` method::

    from myservice.api import policy
    from myservice.wsgi.reply import Reply

    def show_metadata(req, ctx, user_id):
        return Reply(200, {"metadata": ctx.storage.get_metadata(user_id)})

    class UserMetadataExtension(Extension):
        def add_routes(self, router):
            router.add_route("GET", "/users/{user_id}/metadata", show_metadata, policy.READ)

:func:`myservice.wsgi.app.build_router` calls ``add_routes`` on each loaded extension
(``ext.obj`` of every record in ``context.extensions``) with a recorder having the same two
methods, then adds the recorded routes in one step.  Adding a ``(method, path)`` pair that
already exists raises :class:`ValueError`, naming both; a table with any bad row adds nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

import routes
import webob
from webob.acceptparse import create_accept_header

from myservice.api import extension_list, policy, users, version
from myservice.suggest import closest_path, no_resource
from myservice.wsgi import faults
from myservice.wsgi.context import CONTEXT_KEY, ServiceContext
from myservice.wsgi.reply import JSON, Reply

LOG = logging.getLogger(__name__)

#: ``controller(request, context, **path_vars) -> Reply``
Controller = Callable[..., Reply]
#: exception class -> function building the client's error from the exception and the environ
ErrorMap = Mapping[type[BaseException], Callable[[BaseException, dict], faults.APIError]]

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: Accept values naming ``application/json`` alone, as clients commonly send them
JSON_ONLY = frozenset(
    {
        JSON,
        f"{JSON}; charset=utf-8",
        f"{JSON};charset=utf-8",
        f"{JSON}; charset=UTF-8",
        f"{JSON};charset=UTF-8",
    }
)
#: Accept values that certainly admit JSON, checked without parsing
_ACCEPT_FAST = JSON_ONLY | {"", "*/*", "application/*"}


class Route(NamedTuple):
    """One row of a route table."""

    method: str
    path: str
    controller: Controller
    rule: policy.Rule


#: The core ``/v1`` routes.
ROUTES: tuple[Route, ...] = (
    Route("GET", "/", version.show_version, policy.READ),
    Route("GET", "/users", users.list_users, policy.READ),
    Route("POST", "/users", users.create_user, policy.WRITE),
    Route("GET", "/users/{user_id}", users.show_user, policy.READ),
    Route("PATCH", "/users/{user_id}", users.update_user, policy.WRITE),
    Route("DELETE", "/users/{user_id}", users.delete_user, policy.WRITE),
    Route("GET", "/extensions", extension_list.list_extensions, policy.READ),
    Route("GET", "/extensions/{alias}", extension_list.show_extension, policy.READ),
)


#: The rule of a route answered without authentication (no identity, no role needed).  The
#: explicit exception to "no anonymous access to /v1"; used only by ``GET /openapi.json``.
PUBLIC = policy.Rule("public", frozenset())


def accept_qualities(accept: str, *media_types: str) -> tuple[float, ...] | None:
    """The quality value (``0.0`` to ``1.0``) the ``Accept`` header value ``accept`` gives each
    of ``media_types`` (lower-case ``type/subtype``, without parameters), in order.

    A media type takes the ``q`` of the most specific range naming it (``type/subtype``, then
    ``type/*``, then ``*/*``; the first of equally specific ones, as WebOb decides), ``0.0``
    when none does.  Media-type parameters other than ``q`` are ignored: this service sends
    only UTF-8, and on ``application/json`` a ``charset`` has no effect (RFC 8259 section 11),
    so ``application/json; charset=utf-8`` names JSON.  ``None`` when the header states no
    preference, to be read as an absent header (RFC 9110 section 12.5.1: anything goes):
    empty, made of empty list elements only (``,,``; RFC 9110 section 5.6.1 says to ignore
    them), or not valid (as WebOb reads an invalid header)."""
    ranges = getattr(create_accept_header(accept), "parsed", None)
    if not ranges:
        return None
    bare = [(media_range.partition(";")[0].strip().lower(), q) for media_range, q, _, _ in ranges]
    return tuple(_quality(bare, media_type) for media_type in media_types)


def _quality(ranges: list[tuple[str, float]], media_type: str) -> float:
    """The ``q`` of the most specific of ``ranges`` (``(type/subtype, q)``) matching
    ``media_type``, ``0.0`` when none matches."""
    any_subtype = media_type.partition("/")[0] + "/*"
    best, rank = 0.0, 0
    for media_range, q in ranges:
        if media_range == media_type:
            specificity = 3
        elif media_range == any_subtype:
            specificity = 2
        elif media_range == "*/*":
            specificity = 1
        else:
            continue
        if specificity > rank:
            best, rank = q, specificity
    return best


def accepts_json(environ: dict) -> bool:
    """Whether the request's ``Accept`` header admits ``application/json``: no header (or one
    stating no preference) does; parameters other than ``q`` are ignored, so ``q=0`` excludes
    JSON and a ``charset`` does not (see :func:`accept_qualities`)."""
    accept = environ.get("HTTP_ACCEPT", "")
    if accept in _ACCEPT_FAST:
        return True
    qualities = accept_qualities(accept, JSON)
    return qualities is None or qualities[0] > 0


def not_acceptable(environ: dict) -> faults.APIError:
    return faults.APIError(
        406,
        f"This resource is only available as {JSON}; the Accept header "
        f"{environ.get('HTTP_ACCEPT', '')!r} excludes it.",
    )


class Router:
    """The WSGI application of ``/v1``.  See the module docstring for the request sequence.

    ``routes`` and ``extension_routes`` are iterables of :class:`Route` (or 4-tuples);
    ``error_map`` maps exception classes (looked up along the exception's MRO) to functions
    building the :class:`~myservice.wsgi.faults.APIError` to answer with.
    """

    def __init__(
        self,
        routes_: Iterable[Route | tuple] = ROUTES,
        context: ServiceContext | None = None,
        *,
        extension_routes: Iterable[Route | tuple] = (),
        error_map: ErrorMap | None = None,
    ) -> None:
        self.context = context
        self.error_map: dict[type[BaseException], Callable[[BaseException, dict], Any]] = dict(
            error_map or {}
        )
        self.realm = (
            context.conf.auth.www_authenticate_realm if context is not None else "myservice"
        )
        self._routes: list[Route] = []
        self._keys: set[tuple[str, str]] = set()
        self._public: frozenset[str] = frozenset()
        self._add(routes_)
        self._add(extension_routes)
        self._compile()

    # -- building ---------------------------------------------------------------------------

    @property
    def routes(self) -> tuple[Route, ...]:
        """Every route, in the order added."""
        return tuple(self._routes)

    def add_route(self, method: str, path: str, controller: Controller, rule: policy.Rule) -> None:
        """Add one route (call at start-up, before serving)."""
        self.add_routes([Route(method, path, controller, rule)])

    def add_routes(self, table: Iterable[Route | tuple]) -> None:
        """Add the routes of ``table`` (call at start-up, before serving)."""
        self._add(table)
        self._compile()

    def _add(self, table: Iterable[Route | tuple]) -> None:
        """Validate every row of ``table``, then add them all (or none, on an error)."""
        keys = set(self._keys)
        added: list[Route] = []
        for row in table:
            route = Route(*row)
            method = route.method.upper()
            if method not in _METHODS:
                raise ValueError(
                    f"route {route.path!r}: unknown HTTP method {route.method!r} "
                    f"(expected one of {', '.join(sorted(_METHODS))})"
                )
            if not isinstance(route.path, str) or not route.path.startswith("/"):
                raise ValueError(f"route path {route.path!r} must start with '/'")
            if not callable(route.controller):
                raise TypeError(
                    f"route {method} {route.path}: the controller must be callable, "
                    f"got {route.controller!r}"
                )
            if not isinstance(route.rule, policy.Rule):
                raise TypeError(
                    f"route {method} {route.path}: the policy rule must be a "
                    f"myservice.api.policy.Rule, got {route.rule!r}"
                )
            if route.rule is PUBLIC and "{" in route.path:
                raise ValueError(
                    f"route {method} {route.path}: a PUBLIC route needs a literal path "
                    "(no {variables})"
                )
            key = (method, route.path)
            if key in keys:
                existing = next(r for r in [*self._routes, *added] if (r.method, r.path) == key)
                raise ValueError(
                    f"route {method} {route.path} is declared twice: by "
                    f"{_qualname(existing.controller)} and {_qualname(route.controller)}"
                )
            keys.add(key)
            added.append(route._replace(method=method))
        self._keys = keys
        self._routes.extend(added)
        self._public = frozenset(r.path for r in self._routes if r.rule is PUBLIC)

    def _compile(self) -> None:
        """Build the mappers once; requests only match against them."""
        mapper = routes.Mapper(explicit=True)
        mapper.minimization = False
        specs: dict[str, Route] = {}
        methods_by_path: dict[str, list[str]] = {}
        for index, route in enumerate(self._routes):
            methods = [route.method]
            if route.method == "GET" and ("HEAD", route.path) not in self._keys:
                methods.append("HEAD")
            name = f"r{index}"
            mapper.connect(name, route.path, conditions=dict(method=methods))
            specs[name] = route
            methods_by_path.setdefault(route.path, []).extend(methods)
        mapper.create_regs([])
        any_method = routes.Mapper(explicit=True)
        any_method.minimization = False
        allow: dict[str, str] = {}
        for index, (path, methods) in enumerate(methods_by_path.items()):
            name = f"p{index}"
            any_method.connect(name, path)
            allow[name] = ", ".join(sorted(set(methods)))
        any_method.create_regs([])
        dispatch = _dispatch_table(mapper)
        # swap in one step, so a reader sees either the old or the new tables
        self._mapper, self._specs, self._any, self._allow, self._dispatch = (
            mapper,
            specs,
            any_method,
            allow,
            dispatch,
        )

    def match(self, path: str, environ: dict) -> tuple[dict, Any] | None:
        """``Mapper.routematch(path, environ)`` of the compiled table: ``(urlvars, route)``
        or ``None``; tries only the routes that can match (see the module docstring)."""
        if path[:1] == "/":
            candidates = self._dispatch.get((environ["REQUEST_METHOD"], path[1:].partition("/")[0]))
            if candidates is not None:
                for prefix, regex, route in candidates:
                    if path.startswith(prefix):
                        matched = regex(path)
                        if matched is not None:
                            return matched.groupdict(), route
                return None
        return self._mapper.routematch(path, environ)

    # -- serving ----------------------------------------------------------------------------

    def _no_match(self, path: str, environ: dict) -> faults.APIError:
        allowed: set[str] = set()
        for route in self._any.matchlist:
            if route.match(path, environ) is not False:
                allowed.update(self._allow[route.name].split(", "))
        if not allowed:
            close = closest_path(path, (route.path for route in self._routes))
            if close is not None:
                close = faults.shown_path(environ.get("SCRIPT_NAME", "") + close)
            return faults.APIError(404, no_resource(faults.request_path(environ), close))
        allow = ", ".join(sorted(allowed))
        return faults.APIError(
            405,
            f"{environ['REQUEST_METHOD']} is not allowed on {faults.request_path(environ)}; "
            f"allowed: {allow}.",
            headers=[("Allow", allow)],
        )

    def __call__(self, environ: dict, start_response: faults.StartResponse) -> Iterable[bytes]:
        environ[CONTEXT_KEY] = self.context
        try:
            path = environ.get("PATH_INFO") or "/"
            public = path in self._public
            if not public:
                policy.authenticate(environ, self.realm)
            found = self.match(path, environ)
            if found is None:
                raise self._no_match(path, environ)
            urlvars, matched = found
            for name, value in urlvars.items():
                if not value.isascii():
                    urlvars[name] = _utf8(value)
            route = self._specs[matched.name]
            if route.rule is not PUBLIC:
                if public:  # another method on a public path: identity still required
                    policy.authenticate(environ, self.realm)
                policy.authorize(environ, route.rule)
            if not accepts_json(environ):
                raise not_acceptable(environ)
            environ["wsgiorg.routing_args"] = ((), urlvars)
            reply = route.controller(webob.Request(environ), self.context, **urlvars)
        except faults.APIError as err:
            return faults.respond_error(environ, start_response, err)
        except Exception as exc:
            translate = self._translator(exc)
            if translate is None:
                raise
            return faults.respond_error(environ, start_response, translate(exc, environ))
        return reply.send(environ, start_response)

    def _translator(self, exc: BaseException) -> Callable[[BaseException, dict], Any] | None:
        for cls in type(exc).__mro__:
            translate = self.error_map.get(cls)
            if translate is not None:
                return translate
        return None


def _utf8(value: str) -> str:
    """A path variable as text: the bytes a WSGI server passes as latin-1 characters, decoded
    as UTF-8; 400 when they are not UTF-8."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        raise faults.APIError(
            400, "The request path is not valid UTF-8 once percent-decoded."
        ) from None


def _static_prefix(route: Any) -> str:
    """The static prefix by which ``Mapper.routematch`` groups a route: its leading literal
    text, with a leading ``/`` under minimization, without trailing slashes."""
    prefix = ""
    for part in route.routelist:
        if not isinstance(part, str):
            break
        prefix += part
    if route.minimization and not prefix.startswith("/"):
        prefix = "/" + prefix
    return prefix.rstrip("/")


def _dispatch_table(
    mapper: routes.Mapper,
) -> dict[tuple[str, str], tuple[tuple[str, Callable[[str], Any], Any], ...]]:
    """``(method, first path segment) -> ((prefix, regex match, route), ...)``: for each method
    named by a route's conditions (and each of :data:`_METHODS`) and each first segment that is
    literal in some route path, the routes ``mapper.routematch`` could return, in the order it
    tries them (longest static prefix first, then declaration order), each with the ``match``
    of its compiled regular expression.  For these routes that is all of ``Route.match``
    (:meth:`Router._compile` connects every route with a ``method`` condition only, no
    defaults, text paths), the method aside, which the table's key has settled."""
    ordered = sorted(
        (
            (_static_prefix(route), index, route)
            for index, route in enumerate(mapper.matchlist)
            if not route.static
        ),
        key=lambda item: (-len(item[0]), item[1]),
    )
    methods = set(_METHODS)
    segments: set[str] = set()
    for prefix, _index, route in ordered:
        methods.update((route.conditions or {}).get("method") or ())
        head, slash, _rest = prefix[1:].partition("/")
        if prefix.startswith("/") and slash:
            segments.add(head)  # "/users/..." : a first segment known in full
    for route in mapper.matchlist:
        head, slash, _rest = route.routepath.lstrip("/").partition("/")
        if not any(c in head for c in "{}:*()"):
            segments.add(head)
    table: dict[tuple[str, str], tuple[tuple[str, Any], ...]] = {}
    for method in methods:
        for segment in segments:
            first = "/" + segment
            table[(method, segment)] = tuple(
                (prefix, route.regmatch.match, route)
                for prefix, _index, route in ordered
                if _method_allowed(route, method)
                and (
                    prefix == ""
                    or prefix == first
                    or prefix.startswith(first + "/")
                    or ("/" not in prefix[1:] and first.startswith(prefix))
                )
            )
    return table


def _method_allowed(route: Any, method: str) -> bool:
    conditions = route.conditions or {}
    allowed = conditions.get("method")
    return not allowed or method in allowed


def _qualname(func: Any) -> str:
    module = getattr(func, "__module__", "?")
    return f"{module}.{getattr(func, '__qualname__', repr(func))}"
