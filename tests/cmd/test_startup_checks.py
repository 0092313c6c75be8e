"""``myservice-api`` start-up checks of the ini file (:mod:`myservice.cmd.startup_checks`):
the file of a ``FileHandler``, the socket of a ``SysLogHandler``, and a mistyped
``[prefix:name`` header that configparser reads as an option without an error -- one line
each, before logging is configured; ``main`` returns 2 before serving."""

from __future__ import annotations

import configparser
import errno
import os
import socket
from pathlib import Path

import pytest

from myservice.cmd import api
from myservice.cmd.startup_checks import check_logging
from myservice.conf import ini_misread_header
from tests.cmd.test_api_start_errors import _keep_logging, _never_serve  # noqa: F401
from tests.serving.helpers import copy_etc

CONSOLE = "class = myservice.log.BatchingStreamHandler\nargs = (sys.stderr,)\n"


@pytest.fixture
def ini(tmp_path: Path) -> Path:
    return (copy_etc(tmp_path / "etc") / "api-paste.ini").resolve()


def _console(ini: Path, handler: str) -> None:
    """Make ``[handler_console]`` of ``ini`` the ``class``/``args`` lines ``handler``."""
    text = ini.read_text(encoding="utf-8")
    assert CONSOLE in text
    ini.write_text(text.replace(CONSOLE, handler, 1), encoding="utf-8")


def _replace_line(ini: Path, old: str, new: str) -> int:
    """Replace the line ``old`` of ``ini`` by ``new``; its 1-based number."""
    lines = ini.read_text(encoding="utf-8").splitlines()
    number = lines.index(old) + 1
    lines[number - 1] = new
    ini.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return number


def _error(ini: Path, capsys) -> str:
    assert api.main(["--port", "0", str(ini)]) == 2
    return capsys.readouterr().err  # the one line alone: nothing logged before it


def _check(ini: Path) -> None:
    """The logging checks alone, on ``ini`` read as ``myservice-api`` reads it."""
    cp = configparser.ConfigParser(defaults={"here": str(ini.parent), "__file__": str(ini)})
    cp.read(ini, encoding="utf-8")
    check_logging(cp, ini)


def _deny_write(monkeypatch, denied: str) -> None:
    """``os.access(denied, W_OK...)`` is False, as for a user who may not write there (the
    tests may run as root, for whom every permission check passes)."""
    real = os.access

    def access(path, mode, *args, **kwargs):
        if os.fspath(path) == denied and mode & os.W_OK:
            return False
        return real(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)


# -- the file of a FileHandler ---------------------------------------------------------------

FILE_HANDLERS = [
    "FileHandler",
    "handlers.RotatingFileHandler",
    "handlers.WatchedFileHandler",
    "handlers.TimedRotatingFileHandler",
]


@pytest.mark.parametrize("cls", FILE_HANDLERS)
def test_log_file_in_a_directory_that_does_not_exist(ini, capsys, cls):
    _console(ini, f"class = {cls}\nargs = ('%(here)s/no/such/x.log',)\n")
    assert _error(ini, capsys) == (
        f"myservice-api: error: {ini} [handler_console]: args = ('{ini.parent}/no/such/x.log',): "
        f"the log file's directory {ini.parent}/no/such does not exist; create it or log "
        "elsewhere\n"
    )


def test_log_file_given_by_keyword(ini, capsys):
    _console(ini, 'class = FileHandler\nkwargs = {"filename": "%(here)s/no/x.log"}\n')
    assert _error(ini, capsys) == (
        f'myservice-api: error: {ini} [handler_console]: kwargs = {{"filename": '
        f'"{ini.parent}/no/x.log"}}: the log file\'s directory {ini.parent}/no does not '
        "exist; create it or log elsewhere\n"
    )


def test_log_file_relative_to_the_working_directory(ini, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    _console(ini, "class = FileHandler\nargs = ('logs/x.log', 'a')\n")
    assert _error(ini, capsys) == (
        f"myservice-api: error: {ini} [handler_console]: args = ('logs/x.log', 'a'): the log "
        f"file's directory {tmp_path}/logs does not exist; create it or log elsewhere\n"
    )


def test_log_file_directory_not_writable(ini, capsys, monkeypatch):
    (ini.parent / "logs").mkdir()
    _deny_write(monkeypatch, f"{ini.parent}/logs")
    _console(ini, "class = FileHandler\nargs = ('%(here)s/logs/x.log',)\n")
    assert _error(ini, capsys) == (
        f"myservice-api: error: {ini} [handler_console]: args = ('{ini.parent}/logs/x.log',): "
        f"the log file's directory {ini.parent}/logs is not writable by this user (the file "
        "does not exist yet); change its permissions or log elsewhere\n"
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_log_file_directory_without_write_permission(ini, capsys):
    logs = ini.parent / "logs"
    logs.mkdir(mode=0o555)
    _console(ini, "class = FileHandler\nargs = ('%(here)s/logs/x.log',)\n")
    assert f"the log file's directory {logs} is not writable by this user" in _error(ini, capsys)


def test_log_file_not_writable(ini, capsys, monkeypatch):
    (ini.parent / "x.log").write_text("")
    _deny_write(monkeypatch, f"{ini.parent}/x.log")
    _console(ini, "class = handlers.RotatingFileHandler\nargs = ('%(here)s/x.log',)\n")
    assert _error(ini, capsys) == (
        f"myservice-api: error: {ini} [handler_console]: args = ('{ini.parent}/x.log',): the "
        f"log file {ini.parent}/x.log is not writable by this user; change its permissions or "
        "log elsewhere\n"
    )


def test_log_file_is_a_directory(ini, capsys):
    _console(ini, "class = FileHandler\nargs = ('%(here)s',)\n")
    assert _error(ini, capsys) == (
        f"myservice-api: error: {ini} [handler_console]: args = ('{ini.parent}',): the log "
        f"file {ini.parent} is a directory; name a file in it\n"
    )


def test_log_file_directory_is_a_file(ini, capsys):
    _console(ini, "class = FileHandler\nargs = ('%(here)s/api-paste.ini/x.log',)\n")
    assert _error(ini, capsys) == (
        f"myservice-api: error: {ini} [handler_console]: args = "
        f"('{ini}/x.log',): the log file's directory {ini} is not a directory; log elsewhere\n"
    )


@pytest.mark.parametrize("cls", FILE_HANDLERS)
@pytest.mark.parametrize("name", ["exists.log", "new.log"])
def test_writable_log_files_pass(ini, cls, name):
    (ini.parent / "exists.log").write_text("")
    _console(ini, f"class = {cls}\nargs = ('%(here)s/{name}',)\n")
    _check(ini)  # no error
    assert not (ini.parent / "new.log").exists()  # checked, not created


# -- the socket of a SysLogHandler -----------------------------------------------------------

SYSLOG_FIX = "use ('localhost', 514) or another handler"


def test_syslog_socket_that_does_not_exist(ini, capsys):
    _console(ini, "class = handlers.SysLogHandler\nargs = ('%(here)s/log',)\n")
    assert _error(ini, capsys) == (
        f"myservice-api: error: {ini} [handler_console]: args = ('{ini.parent}/log',): the "
        f"syslog socket {ini.parent}/log does not exist (no syslog daemon on this host?); "
        f"{SYSLOG_FIX}\n"
    )


@pytest.mark.skipif(os.path.exists("/dev/log"), reason="this host has /dev/log")
def test_syslog_dev_log_on_a_host_without_it(ini, capsys):
    _console(ini, "class = handlers.SysLogHandler\nkwargs = {'address': '/dev/log'}\n")
    assert _error(ini, capsys) == (
        f"myservice-api: error: {ini} [handler_console]: kwargs = {{'address': '/dev/log'}}: "
        f"the syslog socket /dev/log does not exist (no syslog daemon on this host?); "
        f"{SYSLOG_FIX}\n"
    )


def test_syslog_address_that_is_not_a_socket(ini, capsys):
    _console(ini, "class = handlers.SysLogHandler\nargs = ('%(here)s/api-paste.ini',)\n")
    assert _error(ini, capsys) == (
        f"myservice-api: error: {ini} [handler_console]: args = ('{ini}',): {ini} is not a "
        f"Unix socket; {SYSLOG_FIX}\n"
    )


def test_syslog_socket_nobody_listens_on(ini, capsys):
    path = ini.parent / "log"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))  # the socket file stays when it is closed: no one listens
    _console(ini, "class = handlers.SysLogHandler\nargs = ('%(here)s/log',)\n")
    refused = os.strerror(errno.ECONNREFUSED)
    assert _error(ini, capsys) == (
        f"myservice-api: error: {ini} [handler_console]: args = ('{path}',): cannot connect "
        f"to the syslog socket {path}: ConnectionRefusedError: [Errno {errno.ECONNREFUSED}] "
        f"{refused} (is the syslog daemon running?); {SYSLOG_FIX}\n"
    )


@pytest.mark.parametrize("kind", [socket.SOCK_DGRAM, socket.SOCK_STREAM])
def test_syslog_socket_listened_on_passes(ini, kind):
    path = ini.parent / "log"
    with socket.socket(socket.AF_UNIX, kind) as sock:
        sock.bind(str(path))
        if kind == socket.SOCK_STREAM:
            sock.listen()
        _console(ini, "class = handlers.SysLogHandler\nargs = ('%(here)s/log',)\n")
        _check(ini)  # no error


@pytest.mark.parametrize("args", ["()", "(('localhost', 514),)", "(('nohost.invalid', 514),)"])
def test_syslog_host_and_port_pass(ini, args):
    _console(ini, f"class = handlers.SysLogHandler\nargs = {args}\n")
    _check(ini)  # no error: UDP to a host is not checked


# -- a mistyped [prefix:name header read as an option ----------------------------------------


def test_mistyped_header_after_default(ini, capsys):
    number = _replace_line(ini, "[server:main]", "[server:main")
    assert _error(ini, capsys) == (
        f"myservice-api: error: {ini}: line {number}: '[server:main' is not a section "
        "header; did you mean [server:main]? (it and the lines after it are read as options "
        "of [DEFAULT])\n"
    )


def test_mistyped_header_without_its_opening_bracket(ini, capsys):
    number = _replace_line(ini, "[server:main]", "server:main]")
    assert _error(ini, capsys) == (
        f"myservice-api: error: {ini}: line {number}: 'server:main]' is not a section "
        "header; did you mean [server:main]? (it and the lines after it are read as options "
        "of [DEFAULT])\n"
    )


def test_mistyped_header_of_the_last_section(ini, capsys):
    with ini.open("a", encoding="utf-8") as handle:
        handle.write("\n[filter:extra\nuse = egg:myservice#request_id\n")
    number = len(ini.read_text(encoding="utf-8").splitlines()) - 1
    assert _error(ini, capsys) == (
        f"myservice-api: error: {ini}: line {number}: '[filter:extra' is not a section "
        "header; did you mean [filter:extra]? (it and the lines after it are read as options "
        "of [formatter_generic])\n"
    )


def test_mistyped_header_on_the_first_line(ini, capsys):
    text = ini.read_text(encoding="utf-8")
    ini.write_text("[composite:other\nuse = egg:myservice#urlmap\n" + text, encoding="utf-8")
    assert _error(ini, capsys) == (
        f"myservice-api: error: {ini}: line 1: '[composite:other' comes before the first "
        "[section] header; expected a [section] line first; did you mean [composite:other]?\n"
    )


@pytest.mark.parametrize(
    "line",
    [
        "# see [server:main",
        "#server:main]",
        ";server:main]",
        "args = [a:b",
        "note = a:b]",
        "  [server:main",  # indented: a value's continuation line
    ],
)
def test_lines_that_are_no_mistyped_header(tmp_path, line):
    path = tmp_path / "x.ini"
    path.write_text(f"[app:x]\nuse = egg:x#x\nmore = 1\n{line}\n")
    assert ini_misread_header(path) is None


def test_the_shipped_paste_ini_has_no_mistyped_header(ini):
    assert ini_misread_header(ini) is None
