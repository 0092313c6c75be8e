"""Checks ``myservice-api`` makes of a Paste Deploy ini file before using it: its logging
sections (before ``logging.config.fileConfig``) and the options of a waitress
``[server:main]`` (before ``waitress.create_server``).

Every problem is a :class:`~myservice.conf.ConfigError` of one line naming the file, the
section and the option, what was expected, and the closest valid value when there is one.
"""

from __future__ import annotations

import configparser
import importlib
import inspect
import logging
import logging.handlers
import os
import re
import socket
import stat
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from myservice.conf import ConfigError, exception_line, one_line
from myservice.suggest import closest, did_you_mean

# -- logging sections ------------------------------------------------------------------------

#: the level names logging accepts (``WARN`` and ``FATAL`` too), and the ones we show
_LEVELS = tuple(logging._nameToLevel)  # noqa: SLF001 - logging's own table
_SHOWN_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG", "NOTSET")

#: the options fileConfig reads, per kind of section
_OPTIONS = {
    "logger": ("level", "handlers", "qualname", "propagate"),
    "handler": ("class", "level", "formatter", "args", "kwargs", "target"),
    "formatter": ("format", "datefmt", "style", "class"),
}
_LISTS = {"loggers": "logger", "handlers": "handler", "formatters": "formatter"}
#: the address to suggest instead of a syslog socket that is not there
_SYSLOG_UDP = ("localhost", logging.handlers.SYSLOG_UDP_PORT)


def _record_fields() -> frozenset[str]:
    record = logging.LogRecord("name", logging.INFO, "path", 1, "msg", None, None)
    return frozenset(record.__dict__) | {"message", "asctime"}


#: what a format string may show: the attributes of every LogRecord, plus those that
#: ``logging.Formatter.format`` sets, plus those ``myservice.log.Formatter`` stamps
RECORD_FIELDS = _record_fields()
MYSERVICE_FIELDS = frozenset({"request_id", "global_request_id"})


class _Checker:
    def __init__(self, cp: configparser.ConfigParser, ini: Path) -> None:
        self.cp = cp
        self.ini = ini

    def fail(self, section: str, text: str) -> None:
        raise ConfigError(f"{self.ini} [{section}]: {text}")

    def own_options(self, section: str) -> list[str]:
        defaults = self.cp.defaults()
        return [name for name in self.cp.options(section) if name not in defaults]

    def names(self, section: str) -> list[str]:
        """The names of ``[section] keys``, each with its ``[kind_NAME]`` section."""
        if not self.cp.has_section(section):
            others = ", ".join(f"[{name}]" for name in _LISTS)
            raise ConfigError(
                f"{self.ini}: logging sections: missing section [{section}] "
                f"(with [loggers], fileConfig needs {others}, each with keys = NAME, ...)"
            )
        if not self.cp.has_option(section, "keys"):
            self.fail(section, "missing option 'keys' (the names, comma-separated)")
        self.unknown_options(section, ("keys",))
        raw = self.cp.get(section, "keys")
        if not raw.strip():
            return []
        names = [name.strip() for name in raw.split(",")]
        kind = _LISTS[section]
        existing = [s for s in self.cp.sections() if s.startswith(f"{kind}_")]
        for name in names:
            if not name:
                self.fail(section, f"keys = {raw}: an empty name (names are comma-separated)")
            wanted = f"{kind}_{name}"
            if not self.cp.has_section(wanted):
                unused = [s for s in existing if s[len(kind) + 1 :] not in names]
                near = closest(wanted, unused)
                hint = f"; did you mean [{near}]?" if near else ""
                self.fail(section, f"keys lists {name!r} but there is no [{wanted}] section{hint}")
        return names

    def unknown_options(self, section: str, known: tuple[str, ...]) -> None:
        for name in self.own_options(section):
            if name not in known:
                self.fail(section, f"unknown option {name!r}{did_you_mean(name, known)}")

    def level(self, section: str) -> None:
        value = self.cp.get(section, "level", fallback=None)
        if value is None or value in _LEVELS:
            return
        near = closest(value.strip().upper(), _SHOWN_LEVELS)
        hint = f"; did you mean {near!r}?" if near else ""
        self.fail(
            section,
            f"level = {value}: expected a level name ({', '.join(_SHOWN_LEVELS)}){hint}",
        )

    def listed(self, section: str, option: str, value: str, names: list[str], of: str) -> None:
        if value not in names:
            self.fail(
                section,
                f"{option} = {value}: {value!r} is not in [{of}] keys "
                f"({', '.join(names) or 'empty'}){did_you_mean(value, names)}",
            )

    def resolve(self, section: str, dotted: str, base: type) -> Any:
        """The class ``class = dotted`` names, as fileConfig resolves it."""
        obj: Any = None
        if base is logging.Handler:  # fileConfig evaluates it in logging's namespace first
            try:
                obj = eval(dotted, vars(logging))  # noqa: S307 - what fileConfig does
            except (AttributeError, NameError):
                obj = None
            except Exception as exc:
                self.fail(section, f"class = {dotted}: not a class name: {one_line(exc)}")
        if obj is None and base is logging.Handler and "." not in dotted.strip():
            names = [n for n, v in vars(logging).items() if _is_subclass(v, base)]
            self.fail(
                section,
                f"class = {dotted}: no handler class {dotted.strip()!r} in logging"
                f"{did_you_mean(dotted.strip(), names)} (or give a dotted name: "
                "package.module.Class)",
            )
        if obj is None:
            obj = self.import_dotted(section, dotted)
        if not (isinstance(obj, type) and issubclass(obj, base)):
            self.fail(
                section,
                f"class = {dotted}: expected a subclass of {base.__module__}.{base.__name__}, "
                f"got {obj!r}",
            )
        return obj

    def import_dotted(self, section: str, dotted: str) -> Any:
        parts = dotted.strip().split(".")
        if not all(part.isidentifier() for part in parts):
            self.fail(section, f"class = {dotted}: expected a dotted name (package.module.Class)")
        module = None
        index = len(parts)
        while index > 0:
            try:
                module = importlib.import_module(".".join(parts[:index]))
                break
            except ModuleNotFoundError as exc:
                if exc.name is None or not ".".join(parts[:index]).startswith(exc.name):
                    raise  # a module found but failing on its own import: a bug there
                index -= 1
        if module is None:
            self.fail(section, f"class = {dotted}: no module named {parts[0]!r}")
        obj: Any = module
        for depth in range(index, len(parts)):
            try:
                obj = getattr(obj, parts[depth])
            except AttributeError:
                owner = ".".join(parts[:depth])
                public = [name for name in dir(obj) if not name.startswith("_")]
                self.fail(
                    section,
                    f"class = {dotted}: {owner} has no {parts[depth]!r}"
                    f"{did_you_mean(parts[depth], public)}",
                )
        return obj

    def evaluate(self, section: str, option: str, default: str, kind: type) -> Any:
        text = self.cp.get(section, option, fallback=default)
        try:
            value = eval(text, vars(logging))  # noqa: S307 - what fileConfig does
        except SyntaxError as exc:
            self.fail(section, f"{option} = {text}: not a Python expression: {exc.msg}")
        except Exception as exc:
            detail = exception_line(exc)
            self.fail(section, f"{option} = {text}: cannot evaluate it: {detail}")
        if not isinstance(value, kind):
            what = "a tuple, e.g. (sys.stderr,)" if kind is tuple else 'a dict, e.g. {"a": 1}'
            self.fail(section, f"{option} = {text}: expected {what}")
        return value

    # -- the sections

    def formatter(self, name: str) -> None:
        section = f"formatter_{name}"
        self.unknown_options(section, _OPTIONS["formatter"])
        fmt = self.cp.get(section, "format", raw=True, fallback=None)
        datefmt = self.cp.get(section, "datefmt", raw=True, fallback=None)
        style = self.cp.get(section, "style", raw=True, fallback="%")
        if style not in logging._STYLES:  # noqa: SLF001
            self.fail(section, f"style = {style}: expected one of %, {{, $")
        class_name = self.cp[section].get("class")
        cls = self.resolve(section, class_name, logging.Formatter) if class_name else None
        try:
            logging.Formatter(fmt, datefmt, style, validate=True)  # type: ignore[arg-type]
        except ValueError as exc:
            self.fail(section, f"format = {fmt}: {one_line(exc)}")
        if fmt is None:
            return
        from myservice.log import Formatter as MyFormatter

        if cls is None or cls is logging.Formatter:
            known = RECORD_FIELDS
        elif issubclass(cls, MyFormatter):
            known = RECORD_FIELDS | MYSERVICE_FIELDS
        else:  # a formatter of its own may fill fields of its own: not ours to judge
            return
        for field in _fields(fmt, style):
            if field not in known:
                self.fail(
                    section,
                    f"format = {fmt}: unknown field {field!r}{did_you_mean(field, known)}",
                )

    def handler(self, name: str, formatters: list[str], handlers: list[str]) -> None:
        section = f"handler_{name}"
        self.unknown_options(section, _OPTIONS["handler"])
        if not self.cp.has_option(section, "class"):
            self.fail(section, "missing option 'class' (e.g. class = StreamHandler)")
        class_name = self.cp.get(section, "class")
        cls = self.resolve(section, class_name, logging.Handler)
        args = self.evaluate(section, "args", "()", tuple)
        kwargs = self.evaluate(section, "kwargs", "{}", dict)
        try:
            signature = inspect.signature(cls)
        except (TypeError, ValueError):
            signature = None
        if signature is not None:
            params = signature.parameters
            takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
            named = [
                p.name
                for p in params.values()
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            ]
            for key in kwargs:
                if not takes_any and key not in named:
                    self.fail(
                        section,
                        f"kwargs = {self.cp.get(section, 'kwargs')}: {class_name} takes no "
                        f"argument {key!r}{did_you_mean(key, named)} "
                        f"(it takes: {', '.join(named)})",
                    )
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError as exc:
                self.fail(
                    section,
                    f"args = {self.cp.get(section, 'args', fallback='()')}: {class_name}"
                    f"({', '.join(named)}): {one_line(exc)}",
                )
            if issubclass(cls, logging.FileHandler) and "filename" in bound.arguments:
                self.log_file(section, self.given(section, kwargs, "filename"), bound)
            if issubclass(cls, logging.handlers.SysLogHandler):
                self.syslog_address(section, self.given(section, kwargs, "address"), bound)
        self.level(section)
        formatter = self.cp.get(section, "formatter", fallback="")
        if formatter:
            self.listed(section, "formatter", formatter, formatters, "formatters")
        target = self.cp.get(section, "target", fallback="")
        if target and issubclass(cls, logging.handlers.MemoryHandler):
            self.listed(section, "target", target, handlers, "handlers")

    def given(self, section: str, kwargs: dict[str, Any], name: str) -> str:
        """``args = ...`` or ``kwargs = ...``: the option of ``section`` that gives argument
        ``name`` of the handler class (``kwargs``: its value)."""
        option = "kwargs" if name in kwargs else "args"
        return f"{option} = {self.cp.get(section, option, fallback='()')}"

    def log_file(self, section: str, given: str, bound: inspect.BoundArguments) -> None:
        """The file of a ``logging.FileHandler`` (or a subclass: ``RotatingFileHandler``...)
        can be opened for appending: its directory exists and is writable, or the file is."""
        try:
            path = os.path.abspath(os.fspath(bound.arguments["filename"]))
        except TypeError:
            return  # not a path: the handler's own error, reported when it is created
        if os.path.isdir(path):
            self.fail(section, f"{given}: the log file {path} is a directory; name a file in it")
        if os.path.exists(path):
            if not os.access(path, os.W_OK):
                self.fail(
                    section,
                    f"{given}: the log file {path} is not writable by this user; change its "
                    "permissions or log elsewhere",
                )
            return
        directory = os.path.dirname(path)
        if not os.path.exists(directory):
            self.fail(
                section,
                f"{given}: the log file's directory {directory} does not exist; create it or "
                "log elsewhere",
            )
        if not os.path.isdir(directory):
            self.fail(
                section,
                f"{given}: the log file's directory {directory} is not a directory; log elsewhere",
            )
        if not os.access(directory, os.W_OK | os.X_OK):
            self.fail(
                section,
                f"{given}: the log file's directory {directory} is not writable by this user "
                "(the file does not exist yet); change its permissions or log elsewhere",
            )

    def syslog_address(self, section: str, given: str, bound: inspect.BoundArguments) -> None:
        """A ``SysLogHandler`` address that is a path names a Unix socket a syslog daemon
        listens on (the handler does not say so: it prints a traceback for every record).
        A (host, port) address is not checked: UDP sends to no one without an error."""
        address = bound.arguments.get("address")
        if not isinstance(address, str):
            return
        fix = f"use {_SYSLOG_UDP!r} or another handler"
        try:
            mode = os.stat(address).st_mode
        except FileNotFoundError:
            self.fail(
                section,
                f"{given}: the syslog socket {address} does not exist (no syslog daemon on "
                f"this host?); {fix}",
            )
        except OSError as exc:
            self.fail(
                section, f"{given}: the syslog socket {address}: {exception_line(exc)}; {fix}"
            )
        if not stat.S_ISSOCK(mode):
            self.fail(section, f"{given}: {address} is not a Unix socket; {fix}")
        socktype = bound.arguments.get("socktype")
        kinds = [socktype] if socktype else [socket.SOCK_DGRAM, socket.SOCK_STREAM]
        error: OSError | None = None
        for kind in kinds:  # as the handler connects
            sock = socket.socket(socket.AF_UNIX, kind)
            try:
                sock.connect(address)
                return
            except OSError as exc:
                error = exc
            finally:
                sock.close()
        self.fail(
            section,
            f"{given}: cannot connect to the syslog socket {address}: "
            f"{exception_line(error or OSError())} (is the syslog daemon running?); {fix}",
        )

    def logger(self, name: str, handlers: list[str]) -> None:
        section = f"logger_{name}"
        self.unknown_options(section, _OPTIONS["logger"])
        self.level(section)
        if name != "root":
            if not self.cp.has_option(section, "qualname"):
                self.fail(section, "missing option 'qualname' (the logger's name, e.g. myservice)")
            propagate = self.cp.get(section, "propagate", fallback="1")
            try:
                int(propagate)
            except ValueError:
                self.fail(section, f"propagate = {propagate}: expected an integer (1 or 0)")
        if not self.cp.has_option(section, "handlers"):
            self.fail(
                section,
                "missing option 'handlers' (handler names, comma-separated; may be empty)",
            )
        value = self.cp.get(section, "handlers")
        if value.strip():
            for handler in (part.strip() for part in value.split(",")):
                self.listed(section, "handlers", handler, handlers, "handlers")

    def run(self) -> None:
        loggers = self.names("loggers")
        handlers = self.names("handlers")
        formatters = self.names("formatters")
        if "root" not in loggers:
            self.fail(
                "loggers",
                f"keys = {self.cp.get('loggers', 'keys')}: must list 'root' "
                "(with a [logger_root] section)",
            )
        for name in formatters:
            self.formatter(name)
        for name in handlers:
            self.handler(name, formatters, handlers)
        for name in loggers:
            self.logger(name, handlers)


def _fields(fmt: str, style: str) -> list[str]:
    """The record attributes format string ``fmt`` of ``style`` shows."""
    if style == "%":
        return [m.group(1) for m in re.finditer(r"%(?:%|\((\w+)\))", fmt) if m.group(1)]
    if style == "{":
        fields = []
        for _, field, _, _ in string.Formatter().parse(fmt):
            base = re.match(r"\w+", field or "")
            if base:
                fields.append(base.group(0))
        return fields
    return list(string.Template(fmt).get_identifiers())


def check_logging(cp: configparser.ConfigParser, ini: Path) -> None:
    """Check the logging sections of ``cp`` (read from ``ini``, which has ``[loggers]``) as
    ``logging.config.fileConfig`` will read them; raise :class:`ConfigError` on the first
    problem.  (A mistyped ``[prefix:name`` header is looked for before, by
    :func:`myservice.cmd.api.configure_logging`.)"""
    try:
        _Checker(cp, ini).run()
    except configparser.InterpolationMissingOptionError as exc:
        raw = cp.get(exc.section, exc.option, raw=True)
        names = cp.options(exc.section)
        raise ConfigError(
            f"{ini} [{exc.section}]: {exc.option} = {raw}: %({exc.reference})s names no option "
            f"of [{exc.section}] or [DEFAULT]{did_you_mean(exc.reference, names)} "
            "(write %% for a literal %)"
        ) from None
    except configparser.InterpolationError as exc:
        raise ConfigError(f"{ini} [{exc.section}]: {exc.option}: {one_line(exc.message)}") from None


# -- [server:main] for waitress --------------------------------------------------------------

_TRUE = ("true", "yes", "on", "1", "t", "y")
_FALSE = ("false", "no", "off", "0", "f", "n", "")
#: a smallest value waitress can work with
_MINIMUM = {"threads": 1}


def waitress_options() -> dict[str, Any]:
    """waitress's options and their converters (``Adjustments._params``)."""
    from waitress.adjustments import Adjustments

    return dict(Adjustments._params)  # noqa: SLF001


def check_unknown(origin: str, names: list[str], extra: tuple[str, ...] = ()) -> None:
    """Every one of ``names`` must be a waitress option (or one of ``extra``)."""
    known = [*waitress_options(), *extra]
    for name in names:
        if name not in known:
            raise ConfigError(f"{origin}: unknown option {name!r}{did_you_mean(name, known)}")


def check_values(origin: str, settings: Mapping[str, Any]) -> None:
    """The value of each option, by the type waitress converts it to."""
    from waitress import adjustments as wa

    params = waitress_options()
    check_unknown(origin, list(settings))
    for name, value in settings.items():
        convert = params[name]
        text = str(value).strip()
        if convert is int:
            expected = "a port number 0-65535" if name == "port" else "an integer"
            try:
                number = int(text)
            except ValueError:
                raise _bad(origin, name, value, expected) from None
            if name == "port" and not 0 <= number <= 65535:
                raise _bad(origin, name, value, expected)
            if number < _MINIMUM.get(name, number):
                raise _bad(origin, name, value, f"an integer >= {_MINIMUM[name]}")
        elif convert is wa.asbool:
            if text.lower() not in _TRUE + _FALSE:
                expected = "a boolean (true/false, yes/no, on/off, 1/0)"
                raise _bad(origin, name, value, expected, _TRUE + _FALSE)
        elif convert is wa.asoctal:
            try:
                int(text, 8)
            except ValueError:
                expected = "an octal number of permission bits, e.g. 600"
                raise _bad(origin, name, value, expected) from None
        elif name == "trusted_proxy_headers":
            known = sorted(wa.KNOWN_PROXY_HEADERS)
            for header in wa.asset(value):
                if header.lower() not in wa.KNOWN_PROXY_HEADERS:
                    raise ConfigError(
                        f"{origin}: {name} = {value}: unknown header {header!r}"
                        f"{did_you_mean(header.lower(), known)} (known: {', '.join(known)})"
                    )


def _bad(
    origin: str, name: str, value: Any, expected: str, choices: tuple[str, ...] = ()
) -> ConfigError:
    hint = did_you_mean(str(value).strip().lower(), choices) if choices else ""
    return ConfigError(f"{origin}: {name} = {value}: expected {expected}{hint}")


def explain_address(origin: str, settings: Mapping[str, Any], host_from_cli: bool) -> str:
    """Why waitress said ``Invalid host/port specified.``: which address does not resolve."""
    from waitress.adjustments import asbool, aslist

    if "listen" in settings:
        entries = aslist(settings["listen"])
        source = "listen"
    else:
        entries = [f"{settings.get('host', '0.0.0.0')}:{settings.get('port', 8080)}"]
        source = "--host" if host_from_cli else "host"
    ipv4 = asbool(settings.get("ipv4", True))
    ipv6 = asbool(settings.get("ipv6", True))
    family = socket.AF_INET if ipv4 and not ipv6 else socket.AF_INET6 if ipv6 and not ipv4 else 0
    for entry in entries:
        host, sep, port = entry.rpartition(":")
        if not sep or "]" in port:
            host, port = entry, str(settings.get("port", 8080))
        host = host.strip("[]")
        shown = f"{host}:{port}"
        if not port.isdigit():
            return f"{origin}: cannot listen on {shown}: port {port!r} is not a number"
        try:
            socket.getaddrinfo(
                None if host == "*" else host,
                port,
                family,
                socket.SOCK_STREAM,
                socket.IPPROTO_TCP,
                socket.AI_PASSIVE,
            )
        except socket.gaierror as exc:
            return (
                f"{origin}: cannot listen on {shown}: host {host!r} (from {source}) "
                f"does not resolve: {exc.strerror}"
            )
    return f"{origin}: cannot listen on {', '.join(entries)}: waitress: invalid host/port"


def _is_subclass(value: Any, base: type) -> bool:
    return isinstance(value, type) and issubclass(value, base)
