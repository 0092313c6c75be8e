"""Who may call what: identity and role checks run by the router before every controller.

The ``auth`` filter authenticates and sets the keystonemiddleware headers
(``X-Identity-Status``, ``X-User-Id``, ``X-Project-Id``, ``X-Roles``); it does not check
roles.  This module does:

* no anonymous access to ``/v1``: without ``X-Identity-Status: Confirmed`` the answer is 401
  with ``WWW-Authenticate: Token realm="<[auth] www_authenticate_realm>"``;
* those headers count only when a filter in front vouches for them: the ``auth`` filter sets
  the environ key :data:`AUTHENTICATED_BY`, keystonemiddleware's ``auth_token`` sets
  ``keystone.token_info`` for a valid token.  A client can send headers but no such key
  (only ``HTTP_*`` keys come from the request), so a pipeline without an authenticating filter
  answers every ``/v1`` request 401 instead of trusting ``X-Roles: admin`` from anyone;
* every route names a :class:`Rule`: :data:`READ` (``reader`` or ``admin``, for GET/HEAD) or
  :data:`WRITE` (``admin``); a caller with none of the rule's roles gets 403 saying which role
  is needed.  Role names compare case-insensitively, as in oslo.policy.

API extensions use the same rules (or their own :class:`Rule`) in their route tables.
"""

from __future__ import annotations

from dataclasses import dataclass

from myservice.wsgi.faults import APIError, request_path

IDENTITY_STATUS = "HTTP_X_IDENTITY_STATUS"
ROLES = "HTTP_X_ROLES"
USER_ID = "HTTP_X_USER_ID"
PROJECT_ID = "HTTP_X_PROJECT_ID"
#: environ key an authenticating filter sets (to its own name) once it has verified the caller
#: and set the headers above
AUTHENTICATED_BY = "myservice.authenticated_by"
#: environ key keystonemiddleware's auth_token sets (the token's data) for a valid token
KEYSTONE_TOKEN_INFO = "keystone.token_info"


@dataclass(frozen=True)
class Rule:
    """A policy rule: its name (for messages and docs) and the roles, any of which grants it."""

    name: str
    roles: frozenset[str]

    def describe(self) -> str:
        names = sorted(self.roles)
        if len(names) == 1:
            return f"the {names[0]!r} role"
        return "one of the roles " + ", ".join(repr(n) for n in names)


#: reading (GET/HEAD): ``reader`` or ``admin``
READ = Rule("read", frozenset({"reader", "admin"}))
#: writing (POST/PATCH/PUT/DELETE): ``admin``
WRITE = Rule("write", frozenset({"admin"}))


def roles(environ: dict) -> frozenset[str]:
    """The caller's roles from ``X-Roles`` (comma-separated), lower-cased."""
    raw = environ.get(ROLES, "")
    return frozenset(r.strip().lower() for r in raw.split(",") if r.strip())


def authenticate(environ: dict, realm: str = "myservice") -> None:
    """Raise a 401 :class:`APIError` unless an authenticating filter (see the module
    docstring) confirmed the caller's identity."""
    status = environ.get(IDENTITY_STATUS, "")
    confirmed = status == "Confirmed" or status.strip().lower() == "confirmed"
    if not confirmed or (AUTHENTICATED_BY not in environ and not environ.get(KEYSTONE_TOKEN_INFO)):
        raise APIError(
            401,
            "Authentication required: send a valid token (X-Auth-Token); "
            "anonymous access to this API is not allowed.",
            headers=[("WWW-Authenticate", f'Token realm="{realm}"')],
        )


def authorize(environ: dict, rule: Rule) -> None:
    """Raise a 403 :class:`APIError` unless the caller has one of ``rule``'s roles."""
    raw = environ.get(ROLES, "")
    if raw in rule.roles:  # one role, already in canonical form: no parsing needed
        return
    if rule.roles.isdisjoint(roles(environ)):
        method = environ.get("REQUEST_METHOD", "")
        path = request_path(environ)
        raise APIError(
            403,
            f"{method} {path} requires {rule.describe()} (policy rule {rule.name!r}).",
        )


def enforce(environ: dict, rule: Rule, realm: str = "myservice") -> None:
    """:func:`authenticate` then :func:`authorize`."""
    authenticate(environ, realm)
    authorize(environ, rule)
