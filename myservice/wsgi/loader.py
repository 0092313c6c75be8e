"""Build the application from a Paste Deploy ini file, with start-up errors an operator can act on.

:func:`load_app` wraps :func:`paste.deploy.loadapp` for tests and ``myservice-api``.
:func:`explain` turns what Paste Deploy raises for a broken ini file (``LookupError`` for an
unknown ``egg:myservice#NAME`` or a pipeline naming a missing section, an uninstalled
distribution, ...) into one :class:`~myservice.conf.ConfigError` line naming the ini file,
the section, the names that exist and the closest one.  The urlmap composite calls it where
it loads its sub-applications, :func:`load_app` for anything raised outside the composite.
"""

from __future__ import annotations

import configparser
import logging
import os
import re
import sys
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError
from pathlib import Path
from typing import Any

import importlib_metadata
from paste.deploy import loadapp

from myservice.conf import INI_SYNTAX_ERRORS, ConfigError, ini_syntax_error, one_line
from myservice.plugins.discovery import normalize_name
from myservice.suggest import closest, did_you_mean

LOG = logging.getLogger(__name__)

#: entry-point group of the filters an ini file may name
MIDDLEWARE_NAMESPACE = "myservice.middleware"

_EGG_NOT_FOUND = re.compile(
    r"Entry point '(?P<name>[^']*)' not found in egg '(?P<egg>[^']*)'"
    r" \(protocols: (?P<protos>[^;)]*)"
)
_NO_SECTION = re.compile(
    r"No section '(?P<name>[^']*)' \(prefixed by (?P<prefixes>.*?)\) found in config"
)
_FILTER_PROTOCOLS = ("paste.filter_factory", "paste.filter_app_factory")
_APP_PROTOCOLS = ("paste.app_factory", "paste.composite_factory")


def load_app(
    ini_path: str | os.PathLike[str],
    name: str = "main",
    global_conf: Mapping[str, Any] | None = None,
) -> Any:
    """The WSGI application ``name`` of the Paste Deploy file ``ini_path``.

    ``global_conf`` entries override ``[DEFAULT]`` for every factory (e.g.
    ``{"config_file": "/tmp/x/myservice.conf"}``); their values must be strings, because
    Paste Deploy also uses them to interpolate the file.  Raises :class:`ConfigError` (one line,
    naming the file) for a missing ini file and for every error :func:`explain` knows.
    """
    extra = dict(global_conf or {})
    odd = sorted(k for k, v in extra.items() if not isinstance(v, str))
    if odd:
        raise TypeError(f"load_app: global_conf values must be strings, not for {odd}")
    path = Path(ini_path).resolve()
    if not path.is_file():
        raise ConfigError(f"{path}: paste deploy file not found")
    try:
        return loadapp(f"config:{path}", name=name, global_conf=extra)
    except ConfigError:
        raise
    except (LookupError, ImportError, configparser.Error) as exc:
        raise explain(exc, str(path)) from None


#: (module, class) of the exception each server runner prints as one line, without a
#: traceback: PasteScript's ``paster`` (the message on stdout, exit status 2) and gunicorn (on
#: stderr, then "App failed to load." and the arbiter stops)
_RUNNER_ERRORS = (("paste.script.command", "BadCommand"), ("gunicorn.errors", "AppImportError"))


def for_runner(exc: ConfigError) -> ConfigError:
    """``exc`` as an instance of a subclass of its own class that is also the clean start-up
    error of each server runner imported in this process, so ``paster serve`` and
    ``gunicorn --paste`` print its one line instead of a traceback; ``exc`` itself when no
    runner is imported (``loadapp`` in a test, ``myservice-api``, which prints it itself).

    The copy has the same message, ``__cause__`` and class name; ``except ConfigError`` still
    catches it."""
    runners = []
    for module_name, class_name in _RUNNER_ERRORS:
        module = sys.modules.get(module_name)
        runner = getattr(module, class_name, None) if module is not None else None
        if isinstance(runner, type) and issubclass(runner, Exception):
            runners.append(runner)
    if not runners or isinstance(exc, tuple(runners)):
        return exc
    message = str(exc)

    def __init__(self: Exception, text: str = message) -> None:  # noqa: N807 - a method
        Exception.__init__(self, text)
        self.message = text  # BadCommand prints .message ...
        self.exit_code = 2  # ... and exits with .exit_code

    cls = type(exc)
    both = type(cls.__name__, (cls, *runners), {"__init__": __init__, "__module__": cls.__module__})
    copy = both(message)
    copy.__cause__ = exc.__cause__
    return copy


def explain(exc: BaseException, ini_path: str) -> ConfigError:
    """A :class:`ConfigError` for ``exc`` raised by Paste Deploy while loading ``ini_path``.

    Never raises; unknown errors keep their own (one-line) message prefixed by the file.
    """
    if isinstance(exc, ConfigError):
        return exc
    if isinstance(exc, INI_SYNTAX_ERRORS):
        return ini_syntax_error(ini_path, exc)
    text = one_line(exc)
    parser = _read_ini(ini_path)
    match = _EGG_NOT_FOUND.search(text)
    if match:
        return _unknown_entry_point(ini_path, parser, match["name"], match["egg"], match["protos"])
    match = _NO_SECTION.search(text)
    if match:
        return _missing_section(ini_path, parser, match["name"], match["prefixes"])
    if isinstance(exc, (importlib_metadata.PackageNotFoundError, PackageNotFoundError)):
        dist = exc.args[0] if exc.args else text
        sections = _sections_using(parser, lambda use: use.startswith(f"egg:{dist}"))
        where = f" [{sections[0]}]" if sections else ""
        return ConfigError(
            f"{ini_path}{where}: distribution {dist!r} is not installed "
            f"(pip install it, or fix the 'use = egg:{dist}#...' line)"
        )
    if isinstance(exc, ImportError):
        return _import_failed(ini_path, parser, exc, text)
    return ConfigError(f"{ini_path}: cannot build the application: {text}")


def _import_failed(
    ini_path: str, parser: configparser.RawConfigParser | None, exc: ImportError, text: str
) -> ConfigError:
    """Name the section whose ``use = egg:DIST#NAME`` points into the module that failed."""
    module = getattr(exc, "name", None) or ""
    culprit = None
    for section in _sections_using(parser, lambda use: use.startswith("egg:") and "#" in use):
        dist, _, name = parser.get(section, "use", raw=True).strip()[4:].partition("#")
        for group in (*_FILTER_PROTOCOLS, *_APP_PROTOCOLS):
            for ep in importlib_metadata.entry_points(group=group, name=name):
                if ep.dist is None or normalize_name(ep.dist.name) != normalize_name(dist):
                    continue
                target = ep.value.split(":", 1)[0]
                if module and (target == module or target.startswith(module + ".")):
                    culprit = (section, f"egg:{dist}#{name}", ep.value)
    if culprit is None:
        return ConfigError(f"{ini_path}: cannot build the application: {text}")
    section, use, value = culprit
    return ConfigError(
        f"{ini_path} [{section}]: use = {use}: cannot import {value}: {text} "
        "(is the package installed completely? reinstall it with pip install -e .)"
    )


def _unknown_entry_point(
    ini_path: str, parser: configparser.RawConfigParser | None, name: str, egg: str, protos: str
) -> ConfigError:
    use = f"egg:{egg}#{name}"
    sections = _sections_using(parser, lambda value: value == use)
    where = f" [{sections[0]}]" if sections else ""
    is_filter = any(p.strip() in _FILTER_PROTOCOLS for p in protos.split(","))
    if is_filter and normalize_name(egg) == "myservice":
        known = _entry_point_names(MIDDLEWARE_NAMESPACE)
        kind = f"filter {name!r} in namespace {MIDDLEWARE_NAMESPACE}"
        direct = set(_entry_point_names(*_FILTER_PROTOCOLS, dist=egg))
        close = closest(name, known)
        if close and close not in direct:
            # a third-party filter: reachable only through the plugin filter
            hint = (
                f"; did you mean {close!r}? (a third-party filter: "
                f"use = egg:myservice#plugin and plugin = {close})"
            )
        else:
            hint = did_you_mean(name, known)
    else:
        groups = _FILTER_PROTOCOLS if is_filter else _APP_PROTOCOLS
        known = _entry_point_names(*groups, dist=egg)
        kind = f"{'filter' if is_filter else 'application'} {name!r} in {egg!r}"
        hint = did_you_mean(name, known)
    return ConfigError(
        f"{ini_path}{where}: use = {use}: no {kind}{hint} (known: {', '.join(known) or 'none'})"
    )


def _missing_section(
    ini_path: str, parser: configparser.RawConfigParser | None, name: str, prefixes: str
) -> ConfigError:
    wanted = [p.strip().strip("'\"") for p in prefixes.split(" or ")]
    known: list[str] = []
    referrers: list[str] = []
    if parser is not None:
        for section in parser.sections():
            prefix, _, rest = section.partition(":")
            if prefix in wanted and rest:
                known.append(rest.strip())
            if section.startswith("pipeline:") and parser.has_option(section, "pipeline"):
                names = parser.get(section, "pipeline", raw=True).split()
                # Paste Deploy loads the last name as an application, the others as filters
                if name in (names[:-1] if "filter" in wanted else names[-1:]):
                    referrers.append(section)
            elif section.startswith(("composite:", "composit:")) and "filter" not in wanted:
                values = [v.strip() for _, v in parser.items(section, raw=True)]
                if name in values:
                    referrers.append(section)
    kind = "filter" if "filter" in wanted else "application"
    where = f" [{referrers[0]}]" if referrers else ""
    other_kind = wrong_kind(parser, name, kind, referrers, known)
    if other_kind:
        return ConfigError(f"{ini_path}{where}: {other_kind}")
    return ConfigError(
        f"{ini_path}{where}: {kind} {name!r} has no [{wanted[0]}:{name}] section"
        f"{did_you_mean(name, known)} (defined: {', '.join(sorted(known)) or 'none'})"
    )


#: section prefixes Paste Deploy accepts for an application / for a filter
APP_PREFIXES = ("app", "application", "composite", "composit", "pipeline", "filter-app")
FILTER_PREFIXES = ("filter",)


def section_of_kind(
    parser: configparser.RawConfigParser, name: str, prefixes: tuple[str, ...]
) -> str:
    """The first ``PREFIX:name`` section of ``parser`` for ``prefixes``, or ''."""
    return next((f"{p}:{name}" for p in prefixes if parser.has_section(f"{p}:{name}")), "")


def wrong_kind(
    parser: configparser.RawConfigParser | None,
    name: str,
    kind: str,
    referrers: list[str],
    known: list[str],
) -> str:
    """What to say when ``name`` was wanted as a ``kind`` (``"application"`` or
    ``"filter"``) but is defined as the other kind (a pipeline ending in a filter, a filter
    naming an application); '' if it is not.  ``referrers``: the sections naming it;
    ``known``: the names defined of the wanted kind.  Also used by ``myservice-plugins
    pipeline``, so both say the same."""
    if parser is None:
        return ""
    other = FILTER_PREFIXES if kind == "application" else APP_PREFIXES
    section = section_of_kind(parser, name, other)
    if not section:
        return ""
    names = ", ".join(sorted(known)) or "none"
    pipeline = next((r for r in referrers if r.startswith("pipeline:")), "")
    line = ""
    if pipeline:
        line = f"pipeline = {' '.join(parser.get(pipeline, 'pipeline', raw=True).split())}: "
    if kind == "application" and pipeline:
        return (
            f"{line}the last name of a pipeline must be an application, but {name!r} is a "
            f"filter ([{section}]); end the pipeline with an application (defined: {names})"
        )
    if kind == "application":
        return (
            f"{name!r} is a filter ([{section}]), not an application; name an application "
            f"or a pipeline (defined: {names})"
        )
    if pipeline:
        return (
            f"{line}{name!r} is an application ([{section}]): only the last name of a "
            f"pipeline may be an application, every name before it must be a filter "
            f"(defined filters: {names})"
        )
    return f"{name!r} is an application ([{section}]), not a filter (defined filters: {names})"


def _sections_using(parser: configparser.RawConfigParser | None, test) -> list[str]:
    if parser is None:
        return []
    found = []
    for section in parser.sections():
        if parser.has_option(section, "use"):
            value = parser.get(section, "use", raw=True).strip()
            if test(value):
                found.append(section)
    return found


def _read_ini(ini_path: str) -> configparser.RawConfigParser | None:
    parser = configparser.RawConfigParser(strict=False)
    parser.optionxform = str  # keys such as "/v1" and "use" as written
    try:
        with open(ini_path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except (OSError, UnicodeDecodeError, configparser.Error):
        LOG.debug("cannot re-read %s to explain a start-up error", ini_path, exc_info=True)
        return None
    return parser


def _entry_point_names(*groups: str, dist: str | None = None) -> list[str]:
    names: set[str] = set()
    for group in groups:
        for ep in importlib_metadata.entry_points(group=group):
            if dist is None or (
                ep.dist is not None and normalize_name(ep.dist.name) == normalize_name(dist)
            ):
                names.add(ep.name)
    return sorted(names)
