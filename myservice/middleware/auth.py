"""``auth``: token authentication, the keystonemiddleware way.

The token comes in ``X-Auth-Token`` (or ``Authorization: Bearer <token>``) and is checked
against the token store (:mod:`myservice.tokens`, file ``[auth] token_file``, managed with
``myservice-manage token``).

* Missing, unknown, wrong, expired or revoked token: ``401`` in the error envelope with
  ``WWW-Authenticate: Token realm="<[auth] www_authenticate_realm>"``.  The answer is the same
  in every case: it says nothing about which tokens exist.
* Valid token: the identity headers a client may have sent (``X-Identity-Status``,
  ``X-User-Id``, ``X-Project-Id``, ``X-Roles``, ``X-Service-*`` and the other headers
  keystonemiddleware owns) are removed, and ``HTTP_X_IDENTITY_STATUS=Confirmed``,
  ``HTTP_X_USER_ID``, ``HTTP_X_PROJECT_ID`` and ``HTTP_X_ROLES`` (comma-separated) are set --
  what keystonemiddleware's ``auth_token`` sets, so it can replace this filter -- and
  ``myservice.authenticated_by = "auth"``, without which the API trusts none of those headers
  (:mod:`myservice.api.policy`).

* Public paths (``[auth] public_paths``, exact ``SCRIPT_NAME + PATH_INFO`` such as
  ``/v1/openapi.json``): passed on **without** checking any token and without an identity
  (client-sent identity headers are removed all the same).  The router answers such a path
  without identity only if its route is declared public
  (:data:`myservice.wsgi.router.PUBLIC`).

Authorisation (which role may do what) is the API policy layer's job, not this filter's.

The file is read at start-up and re-read when it changes; the filter looks at it (one
``stat``) at most once per :data:`RELOAD_INTERVAL` seconds, not per request.  A missing file
means no tokens (every request gets 401) and one WARNING at start-up saying how to create one.
Tokens never appear in log lines.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from myservice import tokens as token_store
from myservice.api.policy import AUTHENTICATED_BY
from myservice.conf import ConfigError
from myservice.middleware._common import service_config
from myservice.wsgi import faults

LOG = logging.getLogger(__name__)

WSGIApp = Callable[[dict, Callable[..., Any]], Iterable[bytes]]

SECTION = "auth"
#: seconds between two checks of the token file for changes
RELOAD_INTERVAL = 1.0

#: verified tokens remembered per loaded token file (see ``TokenAuth._verify``)
VERIFIED_MEMO_SIZE = 1024

UNAUTHORIZED_DETAIL = "Authentication required: send a valid token in the X-Auth-Token header."

#: identity headers only the auth filter may set (keystonemiddleware's list); as environ keys
_IDENTITY_KEYS = frozenset(
    "HTTP_X_" + name.upper().replace("-", "_")
    for name in (
        "Identity-Status",
        "Domain-Id",
        "Domain-Name",
        "Project-Id",
        "Project-Name",
        "Project-Domain-Id",
        "Project-Domain-Name",
        "User-Id",
        "User-Name",
        "User-Domain-Id",
        "User-Domain-Name",
        "Roles",
        "Is-Admin-Project",
        "System-Scope",
        "Tenant-Id",
        "Tenant-Name",
        "Tenant",
        "User",
        "Role",
        "Service-Catalog",
    )
)
_SERVICE_PREFIX = "HTTP_X_SERVICE_"


class TokenAuth:
    """The filter; see the module docstring.

    ``store`` is the :class:`~myservice.tokens.TokenStore`; ``clock`` returns monotonic
    seconds (tests pass a fake one to skip the reload interval); ``config_file`` is only
    quoted in the start-up warning about a missing token file."""

    def __init__(
        self,
        app: WSGIApp,
        store: token_store.TokenStore,
        realm: str,
        *,
        reload_interval: float = RELOAD_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        config_file: str | None = None,
        public_paths: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.public_paths = frozenset(public_paths)
        self.store = store
        self.reload_interval = reload_interval
        self._clock = clock
        self._challenge = [("WWW-Authenticate", f'Token realm="{realm}"')]
        self._lock = threading.Lock()
        stamp = store.stamp()
        self._records: Mapping[str, token_store.TokenRecord] = store.load() if stamp else {}
        self._stamp = stamp
        # the stamp of a file that failed to load (not loaded again until it changes), and
        # (stamp, error) last logged
        self._refused: tuple[int, int, int] | None = None
        self._refused_error: tuple[Any, str] | None = None
        # monotonic time before which a file that could not be read is not tried again
        self._retry_at = 0.0
        self._next_check = clock() + reload_interval
        # (the records it was filled from, {token: (record, X-Roles value)}); see _verify
        self._verified: tuple[Mapping[str, token_store.TokenRecord], dict[str, Any]] = (
            self._records,
            {},
        )
        if stamp is None:
            LOG.warning(
                "Token file %s does not exist: every API request will be answered 401 until a "
                "token is created with: myservice-manage --config-file %s token "
                "create --user-id USER --project-id PROJECT --role admin",
                store.path,
                config_file or "<myservice.conf>",
            )
        else:
            LOG.info("Loaded %d token(s) from %s", len(self._records), store.path)

    def _maybe_reload(self, now: float) -> None:
        if not self._lock.acquire(blocking=False):
            return  # another thread is at it; use the current records meanwhile
        try:
            if now < self._retry_at:
                return  # the file could not be read a moment ago: not before the interval
            self._next_check = now + self.reload_interval
            stamp = None
            try:
                stamp = self.store.stamp()
                if stamp == self._stamp or (stamp is not None and stamp == self._refused):
                    if stamp == self._stamp:
                        self._refused_error = None  # readable again: a new failure is said
                    return  # unchanged, or the same broken file as last time: said already
                records = self.store.load() if stamp else {}
            except token_store.TokenStoreError as exc:
                self._refuse(stamp, exc, now)
                return
            self._records = records
            self._stamp = stamp
            self._refused = None
            self._refused_error = None
            LOG.info("Reloaded %d token(s) from %s", len(records), self.store.path)
        finally:
            self._lock.release()

    def _refuse(self, stamp: tuple[int, int, int] | None, exc: Exception, now: float) -> None:
        """Keep the previous tokens after a failed reload; log the failure at ERROR once per
        version of the file (``stamp``) and error, not once per request: a request with an
        unknown token id asks for a reload, so any client could otherwise write a line at
        will.  A file whose content is invalid is not read again until it changes; one that
        could not be read (:class:`~myservice.tokens.TokenFileUnreadable`) is retried at the
        next reload check, not sooner (requests with unknown token ids included)."""
        error = str(exc)
        if isinstance(exc, token_store.TokenFileUnreadable):
            self._retry_at = now + self.reload_interval
        else:  # its content is at fault: not read again until it changes
            self._refused = stamp
        if (stamp, error) == self._refused_error:
            return
        self._refused_error = (stamp, error)
        LOG.error(
            "Token file not reloaded, keeping the previous tokens until it is mended "
            "(said once per change of the file): %s",
            error,
        )

    def _unknown_id(self, token: str) -> bool:
        parts = token_store.split_token(token)
        return parts is not None and parts[0] not in self._records

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        now = self._clock()
        if now >= self._next_check:
            self._maybe_reload(now)
        if (
            self.public_paths
            and (environ.get("SCRIPT_NAME", "") + (environ.get("PATH_INFO") or "/"))
            in self.public_paths
        ):
            _strip_identity(environ)
            return self.app(environ, start_response)
        token = environ.get("HTTP_X_AUTH_TOKEN")
        if not token:
            auth = environ.get("HTTP_AUTHORIZATION")
            if auth and auth[:7].lower() == "bearer ":
                token = auth[7:].strip()
        verified = self._verify(token) if token else None
        if verified is None and token and self._unknown_id(token):
            # A token created since the last reload must work at once on every worker, not
            # a second later: an id we have never seen costs one stat of the token file.
            self._maybe_reload(now)
            verified = self._verify(token)
        if verified is None:
            LOG.debug("Request %s rejected: no valid token", environ.get(faults.REQUEST_ID_KEY))
            return faults.respond(
                environ, start_response, 401, UNAUTHORIZED_DETAIL, headers=self._challenge
            )
        record, roles = verified
        _strip_identity(environ)
        environ["HTTP_X_IDENTITY_STATUS"] = "Confirmed"
        environ["HTTP_X_USER_ID"] = record.user_id
        environ["HTTP_X_PROJECT_ID"] = record.project_id
        environ["HTTP_X_ROLES"] = roles
        environ[AUTHENTICATED_BY] = "auth"
        return self.app(environ, start_response)

    def _verify(self, token: str) -> tuple[token_store.TokenRecord, str] | None:
        """``(record, X-Roles value)`` of a valid ``token``, else ``None``.

        A token that verified against the current records is remembered with them: presented
        again, it costs a look-up and the expiry/revocation check instead of a SHA-256.  The
        memo belongs to the records it was filled from, so a reload (revocation, new secret,
        removed token) starts an empty one; only verified tokens enter it, at most
        :data:`VERIFIED_MEMO_SIZE` (a full memo is emptied)."""
        records = self._records
        memo_records, memo = self._verified
        if memo_records is not records:
            memo = {}
            self._verified = (records, memo)
        known = memo.get(token)
        if known is not None:
            return known if known[0].is_valid(time.time()) else None
        record = token_store.verify(records, token)
        if record is None:
            return None
        if len(memo) >= VERIFIED_MEMO_SIZE:
            memo.clear()
        known = memo[token] = (record, ",".join(record.roles))
        return known


def _strip_identity(environ: dict) -> None:
    """Delete every identity header a client sent (they are set only by this filter)."""
    stale = environ.keys() & _IDENTITY_KEYS  # a set operation in C, no loop in Python
    try:
        # the HTTP_X_SERVICE_* headers: look for the prefix in all names at once, and walk
        # the names only when one has it (WSGI names are str; anything else: walk them)
        walk = _SERVICE_PREFIX in "\n".join(environ)
    except TypeError:
        walk = True
    if walk:
        stale.update(k for k in environ if isinstance(k, str) and k.startswith(_SERVICE_PREFIX))
    for key in stale:
        del environ[key]


def filter_factory(global_conf: Mapping[str, Any], **local_conf: str) -> Callable[[WSGIApp], Any]:
    """Paste filter factory; options ``token_file``, ``www_authenticate_realm`` and
    ``public_paths``."""
    cfg = service_config(global_conf, local_conf, SECTION)
    realm = cfg.auth.www_authenticate_realm
    if not realm or not realm.isprintable() or '"' in realm or "\\" in realm:
        raise ConfigError(
            f"{cfg.source(SECTION, 'www_authenticate_realm')}: [auth] www_authenticate_realm: "
            f"expected printable text without quotes or backslashes, got {realm!r}"
        )
    store = token_store.TokenStore(cfg.auth.token_file)
    store.load()  # a malformed file stops the start-up here, with a message naming it
    config_file = str(cfg.path) if cfg.path else None
    public_paths = cfg.auth.public_paths
    for path in public_paths:
        if not path.startswith("/"):
            raise ConfigError(
                f"{cfg.source(SECTION, 'public_paths')}: [auth] public_paths: expected "
                f"absolute paths like /v1/openapi.json, got {path!r}"
            )

    def _filter(app: WSGIApp) -> TokenAuth:
        return TokenAuth(app, store, realm, config_file=config_file, public_paths=public_paths)

    return _filter
