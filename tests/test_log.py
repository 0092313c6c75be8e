"""myservice.log: Formatter's cached ``%(asctime)s`` is logging.Formatter's text;
BatchingStreamHandler keeps order, writes errors at once, flushes on close, survives fork."""

from __future__ import annotations

import logging
import logging.config
import os
import random
import signal
import sys
import threading
import time

import pytest

from myservice import log

FORMAT = "%(asctime)s %(levelname)s [%(request_id)s] %(message)s"


def _record(created: float) -> logging.LogRecord:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "m %s", ("x",), None)
    record.created = created
    record.msecs = (created - int(created)) * 1000
    return record


@pytest.mark.parametrize("datefmt", [None, "%Y-%m-%dT%H:%M:%S", "%d/%b/%Y %H:%M:%S %z"])
@pytest.mark.parametrize("converter", [time.localtime, time.gmtime])
def test_asctime_is_the_same_text_as_logging_formatter(datefmt, converter):
    ours = log.Formatter(FORMAT, datefmt)
    theirs = logging.Formatter(FORMAT.replace("%(request_id)s", "-"), datefmt)
    ours.converter = theirs.converter = converter
    rng = random.Random(4)
    now = time.time()
    # bursts within one second, jumps forwards and backwards, second boundaries
    times = [now + rng.uniform(-3, 3) for _ in range(300)] + [1e9, 1e9 + 0.999, 1e9 + 1.0]
    times += sorted(times)
    for created in times:
        assert ours.format(_record(created)) == theirs.format(_record(created))


def test_other_datefmt_on_the_same_second_is_not_served_from_the_cache():
    fmt = log.Formatter(FORMAT)
    record = _record(1_000_000_000.25)
    assert fmt.formatTime(record, "%Y") == "2001"
    assert fmt.formatTime(record, "%S") == time.strftime("%S", time.localtime(1_000_000_000))
    assert fmt.formatTime(record) == logging.Formatter().formatTime(record)


def test_no_msec_format_gives_the_seconds_text_only():
    fmt = log.Formatter(FORMAT)
    fmt.default_msec_format = None
    record = _record(1_000_000_000.5)
    assert fmt.formatTime(record) == time.strftime(
        fmt.default_time_format, time.localtime(1_000_000_000)
    )


# -- BatchingStreamHandler ------------------------------------------------------------------

LONG = 3600.0  # an interval no test waits out: anything written came from ERROR/flush/close/size


class _Stream:
    """A text stream that records each ``write`` call and signals it."""

    def __init__(self) -> None:
        self.writes: list[str] = []
        self.flushes = 0
        self.written = threading.Event()

    def write(self, text: str) -> None:
        self.writes.append(text)
        self.written.set()

    def flush(self) -> None:
        self.flushes += 1

    @property
    def text(self) -> str:
        return "".join(self.writes)


def _handler(stream: object, **kwargs: float) -> log.BatchingStreamHandler:
    handler = log.BatchingStreamHandler(stream, **{"interval": LONG, **kwargs})
    handler.setFormatter(log.Formatter("%(levelname)s [%(request_id)s] %(message)s"))
    return handler


def _emit(handler: logging.Handler, msg: str, level: int = logging.INFO) -> None:
    handler.handle(logging.LogRecord("t", level, __file__, 1, msg, (), None))


def test_info_is_buffered_without_a_write_and_close_writes_it():
    stream = _Stream()
    handler = _handler(stream)
    _emit(handler, "one")
    _emit(handler, "two")
    assert stream.writes == []
    handler.close()
    assert stream.writes == ["INFO [-] one\nINFO [-] two\n"]
    assert stream.flushes >= 1


def test_flush_writes_pending_lines_in_one_write():
    stream = _Stream()
    handler = _handler(stream)
    for i in range(5):
        _emit(handler, f"m{i}")
    handler.flush()
    assert stream.writes == ["".join(f"INFO [-] m{i}\n" for i in range(5))]
    handler.close()
    assert len(stream.writes) == 1  # nothing written twice


def test_error_is_written_at_once_after_the_lines_buffered_before_it():
    stream = _Stream()
    handler = _handler(stream)
    _emit(handler, "before")
    _emit(handler, "boom", logging.ERROR)
    assert stream.text == "INFO [-] before\nERROR [-] boom\n"
    _emit(handler, "after")
    _emit(handler, "fatal", logging.CRITICAL)
    assert stream.text.endswith("INFO [-] after\nCRITICAL [-] fatal\n")
    handler.close()


def test_request_id_is_captured_at_emit_time():
    stream = _Stream()
    handler = _handler(stream)
    token = log.request_id.set("req-123")
    try:
        _emit(handler, "in request")
    finally:
        log.request_id.reset(token)
    handler.close()
    assert stream.text == "INFO [req-123] in request\n"


def test_writer_thread_writes_when_the_buffer_exceeds_max_bytes():
    stream = _Stream()
    handler = _handler(stream, max_bytes=10)
    _emit(handler, "a line longer than ten characters")
    assert stream.written.wait(30), "the writer thread never wrote the full buffer"
    assert stream.text == "INFO [-] a line longer than ten characters\n"
    handler.close()


def test_writer_thread_writes_after_the_interval():
    stream = _Stream()
    handler = _handler(stream, interval=0.01)
    _emit(handler, "later")
    assert stream.written.wait(30), "the writer thread never wrote the batch"
    handler.close()
    assert stream.text == "INFO [-] later\n"


def test_lines_keep_their_order_across_threads_and_batches():
    stream = _Stream()
    handler = _handler(stream, interval=0.001, max_bytes=200)
    per_thread = 300

    def work(n: int) -> None:
        for i in range(per_thread):
            _emit(handler, f"{n} {i}", logging.ERROR if i % 97 == 0 else logging.INFO)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    handler.close()
    lines = stream.text.splitlines()
    assert len(lines) == 4 * per_thread
    for n in range(4):
        seen = [int(line.split()[-1]) for line in lines if line.split()[-2] == str(n)]
        assert seen == list(range(per_thread))


def test_emit_after_close_writes_at_once():
    stream = _Stream()
    handler = _handler(stream)
    handler.close()
    _emit(handler, "late")
    assert stream.text == "INFO [-] late\n"


@pytest.mark.parametrize(
    "kwargs, message",
    [({"interval": 0}, "interval must be > 0 seconds, got 0"), ({"max_bytes": -1}, "max_bytes")],
)
def test_bad_settings_are_refused_with_the_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        log.BatchingStreamHandler(_Stream(), **kwargs)


def test_file_config_builds_it(tmp_path):
    ini = tmp_path / "log.ini"
    ini.write_text(
        "[loggers]\nkeys = root\n[handlers]\nkeys = console\n[formatters]\nkeys =\n"
        "[logger_root]\nlevel = WARNING\nhandlers = console\n"
        "[handler_console]\nclass = myservice.log.BatchingStreamHandler\n"
        "args = (sys.stderr,)\nkwargs = {'interval': 0.2}\n"
    )
    saved = logging.root.handlers[:]
    try:
        logging.config.fileConfig(str(ini), disable_existing_loggers=False)
        (handler,) = logging.root.handlers
        assert isinstance(handler, log.BatchingStreamHandler)
        assert handler.interval == 0.2
        handler.close()
    finally:
        logging.root.handlers[:] = saved


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_child_starts_empty_and_restarts_the_writer(tmp_path):
    path = tmp_path / "out.log"
    with path.open("a", encoding="utf-8") as out:
        handler = _handler(out)
        _emit(handler, "parent before fork")  # buffered in the parent
        pid = os.fork()
        if pid == 0:  # child: never return into pytest
            code = 1
            try:
                # a deadlock guard: a hung child dies of SIGALRM and the parent's assert fails
                signal.alarm(60)
                handler.max_bytes = 1  # the next line wakes the (new) writer thread
                _emit(handler, "child")
                for _ in range(3000):
                    if "child" in path.read_text(encoding="utf-8"):
                        code = 0
                        break
                    time.sleep(0.01)
                handler.close()
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, "the child's writer thread wrote nothing"
        _emit(handler, "parent after fork")
        handler.close()
    assert path.read_text(encoding="utf-8").splitlines() == [
        "INFO [-] child",
        "INFO [-] parent before fork",
        "INFO [-] parent after fork",
    ]


def test_formatter_uses_time_follows_its_format_string():
    formatter = log.Formatter("%(message)s")
    assert formatter.usesTime() is False and formatter.usesTime() is False
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", (), None)
    assert formatter.format(record) == "hello" and not hasattr(record, "asctime")
    formatter._style = logging.PercentStyle("%(asctime)s %(message)s")  # a new format string
    formatter._fmt = formatter._style._fmt
    assert formatter.usesTime() is True
    assert formatter.format(record).endswith(" hello") and record.asctime


def test_format_with_exception_and_stack_is_logging_formatters_text():
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        exc_info = sys.exc_info()
    for extra in ({"exc_info": exc_info}, {"sinfo": "Stack (most recent call last):\n  x"}):
        ours_record = logging.LogRecord(
            "t", logging.ERROR, __file__, 1, "m %s", ("x",), **{"exc_info": None, **extra}
        )
        theirs_record = logging.LogRecord(
            "t", logging.ERROR, __file__, 1, "m %s", ("x",), **{"exc_info": None, **extra}
        )
        ours = log.Formatter(FORMAT).format(ours_record)
        theirs = logging.Formatter(FORMAT.replace("%(request_id)s", "-")).format(theirs_record)
        assert ours == theirs
        assert ("RuntimeError: boom" in ours) == ("exc_info" in extra)
        assert ours_record.exc_text == theirs_record.exc_text


def test_a_record_with_its_own_request_id_keeps_it():
    token = log.request_id.set("req-context")
    try:
        record = logging.LogRecord("t", logging.INFO, __file__, 1, "m", (), None)
        record.request_id = "req-own"
        assert log.Formatter("[%(request_id)s] %(message)s").format(record) == "[req-own] m"
        plain = logging.LogRecord("t", logging.INFO, __file__, 1, "m", (), None)
        assert log.Formatter("[%(request_id)s] %(message)s").format(plain) == "[req-context] m"
    finally:
        log.request_id.reset(token)


def test_handle_applies_the_handlers_filters():
    stream = _Stream()
    handler = _handler(stream)
    handler.addFilter(lambda record: "secret" not in record.getMessage())
    assert not handler.handle(
        logging.LogRecord("t", logging.INFO, __file__, 1, "a secret", (), None)
    )
    _emit(handler, "public")
    handler.flush()
    assert stream.text == "INFO [-] public\n"


def test_handle_does_not_wait_for_the_handlers_io_lock():
    # emit is guarded by the handler's own buffer and write locks; a thread holding the
    # logging.Handler lock (as flush/setStream callers do) does not block other threads' lines
    stream = _Stream()
    handler = _handler(stream)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with handler.lock:
            held.set()
            release.wait(10)

    done = threading.Event()
    holder = threading.Thread(target=hold)
    emitter = threading.Thread(target=lambda: (_emit(handler, "line"), done.set()))
    holder.start()
    try:
        assert held.wait(10)
        emitter.start()
        assert done.wait(10), "handle() waited for the handler lock"
    finally:
        release.set()
        holder.join()
        if emitter.is_alive():
            emitter.join()
    handler.flush()
    assert stream.text == "INFO [-] line\n"


@pytest.mark.parametrize("msecs", [0.0, 7.9, 999.99, 1000.0, -1.0])
@pytest.mark.parametrize("msec_format", ["%s,%03d", "%s.%03d", None])
def test_milliseconds_are_logging_formatters_text(msecs, msec_format):
    record = _record(1_000_000_000.0)
    record.msecs = msecs  # out-of-range values too, as a custom record factory might set
    ours, theirs = log.Formatter(FORMAT), logging.Formatter(FORMAT)
    ours.default_msec_format = theirs.default_msec_format = msec_format
    assert ours.formatTime(record) == theirs.formatTime(record)
