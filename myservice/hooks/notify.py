"""The ``notify`` hook: publishes an OpenStack-style notification per event over AMQP (kombu).

Options (``[notify]``): ``transport_url`` (kombu URL, secret), ``exchange`` (a durable topic
exchange, declared on first use), ``topic`` and ``publisher_id``.  Each event becomes one
persistent JSON message, routing key ``<topic>.info``::

    {"event_type": "user.create", "payload": {...the resource...},
     "publisher_id": "myservice.api", "message_id": "<uuid4>",
     "timestamp": "2024-05-01 12:00:00.123456", "priority": "INFO",
     "request_id": "req-...", "_context_request_id": "req-...",
     "_context_user_id": "...", "_context_project_id": "..."}

(``timestamp`` is UTC, in the format of oslo.messaging notifications.)

One connection per hook instance, shared by the request threads under a lock; it is opened
on the first event, with a connect timeout of a third of ``[hooks] timeout`` (at most 2 s) and
no retry loop: with the broker down, the event fails fast, the dispatcher logs the failure
(the URL's password masked) and the request succeeds.  A cached connection that turns out to
be dead is replaced once, within the same event.  Publishing waits for the broker's
confirmation, so a logged success means the broker has the message.

``transport_url`` is checked when the hook is built, without connecting: every
``;``-separated URL must name a kombu transport that loads here (kombu resolves it and its
client library is importable), parse (an integer port) and, for a network transport, name a
host.  Otherwise the hook fails to load with one line naming the file, the option, the URL
(password masked), what is wrong and the closest usable transport, and the service starts
without it.

The hook is off (logged once at INFO) while ``[notify] transport_url`` is empty, its default.
kombu is an optional dependency (``pip install 'myservice[notify]'``); without it the hook
fails to load with a message saying so and the service starts without it.
"""

from __future__ import annotations

import datetime as _dt
import functools
import logging
import re
import threading
import uuid
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from myservice.hooks.base import Event, Hook, HookConfigError, HookLoadError, HookNotConfigured
from myservice.suggest import closest

LOG = logging.getLogger(__name__)

__all__ = ["NotifyError", "NotifyHook", "mask_url", "url_problem"]

PRIORITY = "INFO"

#: what a working ``transport_url`` looks like, for error messages
URL_EXAMPLE = "amqp://USER:PASSWORD@HOST:5672//"

#: ``user:password@`` cut short by an unencoded ``/``, ``?`` or ``#`` in the password: the
#: password is taken to run to the last ``@``
_BROKEN_USERINFO = re.compile(
    r"^(?P<head>[^:/?#]*://)(?P<user>[^:@/?#]*):(?P<pw>.*)@(?P<rest>[^@]*)$"
)


class NotifyError(RuntimeError):
    """Publishing a notification failed; the message never contains the broker password."""


def mask_url(url: str) -> str:
    """``url`` with the password of every ``;``-separated broker URL replaced by ``***``."""
    return ";".join(_mask_one(part) for part in url.split(";"))


def _mask_one(url: str) -> str:
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unparsable URL>"
    broken = _broken_userinfo(url, parts.netloc)
    if broken is not None:
        return f"{broken['head']}{broken['user']}:***@{broken['rest']}"
    if not password:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostport}"))


def _passwords(url: str) -> list[str]:
    found: list[str] = []
    for part in url.split(";"):
        try:
            password = urlsplit(part).password
        except ValueError:
            continue
        broken = _broken_userinfo(part, urlsplit(part).netloc) if not password else None
        if broken is not None:
            password = broken["pw"]
        if password:
            found.extend({password, unquote(password)})
    return sorted(found, key=len, reverse=True)


def _broken_userinfo(url: str, netloc: str) -> re.Match[str] | None:
    """The parts of ``url`` when its password holds an unencoded ``/``, ``?`` or ``#`` (the
    parsed ``netloc`` has no ``@`` but the rest of the URL does), else ``None``."""
    if "@" in netloc or "://" not in url or "@" not in url.split("://", 1)[1]:
        return None
    return _BROKEN_USERINFO.match(url)


# -- checking transport_url (start-up only, never connects) ---------------------------------


@functools.cache
def _usable_transports() -> tuple[str, ...]:
    """The kombu transport aliases usable as a URL scheme here (kombu resolves them and their
    transport can be built), for suggestions; only computed for an error message."""
    from kombu.transport import TRANSPORT_ALIASES

    # a URL scheme is lowercased by the URL parser, so 'SQS' / 'SLMQ' are never reachable
    return tuple(
        alias
        for alias in sorted(TRANSPORT_ALIASES)
        if alias == alias.lower() and _load_transport(alias)[1] is None
    )


def _load_transport(scheme: str) -> tuple[Any, str | None]:
    """``(transport class, None)``, or ``(None, why it cannot be used here)``, resolving and
    building the transport the way kombu does (importing its client library, no connection)."""
    import kombu
    from kombu.transport import TRANSPORT_ALIASES, resolve_transport

    if scheme not in TRANSPORT_ALIASES:
        return None, f"unknown transport {scheme!r}"
    try:
        cls = resolve_transport(scheme)
        kombu.Connection(transport=cls).transport  # noqa: B018 - builds it, as kombu would
    except Exception as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        reason = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
        return None, (
            f"transport {scheme!r} is not usable here, its client library is missing or "
            f"broken ({reason})"
        )
    return cls, None


def _suggestion(scheme: str) -> str:
    usable = [alias for alias in _usable_transports() if alias != scheme]
    close = closest(scheme, usable)
    if close is not None:
        return f"; did you mean {close!r}?"
    return f"; usable transports here: {', '.join(usable)}"


def url_problem(url: str) -> str | None:
    """What is wrong with the ``transport_url`` ``url`` (one line, no password), or ``None``.

    Checks each ``;``-separated URL without connecting: a kombu transport usable here, a URL
    that parses (an integer port) and, for a network transport, a host."""
    parts = url.split(";")
    for number, part in enumerate(parts, 1):
        problem = _part_problem(part)
        if problem is not None:
            return f"URL {number} of {len(parts)}: {problem}" if len(parts) > 1 else problem
    return None


def _part_problem(url: str) -> str | None:
    if not url.strip():
        return "an empty URL"
    if "://" not in url:
        return "not a URL (no 'TRANSPORT://')"
    head = url.split("://", 1)[0].strip()
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    if _broken_userinfo(url, parts.netloc) is not None:
        return (
            "the password holds an unencoded '/', '?' or '#'; percent-encode it "
            "('%2F', '%3F', '%23')"
        )
    # 'sqla+postgresql://...': kombu takes the transport before the '+', the rest is its URL
    compound = "+" in head
    scheme = head.split("+", 1)[0] if compound else parts.scheme
    if not scheme:
        return "no transport before '://'"
    cls, problem = _load_transport(scheme)
    if cls is None:
        return f"{problem}{_suggestion(scheme)}"
    try:
        parts.port  # noqa: B018 - raises ValueError unless an integer in 0-65535
    except ValueError:
        hostport = parts.netloc.rpartition("@")[2].rpartition("]")[2]
        return f"port {hostport.partition(':')[2]!r} is not an integer from 0 to 65535"
    if not compound and cls.default_port and not parts.hostname:
        return f"no host (transport {scheme!r} connects to a server)"
    return None


class NotifyHook(Hook):
    """Publishes each event as a notification to ``[notify] exchange``."""

    name = "notify"

    def __init__(self, conf: Any) -> None:
        super().__init__(conf)
        if not conf.notify.transport_url:
            raise HookNotConfigured("[notify] transport_url is empty")
        try:
            import kombu
        except ImportError:
            raise HookLoadError(
                "the notify hook needs kombu, which is not installed: "
                "pip install 'myservice[notify]' (or turn the hook off with "
                "[hooks] disabled = notify)"
            ) from None
        self._kombu = kombu
        options = conf.notify
        for option in ("transport_url", "exchange", "topic", "publisher_id"):
            if not getattr(options, option):
                raise HookConfigError(
                    f"{conf.source('notify', option)}: [notify] {option}: expected a "
                    "non-empty value for the notify hook (or turn the hook off with "
                    "[hooks] disabled = notify)"
                )
        self.url: str = options.transport_url
        self.masked_url = mask_url(self.url)
        problem = url_problem(self.url)
        if problem is not None:
            raise HookConfigError(
                f"{conf.source('notify', 'transport_url')}: [notify] transport_url = "
                f"{self.masked_url}: {problem} (expected e.g. {URL_EXAMPLE})"
            )
        self._secrets = _passwords(self.url)
        self.exchange_name: str = options.exchange
        self.routing_key = f"{options.topic}.{PRIORITY.lower()}"
        self.publisher_id: str = options.publisher_id
        self.timeout = max(0.05, min(2.0, float(conf.hooks.timeout) / 3))
        self._exchange = kombu.Exchange(self.exchange_name, type="topic", durable=True)
        self._lock = threading.Lock()
        self._connection: Any = None
        self._producer: Any = None

    # -- the message ------------------------------------------------------------------------

    def message(self, event: Event) -> dict[str, Any]:
        """The notification body for ``event``."""
        timestamp = event.timestamp.astimezone(_dt.UTC)
        return {
            "event_type": event.name,
            "payload": event.resource,
            "publisher_id": self.publisher_id,
            "message_id": str(uuid.uuid4()),
            "timestamp": timestamp.strftime("%Y-%m-%d %H:%M:%S.%f"),
            "priority": PRIORITY,
            "request_id": event.request_id,
            "_context_request_id": event.request_id,
            "_context_user_id": event.user_id,
            "_context_project_id": event.project_id,
        }

    def __call__(self, event: Event) -> None:
        body = self.message(event)
        with self._lock:
            reused = self._producer is not None
            try:
                self._publish(body)
            except Exception as exc:
                self._reset()
                if not reused:
                    raise self._error(event, exc) from None
                LOG.info(
                    "Notify: the cached connection to %s failed (%s); reconnecting once",
                    self.masked_url,
                    self._scrub(str(exc)),
                )
                try:
                    self._publish(body)
                except Exception as exc2:
                    self._reset()
                    raise self._error(event, exc2) from None

    def _publish(self, body: dict[str, Any]) -> None:
        if self._producer is None:
            connection = self._kombu.Connection(
                self.url,
                connect_timeout=self.timeout,
                transport_options={"confirm_publish": True},
            )
            try:
                # one attempt: Connection.connect() would retry after a 2 s pause
                connection.ensure_connection(max_retries=0, timeout=self.timeout)
                producer = self._kombu.Producer(
                    connection.default_channel, exchange=self._exchange, auto_declare=False
                )
                self._exchange(connection.default_channel).declare()
            except BaseException:
                _release(connection)
                raise
            self._connection, self._producer = connection, producer
        self._producer.publish(
            body,
            routing_key=self.routing_key,
            serializer="json",
            delivery_mode=2,
            retry=False,
            timeout=self.timeout,
            confirm_timeout=self.timeout,
        )

    def _error(self, event: Event, exc: BaseException) -> NotifyError:
        detail = self._scrub(f"{type(exc).__name__}: {exc}")
        return NotifyError(
            f"cannot publish {event.name} to exchange {self.exchange_name!r} at "
            f"{self.masked_url}: {detail}"
        )

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _reset(self) -> None:
        connection, self._connection, self._producer = self._connection, None, None
        if connection is not None:
            _release(connection)

    def close(self) -> None:
        """Close the broker connection (a later event opens a new one)."""
        with self._lock:
            self._reset()


def _release(connection: Any) -> None:
    try:
        connection.release()
    except Exception:
        LOG.debug("Notify: releasing a broken connection failed", exc_info=True)
