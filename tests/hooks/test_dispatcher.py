"""HookDispatcher: loading (order, once per application, disabled, failures) and firing
(asynchronous delivery, per-hook order, batches, bounded queues, copies, failures, timeouts,
draining at close) with fake hook distributions on sys.path.

Delivery is asynchronous: the tests wait for it with ``dispatcher.flush()`` or ``close()``
(leaving the ``with`` block), or with the threading.Events of the hooks -- never with sleeps."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import sys
import threading

import pytest

from myservice import log as mlog
from myservice.hooks import Event, HookDispatcher, HookLoadError
from myservice.plugins import HookManager
from myservice.plugins.extension import Extension

HOOKS = """
import threading

from myservice import log as mlog

CALLS = []
BUILT = []
RELEASE = threading.Event()
STARTED = threading.Event()
FINISHED = threading.Event()


class Recorder:
    name = "recorder"

    def __init__(self, conf):
        BUILT.append(type(self).__name__)
        self.conf = conf

    def __call__(self, event):
        CALLS.append((self.name, event, mlog.request_id.get()))


class First(Recorder):
    name = "first"


class Second(Recorder):
    name = "second"


class Third(Recorder):
    name = "third"


class Mutator(Recorder):
    name = "mutator"

    def __call__(self, event):
        super().__call__(event)
        event.resource["name"] = "changed"
        event.resource["tags"].append("mutated")


class Failing(Recorder):
    name = "failing"

    def __call__(self, event):
        super().__call__(event)
        raise RuntimeError("boom in hook")


class Slow(Recorder):
    name = "slow"

    def __call__(self, event):
        super().__call__(event)
        STARTED.set()
        RELEASE.wait(30)
        FINISHED.set()


class BrokenInit(Recorder):
    name = "brokeninit"

    def __init__(self, conf):
        raise ValueError("[plugin:brokeninit] url: expected a URL")


class Unnamed:
    def __init__(self, conf):
        BUILT.append("Unnamed")

    def __call__(self, event):
        CALLS.append(("unnamed", event, None))


class Closing(Recorder):
    name = "closing"
    CLOSED = []

    def close(self):
        Closing.CLOSED.append(self)


class Batcher(Recorder):
    # its first single call blocks until RELEASE; records the request ids of every call

    name = "batcher"
    BATCHES = []

    def __call__(self, event):
        Batcher.BATCHES.append([event.request_id])
        STARTED.set()
        RELEASE.wait(30)

    def call_batch(self, events):
        Batcher.BATCHES.append([e.request_id for e in events])


BUNDLE = (Second, Third)
"""


@pytest.fixture
def mod(site):
    name = site.module("hooks", HOOKS)
    return site, name


@contextlib.contextmanager
def _released_then_closed(dispatcher, hooks):
    """Whatever the block does (even a failed assertion): unblock the test hooks waiting on
    ``hooks.RELEASE``, then close ``dispatcher``, so no test leaves a blocked thread behind."""
    try:
        yield dispatcher
    finally:
        hooks.RELEASE.set()
        dispatcher.close()


def _fire(dispatcher, event="fake.commit", resource=None, request_id="req-42"):
    dispatcher.fire(
        event,
        resource if resource is not None else {"id": "u1"},
        request_id=request_id,
        user_id="alice",
        project_id="proj",
    )


def test_hooks_run_in_discovery_order_and_get_the_event(mod, hook_conf, tmp_path):
    site, name = mod
    site.install("bbb-hooks", "2.0", [("fake.commit", "{mod}hooks:Second")])
    site.install("aaa-hooks", "1.0", [("fake.commit", "{mod}hooks:First")])
    hooks = site.imported("hooks")
    with HookDispatcher(hook_conf(tmp_path), events=["fake.commit"]) as dispatcher:
        assert [h.name for h in dispatcher.hooks("fake.commit")] == ["first", "second"]
        assert [(h.distribution, h.version) for h in dispatcher.hooks("fake.commit")] == [
            ("aaa-hooks", "1.0"),
            ("bbb-hooks", "2.0"),
        ]
        _fire(dispatcher)
        assert dispatcher.flush(30)
    # each hook has its own delivery thread: both ran, in no particular order between them
    assert sorted(c[0] for c in hooks.CALLS) == ["first", "second"]
    event = next(c[1] for c in hooks.CALLS if c[0] == "first")
    assert isinstance(event, Event)
    assert event.name == "fake.commit"
    assert event.resource == {"id": "u1"}
    assert (event.request_id, event.user_id, event.project_id) == ("req-42", "alice", "proj")
    assert event.timestamp.tzinfo is not None
    assert event.timestamp.utcoffset() == dt.timedelta(0)
    # the hook threads see the request id in the logging context variable
    assert [c[2] for c in hooks.CALLS] == ["req-42", "req-42"]
    with pytest.raises(AttributeError):
        event.name = "other"  # frozen


def test_events_default_to_every_name_in_the_namespace(mod, hook_conf, tmp_path):
    site, _ = mod
    site.install("aaa-hooks", "1.0", [("fake.one", "{mod}hooks:First")])
    site.install("bbb-hooks", "1.0", [("fake.two", "{mod}hooks:Second")])
    conf = hook_conf(tmp_path, disabled="audit, notify")
    with HookDispatcher(conf) as dispatcher:
        assert {"fake.one", "fake.two"} <= set(dispatcher.events)
        assert [h.name for h in dispatcher.hooks("fake.two")] == ["second"]


def test_class_under_several_events_is_instantiated_once(mod, hook_conf, tmp_path):
    site, _ = mod
    site.install(
        "aaa-hooks",
        "1.0",
        [("fake.create", "{mod}hooks:First"), ("fake.delete", "{mod}hooks:First")],
    )
    hooks = site.imported("hooks")
    with HookDispatcher(hook_conf(tmp_path), events=["fake.create", "fake.delete"]) as d:
        assert hooks.BUILT == ["First"]
        assert d.hooks("fake.create")[0].obj is d.hooks("fake.delete")[0].obj
        assert d.hooks("fake.create")[0].obj.conf is d.conf
        _fire(d, "fake.create")
        _fire(d, "fake.delete")
    assert [c[1].name for c in hooks.CALLS] == ["fake.create", "fake.delete"]


def test_bundle_members_are_separate_hooks(mod, hook_conf, tmp_path):
    site, _ = mod
    site.install("aaa-hooks", "1.0", [("fake.commit", "{mod}hooks:BUNDLE")])
    hooks = site.imported("hooks")
    with HookDispatcher(hook_conf(tmp_path, disabled="third"), events=["fake.commit"]) as d:
        loaded = d.hooks("fake.commit")
        assert [h.name for h in loaded] == ["second"]
        assert loaded[0].target.endswith("hooks:Second")
        _fire(d)
    assert hooks.BUILT == ["Second"]
    assert [c[0] for c in hooks.CALLS] == ["second"]


def test_disabled_hook_is_neither_instantiated_nor_called(mod, hook_conf, tmp_path, caplog):
    site, _ = mod
    site.install("aaa-hooks", "1.0", [("fake.commit", "{mod}hooks:First")])
    site.install("bbb-hooks", "1.0", [("fake.commit", "{mod}hooks:Second")])
    hooks = site.imported("hooks")
    caplog.set_level(logging.INFO, logger="myservice.hooks")
    conf = hook_conf(tmp_path, disabled="first")
    with HookDispatcher(conf, events=["fake.commit"]) as d:
        assert [h.name for h in d.hooks("fake.commit")] == ["second"]
        _fire(d)
    assert hooks.BUILT == ["Second"]
    assert [c[0] for c in hooks.CALLS] == ["second"]
    assert any("first" in r.getMessage() and "disabled" in r.getMessage() for r in caplog.records)


def test_every_hook_disabled_makes_fire_a_no_op(mod, hook_conf, tmp_path):
    site, _ = mod
    site.install("aaa-hooks", "1.0", [("fake.commit", "{mod}hooks:First")])
    hooks = site.imported("hooks")
    with HookDispatcher(hook_conf(tmp_path, disabled="first"), events=["fake.commit"]) as d:
        assert d.events == []
        _fire(d)
        _fire(d, "never.registered")
    assert hooks.CALLS == []


def test_hook_without_name_attribute_runs_under_its_target(mod, hook_conf, tmp_path, caplog):
    site, _ = mod
    site.install("aaa-hooks", "1.0", [("fake.commit", "{mod}hooks:Unnamed")])
    hooks = site.imported("hooks")
    with HookDispatcher(hook_conf(tmp_path), events=["fake.commit"]) as d:
        (loaded,) = d.hooks("fake.commit")
        assert loaded.name.endswith("hooks:Unnamed")
        _fire(d)
    assert [c[0] for c in hooks.CALLS] == ["unnamed"]
    assert any("no 'name' attribute" in r.getMessage() for r in caplog.records)


def test_each_hook_gets_its_own_json_ready_copy(mod, hook_conf, tmp_path):
    site, _ = mod
    site.install("aaa-hooks", "1.0", [("fake.commit", "{mod}hooks:Mutator")])
    site.install("bbb-hooks", "1.0", [("fake.commit", "{mod}hooks:Second")])
    hooks = site.imported("hooks")
    created = dt.datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=dt.UTC)
    resource = {"id": "u1", "name": "bob", "tags": ["a"], "created_at": created}
    with HookDispatcher(hook_conf(tmp_path), events=["fake.commit"]) as d:
        _fire(d, resource=resource)
    assert resource == {"id": "u1", "name": "bob", "tags": ["a"], "created_at": created}
    by_name = {c[0]: c[1] for c in hooks.CALLS}
    assert by_name["mutator"].resource["name"] == "changed"
    assert by_name["second"].resource == {
        "id": "u1",
        "name": "bob",
        "tags": ["a"],
        "created_at": "2024-05-01T12:00:00.123456+00:00",
    }


def test_failing_hook_is_logged_and_the_next_one_runs(mod, hook_conf, tmp_path, caplog):
    site, _ = mod
    site.install("aaa-hooks", "1.0", [("fake.commit", "{mod}hooks:Failing")])
    # the same class registered again by another distribution still runs once
    site.install("bbb-hooks", "3.1", [("fake.commit", "{mod}hooks:Failing")])
    site.install("ccc-hooks", "1.0", [("fake.commit", "{mod}hooks:Second")])
    hooks = site.imported("hooks")
    caplog.set_level(logging.DEBUG, logger="myservice.hooks")
    with HookDispatcher(hook_conf(tmp_path), events=["fake.commit"]) as d:
        assert _fire(d, request_id="req-failing") is None
    assert sorted(c[0] for c in hooks.CALLS) == ["failing", "second"]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    message = errors[0].getMessage()
    for expected in ("req-failing", "fake.commit", "failing", "aaa-hooks", "1.0", "boom in hook"):
        assert expected in message
    assert errors[0].request_id == "req-failing"
    assert errors[0].exc_info is None  # the traceback goes to DEBUG only
    debug = [r for r in caplog.records if r.levelno == logging.DEBUG and r.exc_info]
    assert debug and isinstance(debug[0].exc_info[1], RuntimeError)


def test_fire_returns_while_a_hook_is_still_blocked(mod, hook_conf, tmp_path):
    site, _ = mod
    site.install("aaa-hooks", "1.0", [("fake.commit", "{mod}hooks:Slow")])
    hooks = site.imported("hooks")
    dispatcher = HookDispatcher(hook_conf(tmp_path, timeout=60), events=["fake.commit"])
    with _released_then_closed(dispatcher, hooks):
        _fire(dispatcher, request_id="req-blocked")
        # fire() has returned; the hook is running in the dispatcher's thread, still blocked
        assert hooks.STARTED.wait(30)
        assert not hooks.FINISHED.is_set()
        assert not dispatcher.flush(0)  # not delivered yet
        hooks.RELEASE.set()
        assert dispatcher.flush(30)
        assert hooks.FINISHED.is_set()
        assert [(c[0], c[1].request_id, c[2]) for c in hooks.CALLS] == [
            ("slow", "req-blocked", "req-blocked")
        ]


def test_slow_hook_is_abandoned_and_others_still_run(mod, hook_conf, tmp_path, caplog):
    site, _ = mod
    site.install("aaa-hooks", "1.0", [("fake.commit", "{mod}hooks:Slow")])
    site.install("bbb-hooks", "1.0", [("fake.commit", "{mod}hooks:Second")])
    hooks = site.imported("hooks")
    caplog.set_level(logging.INFO, logger="myservice.hooks")
    dispatcher = HookDispatcher(hook_conf(tmp_path, timeout=0.2), events=["fake.commit"])
    with _released_then_closed(dispatcher, hooks):
        _fire(dispatcher, request_id="req-slow")
        _fire(dispatcher, request_id="req-next")
        # the slow hook's thread gives up on it after the timeout and goes on
        assert dispatcher.flush(60)
        assert not hooks.FINISHED.is_set()
        calls = [(c[0], c[1].request_id) for c in hooks.CALLS]
        assert [c for c in calls if c[0] == "second"] == [
            ("second", "req-slow"),
            ("second", "req-next"),
        ]
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert errors[0].request_id == "req-slow"
        message = errors[0].getMessage()
        assert "slow" in message and "req-slow" in message and "abandoned" in message
        assert "did not finish" in message
        hooks.RELEASE.set()
        assert hooks.FINISHED.wait(10)


def test_saturated_pool_does_not_run_the_hook_late(mod, hook_conf, tmp_path, caplog):
    site, _ = mod
    site.install("aaa-hooks", "1.0", [("fake.slow", "{mod}hooks:Slow")])
    site.install("bbb-hooks", "1.0", [("fake.quick", "{mod}hooks:First")])
    hooks = site.imported("hooks")
    conf = hook_conf(tmp_path, timeout=0.2)
    dispatcher = HookDispatcher(conf, events=["fake.slow", "fake.quick"], max_workers=1)
    with _released_then_closed(dispatcher, hooks):
        _fire(dispatcher, "fake.slow")  # occupies the only worker
        assert hooks.STARTED.wait(30)
        _fire(dispatcher, "fake.quick", request_id="req-queued")
        assert dispatcher.flush(60)
        messages = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert any("could not start" in m and "req-queued" in m for m in messages)
        hooks.RELEASE.set()
        assert hooks.FINISHED.wait(10)
        _fire(dispatcher, "fake.quick", request_id="req-after")
        assert dispatcher.flush(60)
        # the cancelled call never ran; the later one did
        assert [(c[0], c[1].request_id) for c in hooks.CALLS] == [
            ("slow", "req-42"),
            ("first", "req-after"),
        ]


def test_each_hook_sees_its_events_in_fire_order(mod, hook_conf, tmp_path):
    site, _ = mod
    site.install(
        "aaa-hooks",
        "1.0",
        [("fake.create", "{mod}hooks:First"), ("fake.delete", "{mod}hooks:First")],
    )
    site.install("bbb-hooks", "1.0", [("fake.create", "{mod}hooks:Second")])
    hooks = site.imported("hooks")
    fired = []
    with HookDispatcher(hook_conf(tmp_path), events=["fake.create", "fake.delete"]) as d:
        for i in range(300):
            event = "fake.create" if i % 3 else "fake.delete"
            _fire(d, event, request_id=f"req-{i}")
            fired.append((event, f"req-{i}"))
        assert d.flush(60)
    first = [(c[1].name, c[1].request_id) for c in hooks.CALLS if c[0] == "first"]
    second = [(c[1].name, c[1].request_id) for c in hooks.CALLS if c[0] == "second"]
    assert first == fired
    assert second == [f for f in fired if f[0] == "fake.create"]


def test_pending_events_are_handed_to_call_batch_in_order(mod, hook_conf, tmp_path):
    site, _ = mod
    site.install("aaa-hooks", "1.0", [("fake.commit", "{mod}hooks:Batcher")])
    hooks = site.imported("hooks")
    dispatcher = HookDispatcher(hook_conf(tmp_path, timeout=60), events=["fake.commit"])
    with _released_then_closed(dispatcher, hooks):
        _fire(dispatcher, request_id="req-0")
        assert hooks.STARTED.wait(30)  # the single call is blocked: the next ones queue up
        for i in range(1, 6):
            _fire(dispatcher, request_id=f"req-{i}")
        hooks.RELEASE.set()
        assert dispatcher.flush(30)
        assert hooks.Batcher.BATCHES == [["req-0"], [f"req-{i}" for i in range(1, 6)]]


def test_a_full_queue_drops_the_event_with_an_error(mod, hook_conf, tmp_path, caplog):
    site, _ = mod
    site.install("aaa-hooks", "1.0", [("fake.commit", "{mod}hooks:Slow")])
    hooks = site.imported("hooks")
    conf = hook_conf(tmp_path, timeout=60).with_overrides("hooks", {"queue_size": "2"}, "test")
    dispatcher = HookDispatcher(conf, events=["fake.commit"])
    with _released_then_closed(dispatcher, hooks):
        assert dispatcher.queue_size == 2
        _fire(dispatcher, request_id="req-1")
        assert hooks.STARTED.wait(30)  # req-1 is running (blocked), no longer queued
        _fire(dispatcher, request_id="req-2")
        _fire(dispatcher, request_id="req-3")  # the slow hook's queue is now full
        _fire(dispatcher, request_id="req-4")  # returns at once; dropped
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1
        message = errors[0].getMessage()
        for expected in ("fake.commit", "req-4", "slow", "aaa-hooks", "queue_size = 2", "full"):
            assert expected in message
        assert errors[0].request_id == "req-4"
        hooks.RELEASE.set()
        assert dispatcher.flush(30)
        assert [c[1].request_id for c in hooks.CALLS] == ["req-1", "req-2", "req-3"]


def test_close_delivers_what_is_queued(mod, hook_conf, tmp_path):
    site, _ = mod
    site.install("aaa-hooks", "1.0", [("fake.commit", "{mod}hooks:Slow")])
    hooks = site.imported("hooks")
    dispatcher = HookDispatcher(hook_conf(tmp_path, timeout=60), events=["fake.commit"])
    with _released_then_closed(dispatcher, hooks):  # no flush(): close() itself drains
        for i in range(5):
            _fire(dispatcher, request_id=f"req-{i}")
        assert hooks.STARTED.wait(30)  # req-0 is running, req-1..4 are queued
        hooks.RELEASE.set()
    assert [c[1].request_id for c in hooks.CALLS] == [f"req-{i}" for i in range(5)]


def test_close_gives_up_after_its_timeout_and_names_the_lost_events(
    mod, hook_conf, tmp_path, caplog
):
    site, _ = mod
    site.install("aaa-hooks", "1.0", [("fake.commit", "{mod}hooks:Slow")])
    hooks = site.imported("hooks")
    dispatcher = HookDispatcher(hook_conf(tmp_path, timeout=60), events=["fake.commit"])
    try:
        for i in range(3):
            _fire(dispatcher, request_id=f"req-{i}")
        assert hooks.STARTED.wait(30)
        dispatcher.close(timeout=0.1)  # req-0 stays blocked past the drain time
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert any(
            "slow" in m and "2 queued event(s) not delivered" in m and "req-1, req-2" in m
            for m in errors
        ), errors
        _fire(dispatcher, request_id="req-late")  # after close: harmless, not delivered
    finally:
        hooks.RELEASE.set()
    assert hooks.FINISHED.wait(10)  # the running call was left to finish
    assert [c[1].request_id for c in hooks.CALLS] == ["req-0"]


def test_import_failure_is_logged_with_distribution_and_others_load(site, hook_conf, tmp_path):
    site.module("broken", "raise ImportError('no module named frobnicate')\n")
    name = site.module("hooks", HOOKS)
    site.install("broken-hooks", "0.3", [("fake.commit", "{mod}broken:Hook")])
    site.install("good-hooks", "1.0", [("fake.commit", "{mod}hooks:First")])
    records: list[logging.LogRecord] = []
    handler = _Collect(records)
    logging.getLogger("myservice").addHandler(handler)
    try:
        with HookDispatcher(hook_conf(tmp_path), events=["fake.commit"]) as d:
            assert [h.name for h in d.hooks("fake.commit")] == ["first"]
    finally:
        logging.getLogger("myservice").removeHandler(handler)
    assert sys.modules[name].BUILT == ["First"]
    errors = [r.getMessage() for r in records if r.levelno == logging.ERROR]
    assert any("broken-hooks" in m and "0.3" in m and "frobnicate" in m for m in errors), errors


def test_constructor_failure_is_logged_and_skipped(mod, hook_conf, tmp_path, caplog):
    site, _ = mod
    site.install("acme-hooks", "2.5", [("fake.commit", "{mod}hooks:BrokenInit")])
    site.install("good-hooks", "1.0", [("fake.commit", "{mod}hooks:First")])
    with HookDispatcher(hook_conf(tmp_path), events=["fake.commit"]) as d:
        assert [h.name for h in d.hooks("fake.commit")] == ["first"]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any(
        "acme-hooks 2.5" in m and "BrokenInit" in m and "expected a URL" in m for m in errors
    ), errors


def test_fire_never_raises_even_for_a_strange_resource(mod, hook_conf, tmp_path, caplog):
    site, _ = mod
    site.install("aaa-hooks", "1.0", [("fake.commit", "{mod}hooks:First")])
    hooks = site.imported("hooks")

    class Weird:
        def __str__(self):
            raise RuntimeError("cannot render")

    with HookDispatcher(hook_conf(tmp_path), events=["fake.commit"]) as d:
        assert _fire(d, resource={"x": Weird()}, request_id="req-weird") is None
    assert hooks.CALLS == []
    assert any("req-weird" in r.getMessage() for r in caplog.records if r.levelno >= 40)


def test_close_calls_hook_close_and_later_fire_is_harmless(mod, hook_conf, tmp_path):
    site, _ = mod
    site.install("aaa-hooks", "1.0", [("fake.commit", "{mod}hooks:Closing")])
    hooks = site.imported("hooks")
    d = HookDispatcher(hook_conf(tmp_path), events=["fake.commit"])
    d.close()
    d.close()
    assert len(hooks.Closing.CLOSED) == 1
    _fire(d)
    assert hooks.CALLS == []


def test_works_with_a_test_instance_manager(hook_conf, tmp_path):
    calls = []

    class Hook:
        name = "inline"

        def __init__(self, conf):
            self.conf = conf

        def __call__(self, event):
            calls.append(event.name)

    def factory(namespace, name, **kwargs):
        assert namespace == "myservice.hooks"
        return HookManager.make_test_instance([Extension(name, None, Hook, None)])

    conf = hook_conf(tmp_path)
    with HookDispatcher(conf, events=["a.b"], manager_factory=factory) as d:
        (loaded,) = d.hooks("a.b")
        assert (loaded.name, loaded.distribution) == ("inline", "unknown-distribution")
        _fire(d, "a.b")
    assert calls == ["a.b"]


_BROKER = {"transport_url": "amqp://guest:guest@127.0.0.1:1//"}


def test_builtin_hooks_are_registered_for_the_core_events(hook_conf, tmp_path):
    with HookDispatcher(hook_conf(tmp_path, notify=_BROKER)) as d:
        for event in ("user.create", "user.update", "user.delete"):
            assert [h.name for h in d.hooks(event)][:2] == ["audit", "notify"]
            assert all(h.distribution == "myservice" for h in d.hooks(event)[:2])
        assert d.hooks("user.create")[0].obj is d.hooks("user.delete")[0].obj


def test_notify_is_off_without_a_transport_url_and_says_so_at_info(hook_conf, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="myservice.hooks")
    with HookDispatcher(hook_conf(tmp_path)) as d:
        assert [h.name for h in d.hooks("user.create")] == ["audit"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any(
        "notify" in r.getMessage() and "transport_url is empty" in r.getMessage()
        for r in caplog.records
        if r.levelno == logging.INFO
    )


def test_notify_without_kombu_fails_to_load_and_audit_still_works(
    hook_conf, tmp_path, monkeypatch, caplog
):
    monkeypatch.setitem(sys.modules, "kombu", None)  # import kombu -> ImportError
    from myservice.hooks.notify import NotifyHook

    conf = hook_conf(tmp_path, notify=_BROKER)
    with pytest.raises(HookLoadError, match=r"pip install 'myservice\[notify\]'"):
        NotifyHook(conf)
    with HookDispatcher(conf, events=["user.create"]) as d:
        assert [h.name for h in d.hooks("user.create")] == ["audit"]
        _fire(d, "user.create", request_id="req-nokombu")
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any(
        "myservice.hooks.notify:NotifyHook" in m and "myservice[notify]" in m for m in errors
    )
    audit = (tmp_path / "state" / "audit.jsonl").read_text().splitlines()
    assert len(audit) == 1 and "req-nokombu" in audit[0]


def test_request_id_context_is_restored_in_the_caller(mod, hook_conf, tmp_path):
    site, _ = mod
    site.install("aaa-hooks", "1.0", [("fake.commit", "{mod}hooks:First")])
    token = mlog.request_id.set("req-outer")
    try:
        with HookDispatcher(hook_conf(tmp_path), events=["fake.commit"]) as d:
            _fire(d, request_id="req-inner")
        assert mlog.request_id.get() == "req-outer"
    finally:
        mlog.request_id.reset(token)


class _Collect(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__(logging.DEBUG)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_threads_fire_concurrently(mod, hook_conf, tmp_path):
    site, _ = mod
    site.install("aaa-hooks", "1.0", [("fake.commit", "{mod}hooks:First")])
    hooks = site.imported("hooks")
    with HookDispatcher(hook_conf(tmp_path), events=["fake.commit"]) as d:
        threads = [
            threading.Thread(target=_fire, args=(d,), kwargs={"request_id": f"req-{i}"})
            for i in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(c[1].request_id for c in hooks.CALLS) == sorted(f"req-{i}" for i in range(8))


# A process that fires COUNT user.create events through the real audit hook and exits without
# calling close(): in mode "exit" itself, in mode "fork" a child forked after the dispatcher
# was built (gunicorn --preload) that ends with sys.exit() as a gunicorn worker does.
FIRE_AND_EXIT = """
import os, sys
from pathlib import Path
from myservice import conf as config
from myservice.hooks import HookDispatcher

path, mode, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
conf = config.defaults(str(Path(path).parent)).with_overrides("audit", {"path": path}, "t")
dispatcher = HookDispatcher(conf, events=["user.create"])
assert [h.name for h in dispatcher.hooks("user.create")] == ["audit"]


def fire_all():
    for i in range(count):
        dispatcher.fire("user.create", {"id": i, "pid": os.getpid()}, request_id=f"req-{i}",
                        user_id="u", project_id="p")


if mode == "fork":
    pid = os.fork()
    if pid == 0:
        fire_all()
        sys.exit(0)
    _, status = os.waitpid(pid, 0)
    print(pid)
    sys.exit(os.waitstatus_to_exitcode(status))
fire_all()
print(os.getpid())
"""


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["exit", "fork"])
def test_queued_events_are_delivered_when_the_process_exits(tmp_path, mode):
    import json
    import subprocess

    path = tmp_path / "audit.jsonl"
    out = subprocess.run(
        [sys.executable, "-c", FIRE_AND_EXIT, str(path), mode, "300"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [r["request_id"] for r in records] == [f"req-{i}" for i in range(300)]
    assert {r["resource"]["pid"] for r in records} == {int(out.stdout)}
