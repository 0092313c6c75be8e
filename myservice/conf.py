"""Every configuration option of the service, declared once.

``etc/myservice.conf`` is an INI file.  Each option below has a section, a name, a type, a
default and a help text; :func:`load` reads a file against these declarations and refuses
anything else, naming the file, the section, the option, what was expected and the closest
valid name.  :func:`generate_sample` writes ``etc/myservice.conf.sample`` from the same
declarations (a test keeps the shipped sample in sync).

Values may use ``%(here)s`` (the directory of the config file) and ``%(state_path)s``.

Sections named ``[plugin:NAME]`` are free-form: they belong to the third-party plugin NAME,
which validates them itself (:meth:`Config.plugin_options`).

Filters built by Paste Deploy may override the options of their own section from their
``[filter:...]`` section of ``api-paste.ini`` (:meth:`Config.with_overrides`); the same
declarations validate those values.
"""

from __future__ import annotations

import configparser
import os
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from myservice.suggest import closest, did_you_mean

#: the key under which the urlmap composite hands the loaded :class:`Config` to every factory
GLOBAL_CONF_KEY = "myservice.config"


class ConfigError(ValueError):
    """A configuration file or value is wrong.  The message is meant for the operator as is."""


# -- value types -------------------------------------------------------------------------


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    hint = did_you_mean(lowered, ("true", "false", "yes", "no", "on", "off"))
    raise ValueError(f"expected a boolean (true/false, yes/no, on/off, 1/0){hint}")


def _parse_int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError("expected an integer") from None


def _parse_float(text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError("expected a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError("expected a finite number")
    return value


def _parse_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _parse_str(text: str) -> str:
    return text.strip()


def _parse_endpoint(text: str) -> str:
    """An http(s) base URL (``https://api.example.com``, ``https://h/prefix``) without its
    trailing ``/``; ``""`` for empty."""
    value = text.strip()
    if not value:
        return ""
    expected = "expected an http:// or https:// URL with a host, e.g. https://api.example.com"
    try:
        parts = urllib.parse.urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise ValueError(expected) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(expected)
    if parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError(f"{expected}, and no user, query or fragment")
    return value.rstrip("/")


_PARSERS: dict[str, Callable[[str], Any]] = {
    "str": _parse_str,
    "path": _parse_str,
    "url": _parse_str,
    "endpoint": _parse_endpoint,
    "bool": _parse_bool,
    "int": _parse_int,
    "float": _parse_float,
    "list": _parse_list,
}


@dataclass(frozen=True)
class Opt:
    """One option: its name, type (``str``, ``path``, ``url``, ``endpoint`` (an http(s) base
    URL), ``bool``, ``int``, ``float``, ``list``), default (already of that type), help
    text, and optional bounds or choices.  ``secret`` options are masked wherever they are
    shown."""

    name: str
    type: str
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None
    secret: bool = False

    def parse(self, text: str) -> Any:
        value = _PARSERS[self.type](text)
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"expected a value >= {self.minimum:g}")
        if self.maximum is not None and value > self.maximum:
            raise ValueError(f"expected a value <= {self.maximum:g}")
        if self.choices is not None and value not in self.choices:
            hint = did_you_mean(str(value), self.choices)
            raise ValueError(f"expected one of {', '.join(self.choices)}{hint}")
        return value

    def render_default(self) -> str:
        if self.type == "bool":
            return "true" if self.default else "false"
        if self.type == "list":
            return ", ".join(self.default)
        if self.default is None:
            return ""
        return str(self.default)


# -- the declarations ----------------------------------------------------------------------

OPTIONS: dict[str, tuple[Opt, ...]] = {
    "DEFAULT": (
        Opt(
            "state_path",
            "path",
            "%(here)s/state",
            "Directory holding all state of this service (the embedded SQLite database, "
            "tokens, audit log). Created on first start.",
        ),
    ),
    "storage": (
        Opt(
            "driver",
            "str",
            "sqlite",
            "Storage driver, by its name in the 'myservice.storage' namespace: memory, "
            "sqlite, postgresql, mysql, or one installed by a third-party package.",
        ),
        Opt(
            "connection",
            "url",
            "",
            "Database URL for the SQL drivers (SQLAlchemy form, e.g. "
            "postgresql+psycopg://user:password@host/db). Empty: the sqlite driver uses "
            "%(state_path)s/myservice.sqlite.",
            secret=True,
        ),
        Opt("pool_size", "int", 5, "Connections kept open per process (SQL drivers).", 1),
        Opt(
            "pool_timeout",
            "float",
            10.0,
            "Seconds to wait for a free pooled connection before answering 503.",
            0.1,
        ),
        Opt(
            "connect_timeout",
            "int",
            5,
            "Seconds to wait when opening a database connection (server drivers).",
            1,
        ),
        Opt(
            "query_timeout",
            "float",
            30.0,
            "Seconds a database statement may take before its request is answered 503 "
            "(server drivers; 0: no limit). mysql bounds every read and write on the "
            "connection; postgresql bounds statements on the server (statement_timeout), a "
            "silent network (TCP keepalives, tcp_user_timeout) and, after a grace of "
            "min(query_timeout, 5) s more, any wait for the server's answer. Schema upgrades "
            "have no limit.",
            0,
            3600,
        ),
        Opt(
            "auto_upgrade",
            "bool",
            False,
            "Upgrade the schema on start-up. The embedded sqlite default always does; for "
            "the server drivers run 'myservice-manage db upgrade' instead.",
        ),
    ),
    "api": (
        Opt(
            "extensions",
            "list",
            ["*"],
            "API extensions to load, by alias in 'myservice.api.extensions': '*' for all "
            "installed, or a comma-separated list. Extensions not listed are not imported.",
        ),
        Opt("default_limit", "int", 100, "Page size of list calls without ?limit=.", 1),
        Opt("max_limit", "int", 1000, "Largest page a list call returns.", 1),
        Opt(
            "public_endpoint",
            "endpoint",
            "",
            "Base URL of the links the API returns (Location, 'next', the versions "
            "document), e.g. https://api.example.com; the mount point (/v1) is added to it. "
            "Empty: built from each request's scheme and Host header, which the client "
            "chooses. Set it when the service is exposed.",
        ),
    ),
    "auth": (
        Opt(
            "token_file",
            "path",
            "%(state_path)s/tokens.json",
            "File of hashed API tokens, managed with 'myservice-manage token'.",
        ),
        Opt(
            "www_authenticate_realm",
            "str",
            "myservice",
            "Realm announced in the WWW-Authenticate header of 401 responses.",
        ),
        Opt(
            "public_paths",
            "list",
            ["/v1/openapi.json"],
            "Exact paths the auth filter lets through without a token (identity headers a "
            "client sent are still removed). The /v1 router answers only routes declared "
            "public without a token; any other path listed here still gets 401 from it.",
        ),
    ),
    "sizelimit": (
        Opt(
            "max_request_body_size",
            "int",
            114688,
            "Largest request body accepted, in bytes; larger bodies get 413.",
            0,
        ),
    ),
    "access_log": (
        Opt(
            "interval",
            "float",
            0.02,
            "Seconds a finished request's access-log line may wait before a background "
            "thread hands it, with the others of that moment, to logging. 0: each line is "
            "logged on the request's own thread before the response is sent.",
            0.0,
            5.0,
        ),
    ),
    "http_proxy_to_wsgi": (
        Opt(
            "enable_proxy_headers_parsing",
            "bool",
            False,
            "Trust Forwarded / X-Forwarded-* headers from a reverse proxy in front of the "
            "service. Leave off unless such a proxy is always in front.",
        ),
        Opt(
            "proxy_headers",
            "str",
            "x-forwarded",
            "The family of headers the proxy in front sets: x-forwarded (X-Forwarded-For, "
            "-Proto, -Host; nginx, HAProxy) or forwarded (RFC 7239 Forwarded). The other "
            "family is ignored, since a proxy passes through what it does not set.",
            choices=("x-forwarded", "forwarded"),
        ),
        Opt(
            "trusted_proxies",
            "int",
            1,
            "How many reverse proxies are in front, each adding one element to "
            "X-Forwarded-For / Forwarded: the element this many from the right is read (1: "
            "the one the proxy nearest the service added); elements further left come from "
            "the client and are ignored, as are headers with fewer elements.",
            1,
            16,
        ),
    ),
    "cors": (
        Opt(
            "allowed_origin",
            "list",
            [],
            "Origins allowed to make cross-origin requests (e.g. https://dashboard.example); "
            "'*': any origin, answered 'Access-Control-Allow-Origin: *'; empty: CORS disabled. "
            "When set, every response carries 'Vary: Origin'.",
        ),
        Opt(
            "allow_credentials",
            "bool",
            False,
            "Answer Access-Control-Allow-Credentials. Not with allowed_origin = * (refused at "
            "start-up): list the origins explicitly.",
        ),
        Opt(
            "allow_methods",
            "list",
            ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            "Methods allowed in cross-origin requests (the default: every method of the API).",
        ),
        Opt(
            "allow_headers",
            "list",
            ["Content-Type", "X-Auth-Token", "Authorization", "X-OpenStack-Request-ID"],
            "Request headers allowed in cross-origin requests (the default: those the API "
            "reads; Authorization carries 'Bearer TOKEN').",
        ),
        Opt(
            "expose_headers",
            "list",
            ["X-OpenStack-Request-ID", "Location"],
            "Response headers exposed to cross-origin callers.",
        ),
        Opt("max_age", "int", 3600, "Seconds a preflight answer may be cached.", 0),
    ),
    "healthcheck": (
        Opt(
            "disable_by_file_path",
            "path",
            "",
            "If this file exists, /healthcheck answers 503 (take a node out of a load "
            "balancer without stopping it).",
        ),
    ),
    "hooks": (
        Opt(
            "disabled",
            "list",
            [],
            "Event hooks not to run, by hook name (e.g. audit, notify), without uninstalling.",
        ),
        Opt("timeout", "float", 5.0, "Seconds a hook may run before it is abandoned.", 0.01),
        Opt(
            "queue_size",
            "int",
            1000,
            "Events each hook may have waiting (hooks run after the response, in the "
            "background); when a hook falls this far behind, further events are dropped for "
            "it and logged at ERROR.",
            1,
            1000000,
        ),
    ),
    "audit": (
        Opt(
            "path",
            "path",
            "%(state_path)s/audit.jsonl",
            "JSON Lines file the audit hook appends one line per event to.",
        ),
    ),
    "notify": (
        Opt(
            "transport_url",
            "url",
            "",
            "AMQP broker the notify hook publishes to (kombu URL, e.g. "
            "amqp://guest:guest@127.0.0.1:5672//). Empty: the notify hook is off.",
            secret=True,
        ),
        Opt("exchange", "str", "myservice", "Topic exchange of the notifications."),
        Opt("topic", "str", "notifications", "Routing key prefix (topic.priority)."),
        Opt("publisher_id", "str", "myservice.api", "publisher_id of the notifications."),
    ),
}

_DEFAULT = "DEFAULT"
_PLUGIN_PREFIX = "plugin:"


# -- the loaded configuration -----------------------------------------------------------------


class Section:
    """Read-only attribute access to one section's parsed values (``conf.storage.driver``)."""

    __slots__ = ("_name", "_values")

    def __init__(self, name: str, values: Mapping[str, Any]) -> None:
        self._name = name
        self._values = MappingProxyType(dict(values))

    def __getattr__(self, item: str) -> Any:
        try:
            return self._values[item]
        except KeyError:
            raise AttributeError(f"no option {item!r} in section [{self._name}]") from None

    def __getitem__(self, item: str) -> Any:
        return self._values[item]

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)

    def __repr__(self) -> str:
        secrets = {o.name for o in OPTIONS.get(self._name, ()) if o.secret}
        shown = {k: ("***" if k in secrets and v else v) for k, v in self._values.items()}
        return f"<Section [{self._name}] {shown}>"


@dataclass(frozen=True)
class Config:
    """The parsed configuration; immutable, so one object can be shared by every factory.

    ``path`` is the file it came from (``None`` for defaults only); ``sources`` maps
    ``(section, option)`` to where a value was set, for error messages.
    """

    path: Path | None
    sections: Mapping[str, Section]
    plugins: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    sources: Mapping[tuple[str, str], str] = field(default_factory=dict)

    def __getattr__(self, item: str) -> Section:
        sections = object.__getattribute__(self, "sections")
        if item in sections:
            return sections[item]
        raise AttributeError(item)

    @property
    def state_path(self) -> Path:
        return Path(self.sections[_DEFAULT].state_path)

    def plugin_options(self, name: str) -> dict[str, str]:
        """The raw options of ``[plugin:NAME]`` (empty if absent), for third-party plugins."""
        return dict(self.plugins.get(name, {}))

    def source(self, section: str, option: str) -> str:
        """Where ``[section] option`` was set: 'FILE' or 'FILE [filter:x]' or 'default'."""
        return self.sources.get((section, option), "default")

    def with_overrides(self, section: str, values: Mapping[str, str], origin: str) -> Config:
        """A copy with ``values`` (raw strings, e.g. a paste filter's local options) applied
        to ``section``; validated like the file, errors name ``origin``."""
        if not values:
            return self
        parsed = self.sections[section].as_dict()
        sources = dict(self.sources)
        here = str(self.path.parent) if self.path else os.getcwd()
        for name, raw in values.items():
            opt = _lookup(section, name, origin)
            parsed[name] = _parse(opt, raw, section, origin, here, str(self.state_path))
            sources[(section, name)] = origin
        sections = dict(self.sections)
        sections[section] = Section(section, parsed)
        config = Config(self.path, MappingProxyType(sections), self.plugins, sources)
        _check_order(config)
        return config


#: options whose values must be in order: (section, smaller, larger), smaller <= larger
ORDERED_OPTIONS: tuple[tuple[str, str, str], ...] = (("api", "default_limit", "max_limit"),)


def _check_order(conf: Config) -> None:
    """Refuse values that are valid alone but not together (:data:`ORDERED_OPTIONS`), naming
    where each was set."""
    for section, low, high in ORDERED_OPTIONS:
        low_value, high_value = conf.sections[section][low], conf.sections[section][high]
        if low_value <= high_value:
            continue
        low_from, high_from = conf.source(section, low), conf.source(section, high)
        origin = low_from if low_from != "default" else high_from
        low_note = " (the default)" if low_from == "default" else ""
        high_note = ""
        if high_from == "default":
            high_note = " (the default)"
        elif high_from != origin:
            high_note = f" (set in {high_from})"
        raise ConfigError(
            f"{origin}: [{section}] {low} = {low_value}{low_note} is larger than "
            f"{high} = {high_value}{high_note}: {low} must be at most {high}; set {low} to "
            f"{high_value} or less, or raise {high}"
        )


def _lookup(section: str, name: str, origin: str) -> Opt:
    opts = {o.name: o for o in OPTIONS[section]}
    if name in opts:
        return opts[name]
    hint = did_you_mean(name, opts)
    raise ConfigError(
        f"{origin}: [{section}] {name}: unknown option{hint} "
        f"(options of [{section}]: {', '.join(sorted(opts))})"
    )


def _interpolate(raw: str, here: str, state_path: str | None) -> str:
    text = raw.replace("%(here)s", here)
    if state_path is not None:
        text = text.replace("%(state_path)s", state_path)
    return text


def _parse(opt: Opt, raw: str, section: str, origin: str, here: str, state_path: str | None):
    text = _interpolate(raw, here, state_path)
    try:
        value = opt.parse(text)
    except ValueError as exc:
        shown = "***" if opt.secret else text
        # "...; did you mean 'x'?" of the parser goes after the value it is about
        detail, sep, hint = str(exc).partition("; did you mean")
        hint = f"{sep}{hint}" if sep and not opt.secret else ""
        raise ConfigError(
            f"{origin}: [{section}] {opt.name}: {detail}, got {shown!r}{hint}"
        ) from None
    if opt.type == "path" and value:
        value = str(Path(value).expanduser())
    return value


def _defaults(here: str) -> tuple[dict[str, dict[str, Any]], str]:
    state_opt = OPTIONS[_DEFAULT][0]
    state_path = str(Path(_interpolate(state_opt.default, here, None)))
    parsed: dict[str, dict[str, Any]] = {}
    for section, opts in OPTIONS.items():
        parsed[section] = {}
        for opt in opts:
            default = opt.default
            if isinstance(default, str):
                default = _interpolate(default, here, state_path)
            elif isinstance(default, list):
                default = list(default)
            parsed[section][opt.name] = default
    parsed[_DEFAULT]["state_path"] = state_path
    return parsed, state_path


def defaults(here: str | None = None) -> Config:
    """The configuration with every option at its default (``here`` defaults to the cwd)."""
    values, _ = _defaults(here or os.getcwd())
    return Config(None, MappingProxyType({k: Section(k, v) for k, v in values.items()}))


def load(path: str | os.PathLike[str]) -> Config:
    """Read and validate ``path``.

    Raises :class:`ConfigError` for a missing or unreadable file, a syntax error, an unknown
    section or option (with the closest valid name), a bad value (with what was expected) or
    values that contradict each other (:data:`ORDERED_OPTIONS`: ``[api] default_limit`` above
    ``max_limit``).
    """
    path = Path(path).resolve()
    origin = str(path)
    parser = configparser.ConfigParser(interpolation=None, default_section=_DEFAULT)
    parser.optionxform = str  # option names are case-sensitive, like the declarations
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle, source=origin)
    except FileNotFoundError:
        raise ConfigError(f"{origin}: configuration file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{origin}: cannot read configuration file: {exc}") from None
    except INI_SYNTAX_ERRORS as exc:
        raise ini_syntax_error(origin, exc) from None
    except configparser.Error as exc:
        raise ConfigError(f"{origin}: not a valid INI file: {one_line(exc)}") from None

    here = str(path.parent)
    values, state_path = _defaults(here)
    sources: dict[tuple[str, str], str] = {}
    raw_defaults = dict(parser.defaults())
    if "state_path" in raw_defaults:
        state_path = _parse(
            _lookup(_DEFAULT, "state_path", origin),
            raw_defaults["state_path"],
            _DEFAULT,
            origin,
            here,
            None,
        )
        values = _defaults_with_state(here, state_path)
    for name, raw in raw_defaults.items():
        opt = _lookup(_DEFAULT, name, origin)
        values[_DEFAULT][name] = _parse(opt, raw, _DEFAULT, origin, here, state_path)
        sources[(_DEFAULT, name)] = origin

    plugins: dict[str, dict[str, str]] = {}
    for section in parser.sections():
        if section.startswith(_PLUGIN_PREFIX):
            own = {k: v for k, v in parser.items(section) if k not in raw_defaults}
            plugins[section[len(_PLUGIN_PREFIX) :]] = own
            continue
        if section not in OPTIONS or section == _DEFAULT:
            known = [s for s in OPTIONS if s != _DEFAULT]
            close = closest(section, known)
            hint = f"; did you mean [{close}]?" if close else ""
            raise ConfigError(
                f"{origin}: [{section}]: unknown section{hint} "
                f"(known sections: {', '.join(known)}, or [plugin:NAME] for a plugin)"
            )
        for name in parser.options(section):
            if name in raw_defaults and parser.get(section, name) == raw_defaults[name]:
                continue  # inherited from [DEFAULT]
            opt = _lookup(section, name, origin)
            values[section][name] = _parse(
                opt, parser.get(section, name), section, origin, here, state_path
            )
            sources[(section, name)] = origin
    config = Config(
        path,
        MappingProxyType({k: Section(k, v) for k, v in values.items()}),
        MappingProxyType(plugins),
        MappingProxyType(sources),
    )
    _check_order(config)
    return config


#: what configparser raises for a file that is not INI syntax (:func:`ini_syntax_error`)
INI_SYNTAX_ERRORS = (
    configparser.MissingSectionHeaderError,
    configparser.ParsingError,
    configparser.DuplicateSectionError,
    configparser.DuplicateOptionError,
)


def ini_syntax_error(path: str | os.PathLike[str], exc: configparser.Error) -> ConfigError:
    """One line for a syntax error ``exc`` that configparser raised reading ``path``: the
    file as text, the line number, the section, what was expected and, for a broken
    ``[section]`` header, the header it was probably meant to be."""
    origin = str(path)
    lines = _read_lines(origin)
    if isinstance(exc, configparser.MissingSectionHeaderError):
        meant = _meant_header(exc.line)
        hint = f"; did you mean [{meant}]?" if meant else ""
        return ConfigError(
            f"{origin}: line {exc.lineno}: {_shown(exc.line)} comes before the first "
            f"[section] header; expected a [section] line first{hint}"
        )
    if isinstance(exc, configparser.ParsingError):
        lineno = exc.errors[0][0]
        text = lines[lineno - 1] if 0 < lineno <= len(lines) else exc.errors[0][1]
        section = _section_at(lines, lineno)
        where = f" [{section}]" if section else ""
        stripped = text.strip()
        if stripped.startswith("[") or stripped.endswith("]"):
            hint = f"; did you mean [{stripped.strip('[]').strip()}]?"
        else:
            hint = " (a value continued from the line above is indented)"
        more = len(exc.errors) - 1
        tail = f" ({more} more such line{'s' if more > 1 else ''} after it)" if more else ""
        return ConfigError(
            f"{origin}: line {lineno}{where}: {_shown(text)} is neither a [section] header "
            f"nor a 'name = value' line{hint}{tail}"
        )
    if isinstance(exc, configparser.DuplicateSectionError):
        return ConfigError(
            f"{origin}: line {exc.lineno}: section [{exc.section}] appears a second time; "
            "merge the two (a section may appear once)"
        )
    if isinstance(exc, configparser.DuplicateOptionError):
        broken = _broken_header(lines, exc.section, exc.lineno)
        if broken:
            number, text = broken
            return ConfigError(
                f"{origin}: line {number}: {_shown(text)} is not a section header; did you "
                f"mean [{text.strip().strip('[]').strip()}]? (the lines after it are read "
                f"as part of [{exc.section}], where line {exc.lineno} sets {exc.option!r} a "
                "second time)"
            )
        return ConfigError(
            f"{origin}: line {exc.lineno} [{exc.section}]: option {exc.option!r} is set a "
            "second time in this section; keep one (an option may appear once per section)"
        )
    return ConfigError(f"{origin}: not a valid INI file: {one_line(exc)}")


def ini_misread_header(path: str | os.PathLike[str]) -> ConfigError | None:
    """For a file configparser read without an error: its first mistyped ``[section``
    header (or ``prefix:name]``), which configparser read as an option of the section above
    it (``[server:main``: option ``[server`` = ``main``, the ':' as delimiter), the lines
    after it as options of that section too; in the words of :func:`ini_syntax_error`;
    None when there is none.  (Such a line without a ':' or '=' is a ParsingError, and one
    whose options repeat those of the section above a DuplicateOptionError, both named by
    :func:`ini_syntax_error`.)"""
    origin = str(path)
    lines = _read_lines(origin)
    for number, line in enumerate(lines, 1):
        if line[:1].isspace() or _header(line) is not None:
            continue  # a continuation line (or a blank one), or a header
        meant = _meant_header(line)
        if meant is None:
            continue
        section = _section_at(lines, number) or configparser.DEFAULTSECT
        return ConfigError(
            f"{origin}: line {number}: {_shown(line)} is not a section header; did you mean "
            f"[{meant}]? (it and the lines after it are read as options of [{section}])"
        )
    return None


def _meant_header(line: str) -> str | None:
    """The section name a line that is not a valid header was probably meant to open:
    ``[name`` (the ']' missing), or ``prefix:name]`` (the '[' missing); else None."""
    stripped = line.strip()
    if stripped.startswith(("#", ";")):
        return None
    if stripped.startswith("[") and "]" not in stripped[1:]:
        name = stripped[1:].strip()
    elif (
        stripped.endswith("]")
        and ":" in stripped[1:-1]
        and not any(c.isspace() or c in "[]=" for c in stripped[:-1])
    ):
        name = stripped[:-1]
    else:
        return None
    return name if name else None


def _read_lines(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read().splitlines()
    except OSError:
        return []


def _shown(line: str) -> str:
    return repr(line.rstrip("\r\n"))


def _header(line: str) -> str | None:
    """The section name of a valid ``[section]`` header line, else None (configparser's
    rule: the line, stripped, starts with '[' and has a later ']')."""
    stripped = line.strip()
    if stripped.startswith("[") and "]" in stripped[1:]:
        return stripped[1:].rpartition("]")[0]
    return None


def _section_at(lines: list[str], lineno: int) -> str | None:
    """The section line ``lineno`` (1-based) of ``lines`` is in, if any."""
    for line in reversed(lines[: lineno - 1]):
        name = _header(line)
        if name is not None:
            return name
    return None


def _broken_header(lines: list[str], section: str, lineno: int) -> tuple[int, str] | None:
    """A line of ``[section]`` before ``lineno`` that looks like a mistyped section header
    (``[name`` or ``name]``), with its number."""
    for number in range(lineno - 1, 0, -1):
        line = lines[number - 1] if number <= len(lines) else ""
        if _header(line) is not None:
            return None
        stripped = line.strip()
        if line[:1].isspace() or stripped.startswith(("#", ";")):
            continue
        if stripped.startswith("[") or stripped.endswith("]"):
            return number, line
    return None


def _defaults_with_state(here: str, state_path: str) -> dict[str, dict[str, Any]]:
    values, _ = _defaults(here)
    for section, opts in OPTIONS.items():
        for opt in opts:
            if isinstance(opt.default, str) and "%(state_path)s" in opt.default:
                values[section][opt.name] = opt.default.replace("%(state_path)s", state_path)
    values[_DEFAULT]["state_path"] = state_path
    return values


def one_line(value: object) -> str:
    """``str(value)`` on one line, each run of whitespace as one space; for an exception with
    no message, its type name.  For error messages printed on one line."""
    text = " ".join(str(value).split())
    if not text and isinstance(value, BaseException):
        return type(value).__name__
    return text


def exception_line(exc: BaseException, qualified: bool = False) -> str:
    """``Type: message`` on one line (just ``Type`` without a message); ``qualified``: a type
    that is not a built-in is named with its module (``psycopg.errors.UndefinedTable``)."""
    cls = type(exc)
    kind = cls.__qualname__ if qualified else cls.__name__
    if qualified and cls.__module__ != "builtins":
        kind = f"{cls.__module__}.{kind}"
    text = " ".join(str(exc).split())  # not one_line: no type name for an empty message
    return f"{kind}: {text}" if text else kind


def from_global_conf(global_conf: Mapping[str, Any]) -> Config:
    """The :class:`Config` for a Paste Deploy factory.

    Returns the object the urlmap composite put under :data:`GLOBAL_CONF_KEY` when there is
    one (so every factory of one application shares one parse), else loads
    ``global_conf['config_file']`` (``[DEFAULT] config_file`` in ``api-paste.ini``), else
    defaults relative to the paste file's directory.
    """
    shared = global_conf.get(GLOBAL_CONF_KEY)
    if isinstance(shared, Config):
        return shared
    config_file = global_conf.get("config_file")
    if config_file:
        return load(config_file)
    return defaults(global_conf.get("here"))


def paste_overrides(
    conf: Config, section: str, local_conf: Mapping[str, str], global_conf: Mapping[str, Any]
) -> Config:
    """Apply a filter's ``[filter:...]`` options from ``api-paste.ini`` to ``section``.

    Keys Paste Deploy adds itself (``use``, ``paste.filter_factory``...) are ignored.
    """
    own = {k: v for k, v in local_conf.items() if k not in _PASTE_KEYS and k not in global_conf}
    origin = f"{global_conf.get('__file__', 'api-paste.ini')} [filter:{section}]"
    return conf.with_overrides(section, own, origin)


_PASTE_KEYS = frozenset({"use", "paste.filter_factory", "paste.filter_app_factory", "next"})


# -- the sample file ------------------------------------------------------------------------


def _wrap(text: str, width: int = 78) -> Iterable[str]:
    line = "#"
    for word in text.split():
        if len(line) + 1 + len(word) > width:
            yield line
            line = "#"
        line += " " + word
    if line != "#":
        yield line


def generate_sample() -> str:
    """The text of ``etc/myservice.conf.sample``: every option, commented out, at its default."""
    out = [
        "# Sample configuration of myservice, generated from myservice/conf.py.",
        "# Regenerate with: python -m myservice.conf > etc/myservice.conf.sample",
        "# Every option is shown at its default, commented out.",
        "",
    ]
    for section, opts in OPTIONS.items():
        out.append(f"[{section}]")
        out.append("")
        for opt in opts:
            out.extend(_wrap(opt.help))
            out.append(f"# Type: {opt.type}")
            out.append(f"#{opt.name} = {opt.render_default()}".rstrip())
            out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


if __name__ == "__main__":  # pragma: no cover - exercised by the sample sync test via import
    print(generate_sample(), end="")
