"""access_log: one INFO line per request, after the body has been sent."""

from __future__ import annotations

import collections
import logging
import os
import re
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from webtest import TestApp

from myservice import conf, log
from myservice.middleware import access_log, request_id
from tests.middleware.util import build, echo_app, wait_for

LINE = re.compile(
    r'(?P<rid>req-[0-9a-f-]{36}) (?P<addr>\S+) "(?P<method>\S+) (?P<path>\S+)" '
    r"status (?P<status>\d{3}) len (?P<len>\d+) time (?P<ms>\d+\.\d) ms"
)


def access_lines(caplog):
    return [r for r in caplog.records if r.name == "myservice.access"]


@pytest.fixture
def caplog(caplog):
    caplog.set_level(logging.INFO, logger="myservice.access")
    return caplog


class Client:
    """A TestApp over request_id + access_log (with ``options``) + ``app``; every request
    flushes the filter's queue afterwards, so the line is in caplog when it returns."""

    def __init__(self, app, paste_conf, **options):
        self.filter = build(access_log, app, paste_conf, **options)
        self.test_app = TestApp(
            build(request_id, self.filter, paste_conf), extra_environ={"REMOTE_ADDR": "192.0.2.4"}
        )

    def get(self, *args, **kwargs):
        try:
            return self.test_app.get(*args, **kwargs)
        finally:
            self.filter.flush()


def make(app, paste_conf, **options):
    return Client(app, paste_conf, **options)


def test_one_line_per_request_with_all_fields(paste_conf, caplog):
    resp = make(echo_app, paste_conf).get(
        "/v1/users?limit=5", headers={"X-Auth-Token": "tok.SECRETVALUE"}
    )
    (record,) = access_lines(caplog)
    assert record.levelno == logging.INFO
    m = LINE.fullmatch(record.getMessage())
    assert m, record.getMessage()
    assert m["rid"] == resp.headers["X-OpenStack-Request-ID"]
    assert m["addr"] == "192.0.2.4"
    assert m["method"] == "GET"
    assert m["path"] == "/v1/users?limit=5"
    assert m["status"] == "200"
    assert int(m["len"]) == len(resp.body)
    assert "SECRETVALUE" not in caplog.text


def test_logged_after_the_body_is_sent_and_close_called(paste_conf, caplog):
    events = []

    class Body:
        def __iter__(self):
            events.append("iter")
            yield b"abc"
            yield b"de"

        def close(self):
            events.append("close")

    def app(environ, start_response):
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return Body()

    class Recorder(logging.Handler):
        def emit(self, record):
            events.append("log")

    handler = Recorder()
    logging.getLogger("myservice.access").addHandler(handler)
    try:
        make(app, paste_conf).get("/x", status=404)
    finally:
        logging.getLogger("myservice.access").removeHandler(handler)
    assert events == ["iter", "close", "log"]
    m = LINE.fullmatch(access_lines(caplog)[0].getMessage())
    assert m["status"] == "404" and m["len"] == "5"


def test_app_exception_is_logged_as_500_and_propagates(paste_conf, caplog):
    def boom(environ, start_response):
        raise RuntimeError("x")

    with pytest.raises(RuntimeError):
        make(boom, paste_conf).get("/")
    m = LINE.fullmatch(access_lines(caplog)[0].getMessage())
    assert m["status"] == "500"


def test_control_characters_in_path_are_escaped(paste_conf, caplog):
    make(echo_app, paste_conf).get("/a%0Ab")
    message = access_lines(caplog)[0].getMessage()
    assert "\n" not in message and '"GET /a%0Ab" status' in message


def test_a_quote_in_the_path_or_query_cannot_forge_fields(paste_conf, caplog):
    app = make(echo_app, paste_conf)
    app.get("/a%22b", status="*")
    app.get('/q?x="', status="*")  # a raw quote in the query string, as clients can send
    first, second = (record.getMessage() for record in access_lines(caplog))
    assert '"GET /a%22b" status' in first
    assert '"GET /q?x=%22" status' in second
    assert LINE.fullmatch(first) and LINE.fullmatch(second)


@pytest.mark.parametrize(
    ("sent", "shown"),
    [("/caf%C3%A9", "/café"), ("/%FF/x", "/%FF/x"), ("/plain", "/plain")],
)
def test_the_path_is_logged_as_utf8_text_or_escaped_bytes(paste_conf, caplog, sent, shown):
    make(echo_app, paste_conf).get(sent, status="*")
    message = access_lines(caplog)[0].getMessage()
    assert f'"GET {shown}" status' in message


def test_request_id_on_the_record_too(paste_conf, caplog):
    caplog.handler.addFilter(log.RequestIdFilter())
    resp = make(echo_app, paste_conf).get("/")
    (record,) = access_lines(caplog)
    # taken on the request thread, set on the record although a later thread logs it
    assert record.request_id == resp.headers["X-OpenStack-Request-ID"]


def test_silenced_logger_skips_the_wrapping(paste_conf, caplog):
    caplog.set_level(logging.WARNING, logger="myservice.access")
    make(echo_app, paste_conf).get("/")
    assert access_lines(caplog) == []


class ThreadRecorder(logging.Handler):
    """Remembers, for each access record, the record and the thread that handled it."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def emit(self, record):
        self.seen.append((record, threading.current_thread().name))


@pytest.fixture
def recorder():
    handler = ThreadRecorder()
    logger = logging.getLogger("myservice.access")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def test_queued_line_is_logged_at_flush_with_the_request_time_thread_and_id(
    paste_conf, caplog, recorder
):
    client = make(echo_app, paste_conf, interval="5")
    before = time.time()
    resp = client.test_app.get("/q")  # no flush
    after = time.time()
    assert recorder.seen == [] and len(client.filter.queue) == 1
    client.filter.flush()
    ((record, handled_by),) = recorder.seen
    assert handled_by == threading.current_thread().name
    assert record.request_id == resp.headers["X-OpenStack-Request-ID"]
    assert before <= record.created <= after
    assert record.msecs == int((record.created - int(record.created)) * 1000)
    assert record.thread == threading.get_ident()
    assert record.threadName == threading.current_thread().name
    assert record.funcName == "_emit" and record.module == "access_log"


def test_the_logger_thread_logs_within_the_interval(paste_conf, caplog, recorder):
    client = make(echo_app, paste_conf, interval="0.01")
    for i in range(5):
        client.test_app.get(f"/n{i}")
    wait_for(lambda: len(recorder.seen) == 5)
    paths = [LINE.fullmatch(r.getMessage())["path"] for r, _ in recorder.seen]
    assert paths == [f"/n{i}" for i in range(5)]  # the order requests finished in
    assert {thread for _, thread in recorder.seen} == {"myservice-access-log"}
    # the record still names the request's thread
    assert {r.threadName for r, _ in recorder.seen} == {threading.current_thread().name}
    # idle again: a later request wakes the thread once more
    client.test_app.get("/later")
    wait_for(lambda: len(recorder.seen) == 6)


def test_interval_zero_logs_on_the_request_thread_before_returning(paste_conf, caplog, recorder):
    client = make(echo_app, paste_conf, interval="0")
    assert client.filter.queue is None
    client.test_app.get("/now")  # no flush
    ((record, handled_by),) = recorder.seen
    assert handled_by == threading.current_thread().name
    assert LINE.fullmatch(record.getMessage())["path"] == "/now"


def test_back_pressure_when_logging_falls_behind(paste_conf, caplog, recorder, monkeypatch):
    monkeypatch.setattr(access_log, "MAX_PENDING", 3)
    client = make(echo_app, paste_conf, interval="5")
    for i in range(5):
        client.test_app.get(f"/b{i}")
    # the 4th request logged the 3 waiting lines itself, then queued its own
    assert len(recorder.seen) == 3 and len(client.filter.queue) == 2
    client.filter.flush()
    paths = [LINE.fullmatch(r.getMessage())["path"] for r, _ in recorder.seen]
    assert paths == [f"/b{i}" for i in range(5)]


def test_a_broken_handler_does_not_stop_the_logger_thread(paste_conf, caplog, recorder):
    class Broken(logging.Handler):
        def emit(self, record):
            raise RuntimeError("handler down")

        def handleError(self, record):  # noqa: N802 - logging's name
            raise  # let the error reach the queue's thread

    broken = Broken()
    logger = logging.getLogger("myservice.access")
    logger.addHandler(broken)
    client = make(echo_app, paste_conf, interval="0.01")
    try:
        client.test_app.get("/first")
        wait_for(lambda: any("Logging access-log lines failed" in m for m in caplog.messages))
    finally:
        logger.removeHandler(broken)
    client.test_app.get("/second")
    wait_for(lambda: any(r.getMessage().count("/second") for r, _ in recorder.seen))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_starts_with_an_empty_queue(paste_conf, caplog, recorder):
    client = make(echo_app, paste_conf, interval="5")
    client.test_app.get("/parent")
    pid = os.fork()
    if pid == 0:  # child: nothing of the parent's queue, and its own lines work
        code = 0
        try:
            if len(client.filter.queue) != 0:
                code = 3
            else:
                client.test_app.get("/child")
                code = 0 if len(client.filter.queue) == 1 else 4
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert len(client.filter.queue) == 1  # the parent keeps its own line
    client.filter.flush()
    assert [LINE.fullmatch(r.getMessage())["path"] for r, _ in recorder.seen] == ["/parent"]


def test_queued_lines_are_logged_at_interpreter_exit(tmp_path):
    script = textwrap.dedent(
        """
        import logging, sys
        from webtest import TestApp
        from myservice.middleware import access_log
        logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
        def app(environ, start_response):
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]
        f = access_log.filter_factory({"here": sys.argv[1]}, interval="5")(app)
        TestApp(f).get("/bye")
        print("queued", len(f.queue))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    lines = out.splitlines()
    assert lines[0] == "queued 1"
    assert lines[1].startswith('- - "GET /bye" status 200 len 2 time '), lines


@pytest.mark.parametrize("value", ["-1", "6", "soon"])
def test_bad_interval_names_file_section_and_option(paste_conf, value):
    with pytest.raises(conf.ConfigError) as info:
        build(access_log, echo_app, paste_conf, interval=value)
    message = str(info.value)
    assert "api-paste.ini" in message and "access_log" in message and "interval" in message


def _a_line():
    environ = {
        "openstack.request_id": "req-1",
        "REMOTE_ADDR": "192.0.2.9",
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "/v1",
        "PATH_INFO": "/users/u1",
        "QUERY_STRING": "a=1",
    }
    return access_log._take(environ, "200 OK", 12, time.perf_counter_ns() - 1_500_000)


def test_a_batch_record_is_the_record_makerecord_would_give(caplog, recorder):
    line = _a_line()
    access_log._emit(line, None)
    access_log._emit(line, access_log._record_template())
    (one, _), (two, _) = recorder.seen
    first, second = dict(one.__dict__), dict(two.__dict__)
    assert first.pop("relativeCreated") == pytest.approx(second.pop("relativeCreated"))
    assert first == second
    assert one.getMessage() == two.getMessage()
    assert one.getMessage().startswith('req-1 192.0.2.9 "GET /v1/users/u1?a=1" status 200 len 12')


def test_a_custom_record_factory_is_used_for_every_line(caplog, recorder):
    default = logging.getLogRecordFactory()

    def factory(*args, **kwargs):
        record = default(*args, **kwargs)
        record.made_by = "factory"
        return record

    logging.setLogRecordFactory(factory)
    try:
        assert access_log._record_template() is None
        queue = access_log.LineQueue(5)
        queue.put(_a_line())
        queue.put(_a_line())
        queue.flush()
    finally:
        logging.setLogRecordFactory(default)
    assert [r.made_by for r, _ in recorder.seen] == ["factory", "factory"]


def test_the_logger_thread_survives_when_reporting_the_failure_fails_too(capfd, recorder):
    class Broken(logging.Handler):
        def emit(self, record):
            raise RuntimeError("everything is down")

        def handleError(self, record):  # noqa: N802 - logging's name
            raise  # let the error escape, as a strict handler might

    broken = Broken()
    root = logging.getLogger()
    level = root.level
    root.addHandler(broken)  # on the access log's path and on the failure report's
    root.setLevel(logging.INFO)
    queue = access_log.LineQueue(0.01)
    seen_err = []
    try:
        queue.put(_a_line())
        # the report reaches stderr in several writes: look at all that was read so far
        wait_for(
            lambda: (
                seen_err.append(capfd.readouterr().err) or "everything is down" in "".join(seen_err)
            )
        )
    finally:
        root.removeHandler(broken)
        root.setLevel(level)
    queue.put(_a_line())  # the thread is still there and logs the next line
    wait_for(lambda: len(recorder.seen) == 2)


class _CountingCondition(threading.Condition):
    """A Condition that counts ``notify`` calls."""

    def __init__(self, lock):
        super().__init__(lock)
        self.notified = 0

    def notify(self, n=1):
        self.notified += 1
        super().notify(n)


def _wake_to_an_emptied_queue(queue):
    """Wake the sleeping logger thread as a put() does, then take the line away before it
    looks (as a flush() on another thread can); return once it sleeps again."""
    with queue._wake:
        queue._lines.append(_a_line())
        queue._idle = False
        queue._wake.notify()
        queue._lines.clear()
    wait_for(lambda: queue._idle)


def test_a_burst_of_lines_wakes_the_logger_thread_once(recorder, monkeypatch):
    """Until the woken thread runs, further lines must not notify it again (each notify is a
    Condition round trip on the request thread)."""
    queue = access_log.LineQueue(5)
    queue._wake = cond = _CountingCondition(threading.Lock())
    started = []
    monkeypatch.setattr(
        queue, "_start", lambda: started.append(True) or setattr(queue, "_thread", 1)
    )
    for _ in range(50):
        queue.put(_a_line())
    assert started == [True]
    assert cond.notified == 1
    queue.flush()
    assert len(recorder.seen) == 50


def test_a_thread_woken_to_an_emptied_queue_is_woken_by_the_next_line(recorder):
    """The thread is notified, but a flush() empties the queue before it looks: it must go
    back to sleep ready to be woken, or the next lines would wait for MAX_PENDING or exit."""
    queue = access_log.LineQueue(0.01)
    queue.put(_a_line())  # starts the thread, which logs that line
    wait_for(lambda: len(recorder.seen) == 1 and queue._idle)
    _wake_to_an_emptied_queue(queue)  # it found the queue empty and is ready to be woken again
    queue.put(_a_line())
    wait_for(lambda: len(recorder.seen) == 2)


def test_no_line_is_left_waiting_when_threads_put_and_flush_at_once(recorder):
    """Request threads putting lines while others flush: every line is logged by the
    logger thread without a last flush() (a lost wake-up would leave lines queued)."""
    queue = access_log.LineQueue(0.001)
    line = _a_line()

    def producer(n):
        for i in range(n):
            queue.put(line)
            if i % 50 == 0:
                queue.flush()
            if i % 7 == 0:
                time.sleep(0)

    threads = [threading.Thread(target=producer, args=(400,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wait_for(lambda: len(recorder.seen) == 1600)
    assert len(queue) == 0


def test_the_wake_flag_is_armed_whenever_the_logger_thread_looks_at_the_queue(recorder):
    """put() appends, then reads the flag without the lock: the thread must arm the flag
    before each look, or a line appended just after a look that found the queue empty would
    not wake it.  The queue records the flag at every look the logger thread makes."""
    seen_flags = []

    class Lines(collections.deque):
        def __len__(self):
            looking = not queue._flush_lock.locked()  # not flush()'s own loop
            if looking and threading.current_thread().name == "myservice-access-log":
                seen_flags.append(queue._idle)
            return super().__len__()

    queue = access_log.LineQueue(0.01)
    queue._lines = Lines()
    queue.put(_a_line())
    wait_for(lambda: len(recorder.seen) == 1 and queue._idle)
    _wake_to_an_emptied_queue(queue)
    queue.put(_a_line())
    wait_for(lambda: len(recorder.seen) == 2)
    assert len(seen_flags) >= 3
    assert all(seen_flags), seen_flags
