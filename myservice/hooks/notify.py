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

The hook is off (logged once at INFO) while ``[notify] transport_url`` is empty, its default.
kombu is an optional dependency (``pip install 'myservice[notify]'``); without it the hook
fails to load with a message saying so and the service starts without it.
"""

from __future__ import annotations

import datetime as _dt
import logging
import threading
import uuid
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from myservice.hooks.base import Event, Hook, HookConfigError, HookLoadError, HookNotConfigured

LOG = logging.getLogger(__name__)

__all__ = ["NotifyError", "NotifyHook", "mask_url"]

PRIORITY = "INFO"


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
        if password:
            found.extend({password, unquote(password)})
    return sorted(found, key=len, reverse=True)


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
