"""myservice.log.Formatter: the cached ``%(asctime)s`` is logging.Formatter's text."""

from __future__ import annotations

import logging
import random
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
