"""The notify hook against the real RabbitMQ (``MYSERVICE_TEST_AMQP_URL``), and with the
broker down."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import time
import uuid

import pytest

from myservice.hooks import HookDispatcher
from myservice.hooks.base import HookConfigError, HookNotConfigured
from myservice.hooks.notify import NotifyHook, mask_url

from ..conftest import unavailable
from .conftest import make_hook_conf

kombu = pytest.importorskip("kombu", reason="kombu is not installed (pip install '.[notify]')")
virtual = pytest.importorskip("kombu.transport.virtual")

AMQP_ENV = "MYSERVICE_TEST_AMQP_URL"


@pytest.fixture(scope="module")
def amqp_url() -> str:
    url = os.environ.get(AMQP_ENV, "").strip()
    if not url:
        unavailable(f"{AMQP_ENV} is not set (e.g. amqp://guest:guest@127.0.0.1:5672//)")
    try:
        with kombu.Connection(url, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:
        unavailable(f"{AMQP_ENV}={mask_url(url)} unreachable: {exc}")
    return url


@pytest.fixture
def exchange_name(amqp_url):
    name = f"myservice-test-{uuid.uuid4().hex[:8]}"
    yield name
    with kombu.Connection(amqp_url, connect_timeout=3) as conn:
        kombu.Exchange(name, type="topic")(conn.default_channel).delete()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _notify_conf(tmp_path, url, exchange="myservice", **hooks):
    return make_hook_conf(
        tmp_path,
        disabled="audit",
        notify={
            "transport_url": url,
            "exchange": exchange,
            "topic": "notifications",
            "publisher_id": "myservice.test-host",
        },
        **hooks,
    )


def _bound_queue(conn, exchange_name, routing_key="notifications.info"):
    exchange = kombu.Exchange(exchange_name, type="topic", durable=True)
    queue = kombu.Queue(
        f"q-{uuid.uuid4().hex[:8]}",
        exchange=exchange,
        routing_key=routing_key,
        exclusive=True,
        auto_delete=True,
    )
    bound = queue(conn.default_channel)
    bound.declare()
    return bound


def _get(bound, attempts=100):
    for _ in range(attempts):
        message = bound.get(no_ack=True)
        if message is not None:
            return message
        time.sleep(0.05)
    raise AssertionError("no notification arrived")


@pytest.mark.rabbitmq
def test_fire_publishes_an_openstack_notification(amqp_url, exchange_name, tmp_path):
    conf = _notify_conf(tmp_path, amqp_url, exchange_name)
    created = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
    resource = {"id": "u1", "name": "bob", "created_at": created}
    with kombu.Connection(amqp_url, connect_timeout=3) as conn:
        bound = _bound_queue(conn, exchange_name)
        with HookDispatcher(conf, events=["user.create"]) as dispatcher:
            assert [h.name for h in dispatcher.hooks("user.create")] == ["notify"]
            before = dt.datetime.now(dt.UTC).replace(tzinfo=None)
            dispatcher.fire(
                "user.create", resource, request_id="req-n1", user_id="alice", project_id="p1"
            )
            after = dt.datetime.now(dt.UTC).replace(tzinfo=None)
            message = _get(bound)
            assert message.delivery_info["routing_key"] == "notifications.info"
            assert message.delivery_info["exchange"] == exchange_name
            assert message.content_type == "application/json"
            assert message.properties.get("delivery_mode") == 2
            body = json.loads(message.body)
            assert set(body) == {
                "event_type",
                "payload",
                "publisher_id",
                "message_id",
                "timestamp",
                "priority",
                "request_id",
                "_context_request_id",
                "_context_user_id",
                "_context_project_id",
            }
            assert body["event_type"] == "user.create"
            assert body["payload"] == {
                "id": "u1",
                "name": "bob",
                "created_at": "2024-05-01T12:00:00+00:00",
            }
            assert body["publisher_id"] == "myservice.test-host"
            assert uuid.UUID(body["message_id"]).version == 4
            stamp = dt.datetime.strptime(body["timestamp"], "%Y-%m-%d %H:%M:%S.%f")
            assert before <= stamp <= after
            assert body["priority"] == "INFO"
            assert body["request_id"] == body["_context_request_id"] == "req-n1"
            assert (body["_context_user_id"], body["_context_project_id"]) == ("alice", "p1")

            # a second event reuses the connection and gets a new message id
            hook = dispatcher.hooks("user.create")[0].obj
            connection = hook._connection
            dispatcher.fire(
                "user.create", resource, request_id="req-n2", user_id="alice", project_id="p1"
            )
            second = json.loads(_get(bound).body)
            assert hook._connection is connection
            assert second["request_id"] == "req-n2"
            assert second["message_id"] != body["message_id"]


@pytest.mark.rabbitmq
def test_a_dead_cached_connection_is_replaced_once(amqp_url, exchange_name, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="myservice.hooks")
    conf = _notify_conf(tmp_path, amqp_url, exchange_name)
    with kombu.Connection(amqp_url, connect_timeout=3) as conn:
        bound = _bound_queue(conn, exchange_name)
        with HookDispatcher(conf, events=["user.update"]) as dispatcher:
            dispatcher.fire(
                "user.update", {"id": "a"}, request_id="r1", user_id=None, project_id=None
            )
            assert json.loads(_get(bound).body)["request_id"] == "r1"
            assert dispatcher.flush(30)  # the publish call has returned (confirm received)
            hook = dispatcher.hooks("user.update")[0].obj
            hook._connection.connection.sock.close()  # the broker went away and came back
            dispatcher.fire(
                "user.update", {"id": "b"}, request_id="r2", user_id=None, project_id=None
            )
            assert json.loads(_get(bound).body)["request_id"] == "r2"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("reconnecting once" in r.getMessage() for r in caplog.records)


def test_broker_down_fire_returns_and_logs_without_the_password(tmp_path, caplog):
    port = _closed_port()
    url = f"amqp://guest:Sup3rSecret@127.0.0.1:{port}//"
    conf = _notify_conf(tmp_path, url, timeout=1.0)
    caplog.set_level(logging.DEBUG)
    with HookDispatcher(conf, events=["user.delete"]) as dispatcher:
        assert [h.name for h in dispatcher.hooks("user.delete")] == ["notify"]
        result = dispatcher.fire(
            "user.delete", {"id": "u9"}, request_id="req-down", user_id="a", project_id="p"
        )
        assert result is None
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    message = errors[0].getMessage()
    assert "notify" in message and "req-down" in message and "user.delete" in message
    assert f"amqp://guest:***@127.0.0.1:{port}//" in message
    assert "Sup3rSecret" not in caplog.text  # messages and DEBUG tracebacks alike
    formatter = logging.Formatter()
    for record in caplog.records:
        if record.exc_info:
            assert "Sup3rSecret" not in formatter.formatException(record.exc_info)


def test_hook_repr_of_conf_masks_and_notify_error_is_scrubbed(tmp_path):
    url = f"amqp://guest:p%40ss@127.0.0.1:{_closed_port()}//"
    hook = NotifyHook(_notify_conf(tmp_path, url, timeout=1.0))
    assert hook.masked_url.startswith("amqp://guest:***@")
    assert hook._scrub("failed: p@ss and p%40ss") == "failed: *** and ***"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("amqp://guest:guest@127.0.0.1:5672//", "amqp://guest:***@127.0.0.1:5672//"),
        ("amqp://u:p@h1//;amqp://u:q@h2//", "amqp://u:***@h1//;amqp://u:***@h2//"),
        ("amqp://h1:5672//", "amqp://h1:5672//"),
        ("memory://", "memory://"),
    ],
)
def test_mask_url(url, masked):
    assert mask_url(url) == masked


def test_empty_option_is_a_precise_error(tmp_path):
    conf = make_hook_conf(tmp_path).with_overrides(
        "notify", {"transport_url": "amqp://guest:guest@127.0.0.1:1//", "exchange": ""}, "my.conf"
    )
    with pytest.raises(ValueError, match=r"my.conf: \[notify\] exchange: expected a non-empty"):
        NotifyHook(conf)


def test_empty_transport_url_turns_the_hook_off(tmp_path):
    with pytest.raises(HookNotConfigured, match=r"\[notify\] transport_url is empty"):
        NotifyHook(make_hook_conf(tmp_path))


# -- transport_url is checked at start-up, without connecting -----------------------------

EXPECTED = "(expected e.g. amqp://USER:PASSWORD@HOST:5672//)"


class _MissingLibTransport(virtual.Transport):
    """A transport whose client library is not installed (as kombu's consul, etcd...)."""

    def __init__(self, client, **kwargs):
        raise ImportError("Missing fakelib library (pip install fakelib)")


@pytest.fixture
def few_transports(monkeypatch):
    """kombu knows only these transports: three usable, two whose library is missing."""
    from kombu import transport

    from myservice.hooks import notify

    real = transport.TRANSPORT_ALIASES
    aliases = {name: real[name] for name in ("amqp", "pyamqp", "memory", "librabbitmq")}
    aliases["amqpx"] = lambda: _MissingLibTransport
    monkeypatch.setattr(transport, "TRANSPORT_ALIASES", aliases)
    notify._usable_transports.cache_clear()
    yield
    notify._usable_transports.cache_clear()


def _url_error(tmp_path, url):
    conf = make_hook_conf(tmp_path).with_overrides(
        "notify", {"transport_url": url, "exchange": "myservice"}, "/etc/myservice/my.conf"
    )
    with pytest.raises(HookConfigError) as info:
        NotifyHook(conf)
    message = str(info.value)
    assert "Sup3rSecret" not in message
    assert "\n" not in message
    return message


def test_unknown_transport_suggests_the_closest_usable_one(tmp_path):
    # the reported defect: kombu itself only fails on the first event, with a KeyError
    assert _url_error(tmp_path, "amqqp://guest:Sup3rSecret@127.0.0.1//") == (
        "/etc/myservice/my.conf: [notify] transport_url = amqqp://guest:***@127.0.0.1//: "
        f"unknown transport 'amqqp'; did you mean 'amqp'? {EXPECTED}"
    )


@pytest.mark.usefixtures("few_transports")
def test_unknown_transport_without_a_close_one_lists_the_usable_ones(tmp_path):
    # kombu would suggest 'librabbitmq', which is not installed: never suggested here
    assert _url_error(tmp_path, "rabbitmq://guest:Sup3rSecret@rabbit:5672//") == (
        "/etc/myservice/my.conf: [notify] transport_url = rabbitmq://guest:***@rabbit:5672//: "
        f"unknown transport 'rabbitmq'; usable transports here: amqp, memory, pyamqp {EXPECTED}"
    )


@pytest.mark.usefixtures("few_transports")
def test_transport_whose_library_is_missing(tmp_path):
    assert _url_error(tmp_path, "amqpx://guest:Sup3rSecret@rabbit//") == (
        "/etc/myservice/my.conf: [notify] transport_url = amqpx://guest:***@rabbit//: "
        "transport 'amqpx' is not usable here, its client library is missing or broken "
        "(ImportError: Missing fakelib library (pip install fakelib)); did you mean 'amqp'? "
        f"{EXPECTED}"
    )


@pytest.mark.usefixtures("few_transports")
def test_transport_that_kombu_cannot_import(tmp_path):
    try:
        import librabbitmq  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("librabbitmq is installed")
    assert _url_error(tmp_path, "librabbitmq://guest:Sup3rSecret@rabbit//") == (
        "/etc/myservice/my.conf: [notify] transport_url = librabbitmq://guest:***@rabbit//: "
        "transport 'librabbitmq' is not usable here, its client library is missing or broken "
        "(ModuleNotFoundError: No module named 'librabbitmq'); usable transports here: amqp, "
        f"memory, pyamqp {EXPECTED}"
    )


@pytest.mark.parametrize(
    ("url", "shown", "problem"),
    [
        (
            "amqp://guest:Sup3rSecret@127.0.0.1:56x2//",
            "amqp://guest:***@127.0.0.1:56x2//",
            "port '56x2' is not an integer from 0 to 65535",
        ),
        (
            "amqp://guest:Sup3rSecret@rabbit:99999//",
            "amqp://guest:***@rabbit:99999//",
            "port '99999' is not an integer from 0 to 65535",
        ),
        (
            "amqp://guest:Sup3rSecret@/",
            "amqp://guest:***@/",
            "no host (transport 'amqp' connects to a server)",
        ),
        (
            "amqp://u:Sup3rSecret@h1//;amqqp://u:Sup3rSecret@h2//",
            "amqp://u:***@h1//;amqqp://u:***@h2//",
            "URL 2 of 2: unknown transport 'amqqp'; did you mean 'amqp'?",
        ),
        ("amqp://u:Sup3rSecret@h1//;", "amqp://u:***@h1//;", "URL 2 of 2: an empty URL"),
        ("rabbit.example.org", "rabbit.example.org", "not a URL (no 'TRANSPORT://')"),
        (
            "amqp://[::1//",
            "<unparsable URL>",
            "not a valid URL (Invalid IPv6 URL)",
        ),
        (
            # an unencoded '/' cuts the password short: neither half of it is shown
            "amqp://guest:Sup3r/Secret@rabbit//",
            "amqp://guest:***@rabbit//",
            "the password holds an unencoded '/', '?' or '#'; percent-encode it "
            "('%2F', '%3F', '%23')",
        ),
    ],
)
def test_malformed_url_is_a_precise_error(tmp_path, url, shown, problem):
    assert _url_error(tmp_path, url) == (
        f"/etc/myservice/my.conf: [notify] transport_url = {shown}: {problem} {EXPECTED}"
    )
    assert "Secret" not in _url_error(tmp_path, url)


@pytest.mark.parametrize(
    "url",
    [
        "amqp://guest:guest@127.0.0.1:{port}//",
        "pyamqp://guest:guest@127.0.0.1:{port}/vhost",
        "amqp://[::1]:{port}//",
        "amqp://u:p@127.0.0.1:{port}//;amqp://u:p@127.0.0.2:{port}//",
        "memory://",
    ],
)
def test_valid_url_is_accepted_without_connecting(tmp_path, url):
    # a broker that is down (a closed port) must not stop the service: connecting stays lazy
    hook = NotifyHook(_notify_conf(tmp_path, url.format(port=_closed_port())))
    assert hook._connection is None


def test_malformed_url_is_logged_once_at_start_up_and_the_service_runs(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    conf = _notify_conf(tmp_path, "amqqp://guest:Sup3rSecret@127.0.0.1//")
    with HookDispatcher(conf, events=["user.create"]) as dispatcher:
        assert not dispatcher.hooks("user.create")
        dispatcher.fire("user.create", {"id": "u1"}, request_id="r", user_id=None, project_id=None)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].endswith(
        "HookConfigError: test [notify]: [notify] transport_url = "
        "amqqp://guest:***@127.0.0.1//: unknown transport 'amqqp'; did you mean 'amqp'? "
        f"{EXPECTED}"
    )
    assert "Sup3rSecret" not in caplog.text
