"""``myservice-api``: serve the application of a Paste Deploy ini file with waitress.

Usage::

    myservice-api [--reload] [--debug] [--host H] [--port P] [PATH_TO_INI]

* ``PATH_TO_INI`` defaults to ``etc/api-paste.ini``.
* The ini file's logging sections (``[loggers]``...) are applied first, as ``paster serve``
  does; the application ``main`` is built by Paste Deploy; the server is ``[server:main]``
  of the same file (waitress, with its options), ``--host``/``--port`` overriding its
  ``host``/``port``.  Without a ``[server:main]`` section waitress serves on
  127.0.0.1:8790.  PasteScript is not needed.
* ``--reload`` (development): a parent process runs the server in a child process and
  restarts it when a ``.py`` file of the ``myservice`` package, the ini file or the service
  configuration file it names changes (mtimes polled every second).  If the first child
  fails, the parent exits with its status; after a restart a failing child is restarted on
  the next change.
* Start-up errors (a missing ini file, a mistake in its logging sections or in the options
  of ``[server:main]``, a host that does not resolve, an unknown filter, a bad configuration
  value, an unknown storage driver, a port in use) are printed as one line on stderr, exit
  status 2, no traceback; the logging sections and ``[server:main]`` are checked (see
  :mod:`myservice.cmd.startup_checks`) before the application is built.  So is any other
  exception raised while starting (a bug in a plugin or in myservice):
  ``myservice-api: error: PATH_TO_INI: cannot build the application: TYPE: MESSAGE``; its
  traceback is logged at DEBUG, and printed before that line with ``--debug``.

Signals:

* SIGTERM and SIGINT stop the server (exit status 0), also while it starts: waitress stops
  accepting and waits up to 5 s for the requests being served, then the application is
  closed and the interpreter exits normally, so the queued access-log lines and hook events
  are written.  A second SIGTERM kills the process at once (status 143).  The SIGTERM handler
  is installed before the application is built, so :mod:`myservice.wsgi.shutdown` leaves it
  alone.
* SIGHUP (plain mode) without a terminal on stdin (systemd, nohup, a container) is
  ignored, with one WARNING (:data:`HUP_WARNING`) the first time: ``logrotate``'s ``kill
  -HUP`` must not stop the service, and there is nothing to reload in place.  With a
  terminal on stdin (started by hand in a shell), SIGHUP is the terminal going away: it
  stops the server as SIGTERM does.
* ``--reload``: the parent restarts the child on SIGHUP, as on a change of a watched file;
  on SIGTERM or SIGINT it stops the child (SIGTERM, then SIGKILL after 10 s) before it
  exits with status 0.  The child dies with the parent even if the parent is killed
  (Linux: ``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import argparse
import configparser
import logging
import logging.config
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from myservice.cmd import ArgumentParser
from myservice.cmd.startup_checks import check_logging, check_unknown, check_values, explain_address
from myservice.conf import (
    INI_SYNTAX_ERRORS,
    ConfigError,
    exception_line,
    ini_misread_header,
    ini_syntax_error,
    one_line,
)

LOG = logging.getLogger(__name__)
PROG = "myservice-api"
DEFAULT_INI = "etc/api-paste.ini"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8790
#: seconds between two scans of the watched files in --reload mode
POLL_INTERVAL = 1.0
#: logged at WARNING on the first SIGHUP of a plain myservice-api
HUP_WARNING = (
    "SIGHUP ignored: myservice-api does not reload its configuration; restart it, or use "
    "--reload in development; a rotated log file needs logging.handlers.WatchedFileHandler"
)
#: the environment variable naming the --reload parent's PID, in its child
PARENT_ENV = "MYSERVICE_API_RELOADER_PID"


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog=PROG, description="Serve myservice from a Paste Deploy ini file with waitress."
    )
    parser.add_argument(
        "ini",
        nargs="?",
        default=DEFAULT_INI,
        metavar="PATH_TO_INI",
        help="Paste Deploy file (default: %(default)s)",
    )
    parser.add_argument("--host", help="address to listen on (default: [server:main] host)")
    parser.add_argument(
        "--port", type=_port, help="port to listen on (default: [server:main] port, 8790)"
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="print the traceback of an unexpected start-up error (also logged at DEBUG)",
    )
    parser.add_argument(
        "--reload",
        action="store_true",
        help="restart the server when a myservice .py file, the ini or the config file changes",
    )
    return parser


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``myservice-api``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    ini = Path(args.ini).resolve()
    if args.reload:
        child_argv = [a for a in argv if a != "--reload"]
        return Reloader(child_argv, ini).run()
    hangup = None if _on_a_terminal() else IgnoreHangup()
    # before the application is built: the urlmap factory then sees SIGTERM handled
    previous = {
        signal.SIGTERM: signal.signal(signal.SIGTERM, _exit_on_signal),
        signal.SIGHUP: signal.signal(signal.SIGHUP, hangup or _stop_on_hangup),
    }
    try:
        return _run(args, ini)
    finally:
        for signum, handler in previous.items():
            if handler is not None:
                signal.signal(signum, handler)
        if hangup is not None:
            hangup.close()


def _on_a_terminal() -> bool:
    """Whether stdin is a terminal: started by hand in a shell, whose closing sends SIGHUP."""
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (OSError, ValueError):  # closed or detached
        return False


def _run(args: argparse.Namespace, ini: Path) -> int:
    """Start the server of ``ini`` and serve until SIGTERM or SIGINT; the exit status."""
    stage = "read it"
    try:
        if not ini.is_file():
            raise ConfigError(f"{ini}: paste deploy file not found")
        stage = "configure logging from it"
        configure_logging(ini)
        stage = "read its [server:main]"
        spec = server_spec(ini, args.host, args.port)
        from myservice.wsgi.loader import load_app

        stage = "build the application"
        app = load_app(ini)
        stage = "create the server"
        try:
            server = make_server(app, ini, spec=spec)
        except BaseException:
            _close(app)
            raise
    except ConfigError as exc:
        _flush_log_handlers()
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug, in a plugin or here: still one line, no traceback
        LOG.debug("%s: cannot %s", ini, stage, exc_info=True)
        _flush_log_handlers()
        if args.debug:
            traceback.print_exc()
        what = exception_line(exc)
        hint = "" if args.debug else " (run with --debug for the traceback)"
        print(f"{PROG}: error: {ini}: cannot {stage}: {what}{hint}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # SIGTERM or SIGINT while starting: what was built is closed
        LOG.info("Stopped while starting")
        return 0
    try:
        server()
    except KeyboardInterrupt:
        pass
    finally:
        _close(app)
    return 0


def _flush_log_handlers() -> None:
    """Write what the logging handlers still hold (the shipped console handler,
    ``myservice.log.BatchingStreamHandler``, writes INFO lines up to 50 ms late), so the lines
    logged before a start-up error come before the error line on stderr and it stays last."""
    loggers = [logging.getLogger()]
    loggers += [
        logger
        for logger in list(logging.Logger.manager.loggerDict.values())
        if isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            handler.flush()


def _exit_on_signal(signum: int, frame: Any) -> None:
    """SIGTERM: stop as on SIGINT (waitress's loop catches KeyboardInterrupt); a second one
    takes the default action (kills at once)."""
    signal.signal(signum, signal.SIG_DFL)
    raise KeyboardInterrupt


def _stop_on_hangup(signum: int, frame: Any) -> None:
    """SIGHUP with a terminal on stdin (it was closed): stop as on SIGINT.  Further SIGHUPs
    are ignored, not fatal: a closing terminal sends several (the shell resends it to its
    jobs, then the kernel to the foreground group), which must not cut the clean stop."""
    signal.signal(signum, signal.SIG_IGN)
    raise KeyboardInterrupt


class IgnoreHangup:
    """The SIGHUP handler of a plain ``myservice-api``: ignore the signal; log
    :data:`HUP_WARNING` at WARNING the first time.

    The handler itself never logs (it runs on the main thread between two bytecodes, maybe
    while that thread holds the non-reentrant buffer lock of
    :class:`myservice.log.BatchingStreamHandler`): it hands the message, through a
    reentrant :class:`queue.SimpleQueue`, to a daemon thread started here, which logs it and
    ends.  :meth:`close` ends that thread if no SIGHUP came."""

    def __init__(self) -> None:
        self._messages: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._warned = False
        self._thread = threading.Thread(
            target=self._log_once, name="myservice-api-sighup", daemon=True
        )
        self._thread.start()

    def __call__(self, signum: int, frame: Any) -> None:
        if not self._warned:
            self._warned = True
            self._messages.put(HUP_WARNING)

    def _log_once(self) -> None:
        message = self._messages.get()
        if message is not None:
            LOG.warning(message)

    def close(self) -> None:
        """End the logging thread (after the warning, if one is queued)."""
        self._messages.put(None)
        self._thread.join()


def _close(app: Any) -> None:
    close = getattr(app, "close", None)
    if close is not None:
        try:
            close()
        except Exception:
            LOG.warning("closing the application failed", exc_info=True)


def _read_ini(parser: configparser.RawConfigParser, ini: Path) -> None:
    """``parser.read(ini)``; a syntax error is one line with its line number and section
    (:func:`myservice.conf.ini_syntax_error`)."""
    try:
        parser.read(ini, encoding="utf-8")
    except INI_SYNTAX_ERRORS as exc:
        raise ini_syntax_error(ini, exc) from None
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise ConfigError(f"{ini}: not a valid INI file: {one_line(exc)}") from None


def configure_logging(ini: Path) -> None:
    """Apply the logging sections of ``ini`` (if it has ``[loggers]``) like ``paster serve``;
    otherwise log INFO and up to stderr.  First, the file is checked once for a mistyped
    ``[prefix:name`` header configparser reads as an option without an error
    (:func:`myservice.conf.ini_misread_header`)."""
    parser = configparser.RawConfigParser(strict=False)
    _read_ini(parser, ini)
    misread = ini_misread_header(ini)
    if misread is not None:
        raise misread
    if not parser.has_section("loggers"):
        logging.basicConfig(level=logging.INFO)
        return
    # read as fileConfig reads it (interpolation, duplicates refused), checked, then applied
    cp = configparser.ConfigParser(defaults={"__file__": str(ini), "here": str(ini.parent)})
    _read_ini(cp, ini)
    check_logging(cp, ini)
    try:
        logging.config.fileConfig(cp, disable_existing_loggers=False)
    except (KeyError, ValueError, TypeError, ImportError, AttributeError, SyntaxError) as exc:
        raise ConfigError(
            f"{ini}: logging sections: {type(exc).__name__}: {one_line(exc)}"
        ) from None
    except configparser.Error as exc:
        raise ConfigError(f"{ini}: logging sections: {one_line(exc)}") from None


class ServerSpec:
    """``[server:main]`` of an ini file, checked: what :func:`make_server` needs."""

    def __init__(self, context: Any, settings: dict[str, Any], is_waitress: bool) -> None:
        self.context = context
        self.settings = settings
        self.is_waitress = is_waitress


def server_spec(ini: Path, host: str | None = None, port: int | None = None) -> ServerSpec:
    """Read ``[server:main]`` of ``ini`` (``--host``/``--port`` override its ``host``/``port``)
    and check a waitress server's options: names, the type of each value (as waitress's
    ``Adjustments`` converts it), the options together, and the address."""
    from paste.deploy.loadwsgi import SERVER, loadcontext

    origin = f"{ini} [server:main]"
    try:
        context = loadcontext(SERVER, f"config:{ini}", name="main")
    except LookupError as exc:
        section = _server_section(ini)
        if section is None:  # no [server:main] at all: waitress on the default address
            context = None
        else:  # the section is there but Paste Deploy cannot use it: a missing 'use'
            own = _own_options(ini, section)
            check_unknown(origin, [o.split(None, 1)[-1] if " " in o else o for o in own], ("use",))
            detail = one_line(exc)
            raise ConfigError(
                f"{origin}: {detail} (e.g. use = egg:waitress#main)"
                if "use" not in own
                else f"{origin}: {detail}"
            ) from None
    if context is None:
        settings: dict[str, Any] = {"host": DEFAULT_HOST, "port": str(DEFAULT_PORT)}
        is_waitress = True
    else:
        settings = dict(context.local_conf)
        is_waitress = getattr(context.object, "__module__", "").startswith("waitress")
    if host is not None:
        settings["host"] = host
    if port is not None:
        settings["port"] = str(port)
    if is_waitress:
        _check_waitress(origin, settings, host is not None, port is not None)
    return ServerSpec(context, settings, is_waitress)


def _check_waitress(
    origin: str, settings: dict[str, Any], host_from_cli: bool, port_from_cli: bool
) -> None:
    from waitress.adjustments import Adjustments

    check_values(origin, settings)
    if "listen" in settings and ("host" in settings or "port" in settings):
        given = [
            f"--{name}" if cli else name
            for name, cli in (("host", host_from_cli), ("port", port_from_cli))
            if name in settings
        ]
        raise ConfigError(
            f"{origin}: listen = {settings['listen']}: {' and '.join(given)} may not be given "
            "with listen (waitress takes either listen, or host and port)"
        )
    try:
        Adjustments(**settings)
    except (ValueError, TypeError) as exc:
        message = one_line(exc)
        if message == "Invalid host/port specified.":
            raise ConfigError(explain_address(origin, settings, host_from_cli)) from None
        raise ConfigError(f"{origin}: {message}") from None


def _server_section(ini: Path) -> str | None:
    """The name of the ``[server:main]`` section of ``ini`` as Paste Deploy matches it."""
    parser = configparser.RawConfigParser(strict=False)
    try:
        parser.read(ini, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return None
    for section in parser.sections():
        prefix, sep, name = section.partition(":")
        if sep and prefix.strip() == "server" and name.strip() == "main":
            return section
    return None


def _own_options(ini: Path, section: str) -> list[str]:
    parser = configparser.RawConfigParser(strict=False)
    parser.read(ini, encoding="utf-8")
    defaults = parser.defaults()
    return [name for name in parser.options(section) if name not in defaults]


def make_server(
    app: Any,
    ini: Path,
    host: str | None = None,
    port: int | None = None,
    spec: ServerSpec | None = None,
) -> Callable[[], Any]:
    """A callable that serves ``app`` until interrupted, per ``[server:main]`` of ``ini``
    (``spec``, from :func:`server_spec`, when already read).

    waitress servers are created (socket bound) here, so a port in use is a
    :class:`ConfigError`; another server entry point is called as Paste Deploy would.
    """
    if spec is None:
        spec = server_spec(ini, host, port)
    origin = f"{ini} [server:main]"
    settings = spec.settings
    if not spec.is_waitress:
        spec.context.local_conf.clear()
        spec.context.local_conf.update(settings)
        runner = spec.context.create()
        return lambda: runner(app)

    import waitress

    try:
        server = waitress.create_server(app, **settings)
    except OSError as exc:
        where = f"{settings.get('host', DEFAULT_HOST)}:{settings.get('port', DEFAULT_PORT)}"
        raise ConfigError(f"{origin}: cannot listen on {where}: {exc.strerror or exc}") from None

    def serve() -> None:
        server.print_listen("Serving on http://{}:{}")
        try:
            server.run()
        finally:
            server.close()

    return serve


# -- --reload ------------------------------------------------------------------------------


class Reloader:
    """Run ``myservice-api CHILD_ARGV`` in a child process; restart it when a watched file
    changes or on SIGHUP.  Watched: every ``.py`` file of the ``myservice`` package, ``ini``,
    and the ``[DEFAULT] config_file`` it names.

    SIGTERM and SIGINT end :meth:`run` (status 0) after the child is stopped; the child is
    never left behind (it also gets SIGTERM if this process is killed, see
    :func:`_die_with_parent`).  The handlers only set flags, read after each poll interval."""

    def __init__(self, child_argv: Sequence[str], ini: Path, interval: float = POLL_INTERVAL):
        self.child_argv = list(child_argv)
        self.ini = ini
        self.interval = interval
        self._stop = False
        self._hangup = False

    def watched(self) -> Iterator[Path]:
        import myservice

        yield from Path(myservice.__file__).resolve().parent.rglob("*.py")
        yield self.ini
        config_file = _config_file_of(self.ini)
        if config_file is not None:
            yield config_file

    def snapshot(self) -> dict[Path, int]:
        stamps: dict[Path, int] = {}
        for path in self.watched():
            try:
                stamps[path] = path.stat().st_mtime_ns
            except OSError:
                stamps[path] = -1
        return stamps

    def _spawn(self) -> subprocess.Popen:
        command = [sys.executable, "-m", "myservice.cmd.api", *self.child_argv]
        return subprocess.Popen(command, env={**os.environ, PARENT_ENV: str(os.getpid())})

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._stop = True

    def _on_hangup(self, signum: int, frame: Any) -> None:
        self._hangup = True

    def _restart_reason(self, stamps: dict[Path, int], current: dict[Path, int]) -> str | None:
        """Why the child must be restarted now (a SIGHUP since the last call, files changed
        between ``stamps`` and ``current``: both are named), or None."""
        reasons = ["SIGHUP received"] if self._hangup else []
        self._hangup = False
        changed = [p for p in current if current[p] != stamps.get(p)]
        changed += [p for p in stamps if p not in current]
        if changed:
            shown = ", ".join(str(p) for p in changed[:5])
            more = f" and {len(changed) - 5} more" if len(changed) > 5 else ""
            reasons.append(f"{shown}{more} changed")
        return " and ".join(reasons) or None

    def run(self) -> int:
        """Serve until SIGTERM or SIGINT (status 0), or until the first child exits before
        any restart (its status).  The child is stopped before this returns, whatever
        ends it."""
        handlers = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        handlers[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._on_hangup)
        child: subprocess.Popen | None = None
        try:
            stamps = self.snapshot()
            child = self._spawn()
            first = True
            while True:
                time.sleep(self.interval)
                if self._stop:
                    return 0
                if child is not None and child.poll() is not None:
                    if first:  # failed to start (or stopped) before any reload: report it
                        return child.returncode
                    print(
                        f"{PROG}: the server exited with status {child.returncode}; "
                        "waiting for a change to restart it",
                        file=sys.stderr,
                    )
                    child = None
                current = self.snapshot()
                reason = self._restart_reason(stamps, current)
                stamps = current
                if reason is not None:
                    print(f"{PROG}: {reason}; restarting", file=sys.stderr)
                    if child is not None:
                        _stop_child(child)
                    child = self._spawn()
                    first = False
        finally:
            if child is not None:
                _stop_child(child)
            for sig, handler in handlers.items():
                signal.signal(sig, handler)


def _stop_child(child: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM ``child`` and wait for it; SIGKILL it if it is still there after ``grace``
    seconds."""
    if child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(grace)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def _config_file_of(ini: Path) -> Path | None:
    parser = configparser.ConfigParser(
        defaults={"here": str(ini.parent), "__file__": str(ini)}, strict=False
    )
    try:
        parser.read(ini, encoding="utf-8")
        value = parser.get("DEFAULT", "config_file", fallback=None)
    except (configparser.Error, UnicodeDecodeError):
        return None
    return Path(value).resolve() if value else None


def _die_with_parent() -> None:
    """In the child of ``--reload`` (``PARENT_ENV`` set; Linux): have the kernel send SIGTERM
    to this process when the parent dies, however it dies (``PR_SET_PDEATHSIG``), so the
    child is never left serving alone; exit at once if the parent is already gone.
    Elsewhere, or when ``prctl`` is not available, does nothing."""
    parent = os.environ.pop(PARENT_ENV, None)
    if parent is None or not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        if libc.prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    except (OSError, AttributeError) as exc:
        LOG.debug("cannot ask to be stopped with the --reload parent: %s", exc)
        return
    if str(os.getppid()) != parent:  # the parent died before prctl
        sys.exit(0)


if __name__ == "__main__":  # the child process of --reload
    _die_with_parent()
    sys.exit(main())
