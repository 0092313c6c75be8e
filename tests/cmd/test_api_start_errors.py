"""``myservice-api`` start-up errors in the ini file: ``[server:main]`` options, the address,
and the logging sections -- one line each, naming the file, section, option and the closest
valid value; ``main`` returns 2 before serving."""

from __future__ import annotations

import io
import logging
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from myservice.cmd import api
from tests.serving.helpers import child_env, copy_etc

BIN = Path(sys.executable).parent


@pytest.fixture
def ini(tmp_path: Path) -> Path:
    return (copy_etc(tmp_path / "etc") / "api-paste.ini").resolve()


@pytest.fixture(autouse=True)
def _keep_logging():
    """main() applies the ini's logging sections (fileConfig sets levels, handlers and
    propagation of the root, ``myservice`` and ``waitress`` loggers...): give the next test
    the logging it had, every logger included, so its caplog sees what it expects."""
    manager = logging.Logger.manager
    before = {
        name: (lg.level, lg.handlers[:], lg.propagate, lg.disabled)
        for name, lg in [("", logging.getLogger()), *manager.loggerDict.items()]
        if isinstance(lg, logging.Logger)
    }
    yield
    for name, lg in [("", logging.getLogger()), *manager.loggerDict.items()]:
        if not isinstance(lg, logging.Logger):
            continue
        for handler in lg.handlers:
            if handler not in before.get(name, ((), [], True, False))[1]:
                handler.stream = io.StringIO()  # the ini's console handler: its stream is gone
                handler.close()
        level, handlers, propagate, disabled = before.get(name, (logging.NOTSET, [], True, False))
        lg.setLevel(level)
        lg.handlers[:] = handlers
        lg.propagate = propagate
        lg.disabled = disabled


@pytest.fixture(autouse=True)
def _never_serve(monkeypatch):
    """A start-up error must come before serving: fail instead of serving forever."""
    from waitress import server

    def run(self):
        raise AssertionError("myservice-api started serving")

    monkeypatch.setattr(server.BaseWSGIServer, "run", run)
    monkeypatch.setattr(server.MultiSocketServer, "run", run)


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _error(ini: Path, capsys, *extra: str) -> str:
    assert api.main([*extra, "--port", "0", str(ini)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    return lines[-1]


# -- [server:main] ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "detail"),
    [
        ("threads = 8", "threads = eight", "threads = eight: expected an integer"),
        ("threads = 8", "threads = 0", "threads = 0: expected an integer >= 1"),
        ("backlog = 1024", "backlog = 1k", "backlog = 1k: expected an integer"),
        (
            "threads = 8",
            "threadz = 8",
            "unknown option 'threadz'; did you mean 'threads'?",
        ),
        (
            "threads = 8",
            "get thredz = http_port",
            "unknown option 'thredz'; did you mean 'threads'?",
        ),
        (
            "threads = 8",
            "expose_tracebacks = yess",
            "expose_tracebacks = yess: expected a boolean (true/false, yes/no, on/off, 1/0); "
            "did you mean 'yes'?",
        ),
        (
            "threads = 8",
            "unix_socket_perms = 9",
            "unix_socket_perms = 9: expected an octal number of permission bits, e.g. 600",
        ),
        (
            "use = egg:waitress#main",
            "us = egg:waitress#main",
            "unknown option 'us'; did you mean 'use'?",
        ),
        (
            "use = egg:waitress#main",
            "#",
            "No loader given in section 'server:main' (e.g. use = egg:waitress#main)",
        ),
    ],
    ids=["int", "min", "size", "unknown", "get", "bool", "octal", "use-typo", "no-use"],
)
def test_server_option(ini, capsys, old, new, detail):
    _edit(ini, old, new)
    assert _error(ini, capsys) == f"myservice-api: error: {ini} [server:main]: {detail}"
    # checked before the application is built: nothing created yet
    assert not (ini.parent / "state").exists()


def test_server_port_in_the_ini(ini, capsys):
    _edit(ini, "http_port = 8790", "http_port = 70000")
    assert api.main([str(ini)]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"myservice-api: error: {ini} [server:main]: port = 70000: expected a port number 0-65535"
    )


def test_listen_with_port(ini, capsys):
    _edit(ini, "host = 127.0.0.1", "listen = 127.0.0.1:0")
    assert _error(ini, capsys) == (
        f"myservice-api: error: {ini} [server:main]: listen = 127.0.0.1:0: --port may "
        "not be given with listen (waitress takes either listen, or host and port)"
    )


def _gai_error(host: str) -> str:
    with pytest.raises(socket.gaierror) as info:
        socket.getaddrinfo(host, 0, 0, socket.SOCK_STREAM, socket.IPPROTO_TCP, socket.AI_PASSIVE)
    return info.value.strerror


def test_host_that_does_not_resolve(ini, capsys):
    why = _gai_error("nohost.invalid")
    assert _error(ini, capsys, "--host", "nohost.invalid") == (
        f"myservice-api: error: {ini} [server:main]: cannot listen on nohost.invalid:0: "
        f"host 'nohost.invalid' (from --host) does not resolve: {why}"
    )


def test_host_in_the_ini_that_does_not_resolve(ini, capsys):
    why = _gai_error("nohost.invalid")
    _edit(ini, "host = 127.0.0.1", "host = nohost.invalid")
    assert _error(ini, capsys) == (
        f"myservice-api: error: {ini} [server:main]: cannot listen on nohost.invalid:0: "
        f"host 'nohost.invalid' (from host) does not resolve: {why}"
    )


# -- logging sections --------------------------------------------------------------------------

CONSOLE_ARGS = "args = (sys.stderr,)"


@pytest.mark.parametrize(
    ("old", "new", "section", "detail"),
    [
        (
            CONSOLE_ARGS,
            CONSOLE_ARGS + '\nkwargs = {"intervall": 0.05}',
            "handler_console",
            'kwargs = {"intervall": 0.05}: myservice.log.BatchingStreamHandler takes no '
            "argument 'intervall'; did you mean 'interval'? (it takes: stream, interval, "
            "max_bytes)",
        ),
        (
            "level = INFO\nhandlers =\nqualname = myservice",
            "level = INFOO\nhandlers =\nqualname = myservice",
            "logger_myservice",
            "level = INFOO: expected a level name (CRITICAL, ERROR, WARNING, INFO, DEBUG, "
            "NOTSET); did you mean 'INFO'?",
        ),
        (
            "level = NOTSET",
            "level = debug",
            "handler_console",
            "level = debug: expected a level name (CRITICAL, ERROR, WARNING, INFO, DEBUG, "
            "NOTSET); did you mean 'DEBUG'?",
        ),
        (
            "keys = root, myservice, waitress",
            "keys = root, myservice, waitress, missing",
            "loggers",
            "keys lists 'missing' but there is no [logger_missing] section",
        ),
        (
            "[logger_waitress]",
            "[logger_waitres]",
            "loggers",
            "keys lists 'waitress' but there is no [logger_waitress] section; did you mean "
            "[logger_waitres]?",
        ),
        (
            "[%(request_id)s]",
            "[%(request_idd)s]",
            "formatter_generic",
            "format = %(asctime)s %(process)d %(levelname)s %(name)s [%(request_idd)s] "
            "%(message)s: unknown field 'request_idd'; did you mean 'request_id'?",
        ),
        (
            "%(levelname)s",
            "%(levelnam)s",
            "formatter_generic",
            "format = %(asctime)s %(process)d %(levelnam)s %(name)s [%(request_id)s] "
            "%(message)s: unknown field 'levelnam'; did you mean 'levelname'?",
        ),
        (
            "class = myservice.log.Formatter",
            "class = myservice.log.Formater",
            "formatter_generic",
            "class = myservice.log.Formater: myservice.log has no 'Formater'; did you mean "
            "'Formatter'?",
        ),
        (
            "class = myservice.log.BatchingStreamHandler",
            "class = StreamHandlr",
            "handler_console",
            "class = StreamHandlr: no handler class 'StreamHandlr' in logging; did you mean "
            "'StreamHandler'? (or give a dotted name: package.module.Class)",
        ),
        (
            "formatter = generic",
            "formatter = generik",
            "handler_console",
            "formatter = generik: 'generik' is not in [formatters] keys (generic); did you "
            "mean 'generic'?",
        ),
        (
            "handlers = console",
            "handlers = consol",
            "logger_root",
            "handlers = consol: 'consol' is not in [handlers] keys (console); did you mean "
            "'console'?",
        ),
        (
            "qualname = waitress",
            "qualnme = waitress",
            "logger_waitress",
            "unknown option 'qualnme'; did you mean 'qualname'?",
        ),
        (
            CONSOLE_ARGS,
            "args = (sys.stder,)",
            "handler_console",
            "args = (sys.stder,): cannot evaluate it: AttributeError: module 'sys' has no "
            "attribute 'stder'",
        ),
        (
            CONSOLE_ARGS,
            "args = (%(her)s,)",
            "handler_console",
            "args = (%(her)s,): %(her)s names no option of [handler_console] or [DEFAULT]; "
            "did you mean 'here'? (write %% for a literal %)",
        ),
    ],
    ids=[
        "kwargs",
        "logger-level",
        "handler-level",
        "missing-section",
        "misnamed-section",
        "format-myservice-field",
        "format-record-field",
        "formatter-class",
        "handler-class",
        "formatter-name",
        "handler-name",
        "unknown-option",
        "args",
        "interpolation",
    ],
)
def test_logging_sections(ini, capsys, old, new, section, detail):
    _edit(ini, old, new)
    assert api.main(["--port", "0", str(ini)]) == 2
    # checked before fileConfig: nothing logged, the one line alone
    assert capsys.readouterr().err == f"myservice-api: error: {ini} [{section}]: {detail}\n"


def test_format_fields_of_other_styles(ini, capsys):
    _edit(
        ini,
        "format = %(asctime)s %(process)d %(levelname)s %(name)s [%(request_id)s] %(message)s",
        "format = {asctime} {mesage}\nstyle = {",
    )
    assert api.main(["--port", "0", str(ini)]) == 2
    assert capsys.readouterr().err == (
        f"myservice-api: error: {ini} [formatter_generic]: format = {{asctime}} {{mesage}}: "
        "unknown field 'mesage'; did you mean 'message'?\n"
    )


def test_the_shipped_logging_sections_pass(ini):
    import configparser

    from myservice.cmd.startup_checks import check_logging

    cp = configparser.ConfigParser(defaults={"here": str(ini.parent), "__file__": str(ini)})
    cp.read(ini, encoding="utf-8")
    check_logging(cp, ini)  # no error


def test_subprocess_logging_and_server_errors(ini):
    _edit(ini, "level = INFO", "level = INFOO")
    done = subprocess.run(
        [str(BIN / "myservice-api"), "--port", "0", str(ini)],
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env(ini.parent),
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        f"myservice-api: error: {ini} [logger_myservice]: level = INFOO: expected a level name "
        "(CRITICAL, ERROR, WARNING, INFO, DEBUG, NOTSET); did you mean 'INFO'?\n"
    )


def test_a_broken_section_header_is_named_with_its_line(ini, capsys):
    _edit(ini, "[filter:cors]\n", "[filter:cors\n")
    lines = ini.read_text(encoding="utf-8").splitlines()
    number = lines.index("[filter:cors") + 1
    assert _error(ini, capsys) == (
        f"myservice-api: error: {ini}: line {number}: '[filter:cors' is not a section header; "
        "did you mean [filter:cors]? (it and the lines after it are read as options of "
        "[filter:catch_errors])"
    )


def test_a_header_read_as_an_option_is_named_without_logging_sections(ini, capsys):
    # '[server:main' parses as option '[server' = 'main' of [DEFAULT]: no syntax error; and
    # with no [loggers] the logging checks (which also look for it) do not run
    text = ini.read_text(encoding="utf-8")
    ini.write_text(text[: text.index("[loggers]")], encoding="utf-8")
    _edit(ini, "[server:main]\n", "[server:main\n")
    number = ini.read_text(encoding="utf-8").splitlines().index("[server:main") + 1
    assert _error(ini, capsys) == (
        f"myservice-api: error: {ini}: line {number}: '[server:main' is not a section header; "
        "did you mean [server:main]? (it and the lines after it are read as options of "
        "[DEFAULT])"
    )
