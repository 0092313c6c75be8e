"""``myservice-plugins``: inspect plugin namespaces and paste pipelines.

Commands::

    myservice-plugins list [NAMESPACE ...] [--json] [--all] [--no-load] [--config-file PATH]
    myservice-plugins check NAMESPACE [NAMESPACE ...] [--config-file PATH]
    myservice-plugins pipeline PATH_TO_PASTE_INI

``list`` shows, per namespace, each plugin's name, entry-point target, the distribution
(and version) that provides it and its status: whether it loads (it is imported; the error is
reported when it does not; API extensions are also constructed and their routes added to a
scratch router, as the service does, so one the service would leave out is reported as
failing) and whether another installed distribution provides the same name.  In
``myservice.storage``, ``myservice.middleware`` and ``myservice.api.extensions`` a name must
be provided by one distribution only: every plugin of a name provided twice is a
``CONFLICT`` naming both distributions (the service refuses to use that name); in
``myservice.hooks`` several plugins per event name are normal and are not reported.
Without NAMESPACE it shows myservice's own namespaces; ``--all`` shows
every entry-point group installed.  ``list`` is for reading: it exits 0 whatever the
status of the plugins; ``check`` is the command for scripts: it exits 1 when any plugin of
the given namespaces fails to load or is in conflict.  ``pipeline`` reads
a Paste Deploy ini file with configparser (nothing is imported or built) and prints each
``[pipeline:...]``: its filters in order, each filter's ``use`` / factory and options, and
the application at its end; ``use = egg:DIST#NAME`` and the ``plugin = NAME`` of
``use = egg:myservice#plugin`` are resolved against the installed entry points, and what
does not resolve is marked with ``!`` and the closest valid name (a missing filter is offered
the closest filter, a missing application the closest application).  A pipeline whose last
name is a filter, or with an application before its last name, gets the message the service
itself refuses to start with.

Exit status: 0 success (``list``: the listing was printed, whatever the status of the
plugins); 1 ``check``: a plugin fails or conflicts, ``pipeline``: the ini names a missing
section, a filter where an application must be or the reverse, an ``egg:`` entry point
that is not installed, or a ``plugin`` that is not installed or is installed twice; 2 bad
arguments (unknown namespace, an option of a command written before the command, missing or
unreadable ini file, an ini file that is not INI syntax, reported with its line number as
``myservice-api`` reports it) -- reported as one line on stderr, never a traceback; 141
(128 + SIGPIPE, as a Unix tool killed by SIGPIPE) when stdout is closed early
(``myservice-plugins list | head -1``), silently.  Values of keys containing ``password``,
``token`` or ``secret`` and the password of any ``scheme://user:password@host`` URL are
masked.
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import dataclasses
import inspect
import io
import json
import logging
import os
import re
import shlex
import sys
from collections.abc import Sequence
from typing import Any, NoReturn, TextIO

from myservice.cmd import ArgumentParser
from myservice.conf import INI_SYNTAX_ERRORS, ini_misread_header, ini_syntax_error
from myservice.suggest import closest, did_you_mean
from myservice.wsgi.loader import APP_PREFIXES, FILTER_PREFIXES, section_of_kind, wrong_kind

LOG = logging.getLogger(__name__)

PROG = "myservice-plugins"

#: the namespaces ``list`` shows when none is named
DEFAULT_NAMESPACES: tuple[str, ...] = (
    "myservice.middleware",
    "myservice.storage",
    "myservice.hooks",
    "myservice.api.extensions",
)

MASK = "***"
_SECRET_KEY = re.compile(r"password|passwd|token|secret", re.IGNORECASE)
# scheme://user:password@host -> scheme://user:***@host.  The password runs to the last
# "@" before whitespace: masking too much is harmless, showing a password is not.
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^:/?#@\s]*:)[^\s]*@")


class UsageError(Exception):
    """Bad command-line input; printed as one line on stderr, exit status 2."""


# -- masking -------------------------------------------------------------------------------


def mask_text(text: str) -> str:
    """Return ``text`` with the password of every ``scheme://user:password@host`` masked."""
    return _URL_PASSWORD.sub(lambda m: f"{m.group('head')}{MASK}@", text)


def mask_value(key: str, value: str) -> str:
    """Return ``value`` safe to print as the value of option ``key``.

    The whole value is masked when ``key`` names a secret (contains ``password``,
    ``passwd``, ``token`` or ``secret``, any case); otherwise URL passwords are masked.
    """
    if _SECRET_KEY.search(key):
        return MASK
    return mask_text(value)


# -- plugin inspection ---------------------------------------------------------------------


#: namespaces where a name must be provided by one installed distribution only: the service
#: refuses a name that two provide (storage drivers and middleware plugins are loaded by
#: ``DriverManager``, whose default resolver raises ``MultipleMatches``; API extensions are
#: checked by ``myservice.api.extensions.loading`` before import).  namespace -> what then
#: fails, for the message.  Elsewhere (``myservice.hooks``: several hooks per event name are
#: normal; third-party namespaces: unknown rule) a name provided twice is not reported.
UNIQUE_NAMESPACES: dict[str, str] = {
    "myservice.storage": "[storage] driver = {name} refuses to start",
    "myservice.middleware": (
        "a [filter:...] with 'use = egg:myservice#plugin' and 'plugin = {name}' refuses to load"
    ),
    "myservice.api.extensions": (
        "the service refuses to start while [api] extensions enables {name!r} "
        "('*', the default, enables every one)"
    ),
}


@dataclasses.dataclass(frozen=True)
class PluginStatus:
    """What ``list`` reports about one entry point."""

    namespace: str
    name: str
    target: str
    distribution: str | None
    version: str | None
    #: None when the plugin was not imported (``--no-load``)
    loads: bool | None
    error: str | None
    #: "failed", "conflict", "ok" or "unchecked" (``--no-load``), the first that applies
    status: str = "ok"
    #: which distributions provide the name and what the service then refuses, when it is
    #: provided twice in a namespace of UNIQUE_NAMESPACES; else None
    conflict: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _discovery():
    # Imported on use so that ``--help`` and ``pipeline`` work even where the plugin
    # machinery cannot be imported.
    from myservice.plugins import discovery

    return discovery


def _describe_error(exc: BaseException) -> str:
    return mask_text(f"{type(exc).__name__}: {exc}")


#: namespace -> how the service initialises a loaded plugin of it, so that ``list`` and
#: ``check`` report a plugin the service would leave out as failed, not only one that
#: cannot be imported
def _initialise_extension(plugin: Any, conf: Any) -> None:
    from myservice.wsgi.app import add_extension_routes
    from myservice.wsgi.router import Router

    add_extension_routes(Router(), plugin(conf))


def _initialise_hook(plugin: Any, conf: Any) -> None:
    """Construct each hook class of ``plugin`` (one class, or a tuple of classes) as the
    dispatcher does, ``Cls(conf)``, then close it; a hook the configuration disables (``[hooks]
    disabled``) or turns off (``HookNotConfigured``) is not a failure."""
    from myservice.hooks.base import HookNotConfigured

    disabled = set(conf.hooks.disabled)
    for cls in plugin if isinstance(plugin, list | tuple) else (plugin,):
        if getattr(cls, "name", None) in disabled:
            continue
        try:
            hook = cls(conf)
        except HookNotConfigured:
            continue
        close = getattr(hook, "close", None)
        if callable(close):
            close()


def _initialise_storage(plugin: Any, conf: Any) -> None:
    """A storage driver whose client library is missing fails (``check_client_library``,
    which the SQL drivers have), as the service would refuse to start with it."""
    check = getattr(plugin, "check_client_library", None)
    if inspect.ismethod(check):  # a classmethod, as SQLDriver's (not an instance method)
        check()


_INITIALISERS = {
    "myservice.storage": _initialise_storage,
    "myservice.api.extensions": _initialise_extension,
    "myservice.hooks": _initialise_hook,
}


def inspect_namespace(namespace: str, load: bool = True, conf: Any = None) -> list[PluginStatus]:
    """Return the status of every entry point of ``namespace``, in discovery order.

    With ``load`` the target of each entry point is imported; an exception raised by the
    import is caught and described (``"ModuleNotFoundError: No module named 'x'"``).  API
    extensions and event hooks are also initialised the way the service does it (``Cls(conf)``;
    an extension's routes are added to a scratch router, a hook is closed again), with
    ``conf`` (defaults when None), so one whose constructor or ``add_routes`` raises is
    reported as failing too; a storage driver whose client library cannot be imported
    (``check_client_library``) fails as the service would refuse to start with it.

    In a namespace of :data:`UNIQUE_NAMESPACES`, every entry point of a name that more than
    one distribution provides gets ``conflict`` (also with ``load`` false: nothing needs
    importing to see it).
    """
    rows = []
    initialise = _INITIALISERS.get(namespace)
    for ep in _discovery().get_entry_points(namespace):
        dist = getattr(ep, "dist", None)
        error = None
        if load:
            # A plugin that prints while being imported must not corrupt our output
            # (``--json`` especially).
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    plugin = ep.load()
                    if initialise is not None:
                        initialise(plugin, conf if conf is not None else _default_conf())
            except (Exception, SystemExit) as exc:  # noqa: BLE001 - any failure is a finding
                # (some packages call sys.exit() at import when an optional dependency is
                # missing; that must not end the listing)
                error = _describe_error(exc)
                LOG.debug("plugin %s:%s failed to load", namespace, ep.name, exc_info=True)
        rows.append(
            PluginStatus(
                namespace=namespace,
                name=ep.name,
                target=ep.value,
                distribution=getattr(dist, "name", None),
                version=getattr(dist, "version", None),
                loads=error is None if load else None,
                error=error,
            )
        )
    conflicts = _conflicts(namespace, rows)
    return [_with_status(row, conflicts.get(index)) for index, row in enumerate(rows)]


def _conflicts(namespace: str, rows: list[PluginStatus]) -> dict[int, str]:
    """Row index -> why its name is refused, for names several rows share in a namespace of
    :data:`UNIQUE_NAMESPACES`."""
    consequence = UNIQUE_NAMESPACES.get(namespace)
    if consequence is None:
        return {}
    by_name: dict[str, list[int]] = {}
    for index, row in enumerate(rows):
        by_name.setdefault(row.name, []).append(index)
    found: dict[int, str] = {}
    for name, indexes in by_name.items():
        if len(indexes) < 2:
            continue
        providers = " and ".join(_dist_label(rows[i]) for i in indexes)
        message = (
            f"{name!r} is provided by {providers}: {consequence.format(name=name)}; "
            "uninstall all but one of them"
        )
        found.update(dict.fromkeys(indexes, message))
    return found


def _with_status(row: PluginStatus, conflict: str | None) -> PluginStatus:
    if row.loads is False:
        status = "failed"
    elif conflict is not None:
        status = "conflict"
    elif row.loads is None:
        status = "unchecked"
    else:
        status = "ok"
    return dataclasses.replace(row, status=status, conflict=conflict)


def _default_conf() -> Any:
    from myservice import conf as conf_mod

    return conf_mod.defaults()


def _load_conf(path: str | None) -> Any:
    if path is None:
        return None
    from myservice import conf as conf_mod

    try:
        return conf_mod.load(path)
    except conf_mod.ConfigError as exc:
        raise UsageError(str(exc)) from None


def _resolve_namespaces(requested: Sequence[str], show_all: bool) -> list[str]:
    """Validate the namespaces named on the command line; raise UsageError if unknown."""
    existing = sorted(set(_discovery().namespaces()))
    if show_all and not requested:
        return sorted(set(existing) | set(DEFAULT_NAMESPACES))
    if not requested:
        return list(DEFAULT_NAMESPACES)
    known = set(existing) | set(DEFAULT_NAMESPACES)
    for name in requested:
        if name not in known:
            raise UsageError(_unknown_namespace_message(name, sorted(known)))
    return list(dict.fromkeys(requested))


def _unknown_namespace_message(name: str, known: list[str]) -> str:
    close = closest(name, known)
    hint = f"; closest: {close!r}" if close else ""
    # Show the namespaces related to the one asked for first, then the rest.
    root = name.split(".", 1)[0]
    related = [n for n in known if n.split(".", 1)[0] == root] or list(DEFAULT_NAMESPACES)
    shown = ", ".join(related[:8]) + (", ..." if len(related) > 8 else "")
    return (
        f"unknown namespace {name!r}{hint}; existing namespaces include {shown} "
        f"({len(known)} in all, see '{PROG} list --all')"
    )


def _format_table(rows: list[list[str]], out: TextIO, indent: str = "  ") -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=False)]
        print(indent + "  ".join([*cells, row[-1]]).rstrip(), file=out)


def _dist_label(status: PluginStatus) -> str:
    if status.distribution is None:
        return "?"
    return f"{status.distribution} {status.version or '?'}"


def _status_label(status: PluginStatus) -> str:
    parts = []
    if status.loads is False:
        parts.append(f"FAILED {status.error}")
    if status.conflict is not None:
        parts.append(f"CONFLICT {status.conflict}")
    if parts:
        return "; ".join(parts)
    return "-" if status.loads is None else "ok"


def _print_namespaces(report: dict[str, list[PluginStatus]], out: TextIO) -> None:
    for index, (namespace, plugins) in enumerate(report.items()):
        if index:
            print(file=out)
        count = f"{len(plugins)} plugin{'s' if len(plugins) != 1 else ''}"
        print(f"{namespace} ({count})", file=out)
        if not plugins:
            continue
        rows = [["NAME", "TARGET", "DISTRIBUTION", "STATUS"]]
        rows += [[p.name, p.target, _dist_label(p), _status_label(p)] for p in plugins]
        _format_table(rows, out)


def cmd_list(args: argparse.Namespace, out: TextIO) -> int:
    """Print the plugins of the namespaces; 0 whatever their status (``check`` is the gate:
    ``--all`` lists groups of unrelated tools, whose failures are not the operator's, and a
    script reading ``--json`` under ``set -e`` must get the document, not an error)."""
    namespaces = _resolve_namespaces(args.namespaces, args.all)
    conf = _load_conf(args.config_file)
    report = {ns: inspect_namespace(ns, load=not args.no_load, conf=conf) for ns in namespaces}
    if args.json:
        doc = {
            "namespaces": [
                {"namespace": ns, "plugins": [p.as_dict() for p in plugins]}
                for ns, plugins in report.items()
            ]
        }
        json.dump(doc, out, indent=2)
        print(file=out)
    else:
        _print_namespaces(report, out)
    return 0


def cmd_check(args: argparse.Namespace, out: TextIO) -> int:
    namespaces = _resolve_namespaces(args.namespaces, show_all=False)
    conf = _load_conf(args.config_file)
    plugins = [p for ns in namespaces for p in inspect_namespace(ns, conf=conf)]
    failures = [p for p in plugins if not p.loads]
    for p in failures:
        print(
            f"FAILED {p.namespace}: {p.name} = {p.target} ({_dist_label(p)}): {p.error}",
            file=out,
        )
    # a plugin that fails and is in conflict is reported as both
    conflicts = [p for p in plugins if p.conflict]
    for p in conflicts:
        print(
            f"CONFLICT {p.namespace}: {p.name} = {p.target} ({_dist_label(p)}): {p.conflict}",
            file=out,
        )
    summary = (
        f"{len(plugins)} plugin(s) in {len(namespaces)} namespace(s): "
        f"{len(plugins) - len(failures)} load, {len(failures)} fail"
    )
    if conflicts:
        summary += f", {len(conflicts)} in conflict"
    print(summary, file=out)
    return 1 if failures or conflicts else 0


# -- paste pipelines -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PasteIni:
    """A paste ini file as read by :func:`read_paste_ini`."""

    path: str
    parser: configparser.ConfigParser
    #: per section, the keys written in the section itself (not inherited), in file order
    local_keys: dict[str, list[str]]


def read_paste_ini(path: str) -> PasteIni:
    """Read a Paste Deploy ini file the way Paste Deploy does, without loading anything.

    Keys keep their case and ``%(here)s`` / ``%(__file__)s`` are defined.  Raises
    UsageError (one line: file and reason) when the file is missing or malformed.
    """
    if not os.path.isfile(path):
        what = "is a directory" if os.path.isdir(path) else "no such file"
        raise UsageError(f"{path}: {what}")
    absolute = os.path.abspath(path)
    parser = configparser.ConfigParser(
        defaults={"here": os.path.dirname(absolute), "__file__": absolute},
        interpolation=configparser.BasicInterpolation(),
    )
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from exc
    except INI_SYNTAX_ERRORS as exc:
        # the line, its section and the header it was probably meant to be, as myservice-api
        # says it (configparser's own message names the section before a broken header)
        raise UsageError(str(ini_syntax_error(path, exc))) from None
    except configparser.Error as exc:
        first_line = str(exc).strip().splitlines()[0]
        raise UsageError(f"{path}: not a valid ini file: {first_line}") from exc
    misread = ini_misread_header(path)  # "[server:main" read as an option, no error
    if misread is not None:
        raise UsageError(str(misread))
    # configparser merges [DEFAULT] into every section; read the file once more with no
    # default section to learn which keys each section sets itself.
    raw = configparser.RawConfigParser(default_section="\0no default section")
    raw.optionxform = str  # type: ignore[assignment,method-assign]
    raw.read(path, encoding="utf-8")
    local_keys = {section: list(raw.options(section)) for section in raw.sections()}
    return PasteIni(path=path, parser=parser, local_keys=local_keys)


def _get(parser: configparser.ConfigParser, section: str, key: str) -> str:
    try:
        return parser.get(section, key)
    except configparser.InterpolationError:
        return parser.get(section, key, raw=True)


def _local_options(ini: PasteIni, section: str) -> list[tuple[str, str]]:
    """The options written in ``section`` itself (not inherited from [DEFAULT]), in file order."""
    return [(key, _get(ini.parser, section, key)) for key in ini.local_keys.get(section, [])]


#: the entry-point groups Paste Deploy looks ``egg:DIST#NAME`` up in, per kind of section
#: (also the option names that give a factory directly: ``paste.filter_factory = mod:obj``)
FILTER_GROUPS: tuple[str, ...] = ("paste.filter_factory", "paste.filter_app_factory")
APP_GROUPS: tuple[str, ...] = ("paste.app_factory", "paste.composite_factory")

#: the filter of this package that loads ``plugin = NAME`` from MIDDLEWARE_NAMESPACE
_PLUGIN_FILTER = ("myservice", "plugin")
MIDDLEWARE_NAMESPACE = "myservice.middleware"


def _parse_egg(use: str) -> tuple[str, str]:
    """``egg:DIST[>=1.0]#NAME`` -> ``(DIST, NAME)``; NAME defaults to ``main`` as in Paste."""
    spec = use[len("egg:") :]
    dist_part, _, ep_name = spec.partition("#")
    match = re.match(r"\s*([A-Za-z0-9._-]*)", dist_part)
    return (match.group(1) if match else dist_part.strip()), (ep_name.strip() or "main")


def _is_plugin_filter(use: str) -> bool:
    """Whether ``egg:DIST#NAME`` names this package's ``plugin`` filter (names normalised)."""
    from myservice.plugins.discovery import normalize_name

    return tuple(map(normalize_name, _parse_egg(use))) == _PLUGIN_FILTER


def _entry_points(groups: Sequence[str]) -> list[Any] | None:
    """The entry points of ``groups``, or None when they cannot be looked up."""
    try:
        return [ep for group in groups for ep in _discovery().get_entry_points(group)]
    except Exception:  # noqa: BLE001 - resolution is a courtesy; the ini is still shown
        LOG.debug("cannot look up %s entry points", groups, exc_info=True)
        return None


def _resolve_egg(use: str, groups: Sequence[str]) -> tuple[str | None, str | None]:
    """Resolve ``egg:DIST#NAME`` in ``groups`` without loading anything.

    Returns ``(target, None)`` when it resolves, ``(None, why)`` when it does not (``why``
    names the closest valid distribution or entry-point name), ``(None, None)`` when the
    entry points cannot be looked up.
    """
    dist_name, ep_name = _parse_egg(use)
    from myservice.plugins.discovery import normalize_name

    entry_points = _entry_points(groups)
    if entry_points is None:
        return None, None
    wanted = normalize_name(dist_name)
    mine = [
        ep
        for ep in entry_points
        if getattr(ep, "dist", None) is not None and normalize_name(ep.dist.name) == wanted
    ]
    for ep in mine:
        if ep.name == ep_name:
            return ep.value, None
    kinds = " or ".join(groups)
    if not mine:
        dists = sorted({ep.dist.name for ep in entry_points if getattr(ep, "dist", None)})
        return None, (
            f"no installed distribution {dist_name!r} provides {kinds} entry points"
            f"{did_you_mean(dist_name, dists)}"
        )
    names = sorted({ep.name for ep in mine})
    return None, (
        f"{mine[0].dist.name} has no {kinds} entry point {ep_name!r}"
        f"{did_you_mean(ep_name, names)} (it has: {', '.join(names)})"
    )


def _resolve_plugin(section: str, value: str) -> tuple[str | None, str | None]:
    """Resolve ``plugin = NAME`` of a ``use = egg:myservice#plugin`` filter: ``(shown
    target, None)`` or ``(None, why)``, as :func:`myservice.middleware.plugin_filter_factory`
    would load it (one installed distribution must provide NAME)."""
    name = value.strip()
    where = f"[{section}]"
    if not name:
        return None, (
            f"{where} 'use = egg:myservice#plugin' needs 'plugin = NAME', the name of a "
            f"filter in the {MIDDLEWARE_NAMESPACE!r} namespace"
        )
    entry_points = _entry_points((MIDDLEWARE_NAMESPACE,))
    if entry_points is None:
        return None, None
    matches = [ep for ep in entry_points if ep.name == name]
    if not matches:
        names = sorted({ep.name for ep in entry_points})
        return None, (
            f"{where} plugin = {name}: no such middleware in namespace "
            f"{MIDDLEWARE_NAMESPACE!r}{did_you_mean(name, names)} "
            f"(installed: {', '.join(names) or 'none'})"
        )
    labels = [f"{ep.dist.name} {ep.dist.version}" if ep.dist else "?" for ep in matches]
    if len(matches) > 1:
        return None, (
            f"{where} plugin = {name}: more than one installed package provides it: "
            f"{' and '.join(labels)}; uninstall all but one of them"
        )
    return f"{matches[0].value} ({labels[0]})", None


def _resolve_use(
    ini: PasteIni, section: str, value: str, groups: Sequence[str], prefixes: Sequence[str]
) -> tuple[str | None, str | None]:
    """Resolve the ``use`` of ``section``: ``(shown target, None)`` or ``(None, why)``."""
    if value.startswith("call:"):
        return value[len("call:") :], None
    if value.startswith("egg:"):
        target, why = _resolve_egg(value, groups)
        return target, (f"[{section}] use = {value}: {why}" if why else None)
    if ":" in value:  # config:other.ini#name and other schemes: not followed
        return None, None
    # a bare name is another section of this file, of the same kind
    wanted = [f"{prefix}:{value}" for prefix in prefixes]
    found = next((c for c in wanted if ini.parser.has_section(c)), None)
    if found is not None:
        return f"[{found}]", None
    return None, (
        f"[{section}] use = {value}: no section [{wanted[0]}]"
        f"{_closest_section(ini.parser, wanted[0], prefixes)}"
    )


def _describe_component(
    ini: PasteIni,
    section: str,
    factory_keys: Sequence[str],
    groups: Sequence[str],
    prefixes: Sequence[str],
) -> tuple[list[str], int]:
    """Lines describing one filter/app section (its use or factory, then other options) and
    the number of problems among them (lines starting with ``!``)."""
    lines: list[str] = []
    problems = 0
    options = _local_options(ini, section)
    keys = [key for key, _ in options]
    uses_plugin = False
    for key, value in options:
        if key == "use":
            target, why = _resolve_use(ini, section, value, groups, prefixes)
            suffix = f" -> {target}" if target else ""
            lines.append(f"use = {mask_value(key, value)}{suffix}")
            if why:
                lines.append(f"! {mask_text(why)}")
                problems += 1
            uses_plugin = (
                groups == FILTER_GROUPS and value.startswith("egg:") and _is_plugin_filter(value)
            )
        elif key in factory_keys:
            lines.append(f"{key} = {mask_value(key, value)}")
    if not section.startswith("pipeline:") and not any(
        key == "use" or key in factory_keys for key in keys
    ):
        lines.append(f"! [{section}] has neither 'use' nor {' / '.join(factory_keys)}")
        problems += 1
    if uses_plugin and "plugin" not in keys:
        lines.append(f"! {_resolve_plugin(section, '')[1]}")
        problems += 1
    for key, value in options:
        if key == "use" or key in factory_keys:
            continue
        if uses_plugin and key == "plugin":
            target, why = _resolve_plugin(section, value)
            suffix = f" -> {target}" if target else ""
            lines.append(f"plugin = {value}{suffix}")
            if why:
                lines.append(f"! {why}")
                problems += 1
            continue
        lines.append(f"{key} = {mask_value(key, value)}")
    return lines, problems


def _closest_section(
    parser: configparser.ConfigParser, wanted: str, prefixes: Sequence[str]
) -> str:
    """`` (closest: [SECTION])`` for the section most like ``wanted`` among those of the same
    kind (prefixed by one of ``prefixes``: a filter is never offered for an application), or
    ''."""
    same_kind = [s for s in parser.sections() if s.partition(":")[0] in prefixes]
    close = closest(wanted, same_kind)
    return f" (closest: [{close}])" if close else ""


def _defined(parser: configparser.ConfigParser, prefixes: Sequence[str]) -> list[str]:
    """The names of the sections of one kind, as :mod:`myservice.wsgi.loader` collects
    them."""
    names = []
    for section in parser.sections():
        prefix, _, rest = section.partition(":")
        if prefix in prefixes and rest:
            names.append(rest.strip())
    return names


def _reordered(parser: configparser.ConfigParser, names: list[str]) -> str:
    """``; did you mean 'pipeline = ...'?`` when exactly one name of the pipeline ``names`` is
    an application (and not a filter) and every other one is a filter: the pipeline with that
    application moved to the end; else ''."""

    def is_filter(name: str) -> bool:
        return name.startswith("egg:") or bool(section_of_kind(parser, name, FILTER_PREFIXES))

    apps = [
        i
        for i, n in enumerate(names)
        if not is_filter(n) and section_of_kind(parser, n, APP_PREFIXES)
    ]
    if len(apps) != 1 or names[-1].startswith("egg:"):
        return ""
    others = names[: apps[0]] + names[apps[0] + 1 :]
    if not all(is_filter(n) for n in others):
        return ""
    return f"; did you mean 'pipeline = {' '.join([*others, names[apps[0]]])}'?"


def _wrong_kind(parser: configparser.ConfigParser, pipeline: str, name: str, last: bool) -> str:
    """Why ``name`` cannot stand where it stands in ``[pipeline]`` when it is a section of the
    other kind (an application before the last name, a filter as the last name), in the words
    of the service (:func:`myservice.wsgi.loader.wrong_kind`), with the reordered pipeline
    when one name is simply misplaced; '' if it is not."""
    kind, prefixes = ("application", APP_PREFIXES) if last else ("filter", FILTER_PREFIXES)
    message = wrong_kind(parser, name, kind, [pipeline], _defined(parser, prefixes))
    if not message:
        return ""
    names = parser.get(pipeline, "pipeline", raw=True).split()
    return f"[{pipeline}] {message}{_reordered(parser, names)}"


def _print_egg(use: str, groups: tuple[str, ...], section: str, indent: str, out: TextIO) -> int:
    """Print what ``egg:DIST#NAME`` written on a pipeline line resolves to, or a ``!`` line
    saying why it does not; the number of problems (0 or 1)."""
    target, why = _resolve_egg(use, groups)
    if target:
        print(f"{indent}-> {target}", file=out)
    if why:
        print(f"{indent}! [{section}] {use}: {why}", file=out)
        return 1
    return 0


def cmd_pipeline(args: argparse.Namespace, out: TextIO) -> int:
    path = args.path
    ini = read_paste_ini(path)
    parser = ini.parser
    pipelines = [s for s in parser.sections() if s.startswith("pipeline:")]
    if not pipelines:
        print(f"{PROG}: {path}: no [pipeline:...] section", file=sys.stderr)
        return 1
    problems = 0
    indent = "       "
    for index, section in enumerate(pipelines):
        if index:
            print(file=out)
        print(f"[{section}]", file=out)
        if not parser.has_option(section, "pipeline"):
            print(f"  ! no 'pipeline' option in [{section}]", file=out)
            problems += 1
            continue
        names = _get(parser, section, "pipeline").split()
        if not names:
            print(f"  ! [{section}] pipeline is empty", file=out)
            problems += 1
            continue
        *filters, app = names
        for position, name in enumerate(filters, start=1):
            wanted = f"filter:{name}"
            print(f"  {position}. filter {name}", file=out)
            if name.startswith("egg:"):
                problems += _print_egg(name, FILTER_GROUPS, section, indent, out)
            elif parser.has_section(wanted):
                lines, found_problems = _describe_component(
                    ini, wanted, FILTER_GROUPS, FILTER_GROUPS, ("filter",)
                )
                for line in lines:
                    print(f"{indent}{line}", file=out)
                problems += found_problems
            elif why := _wrong_kind(parser, section, name, last=False):
                print(f"{indent}! {why}", file=out)
                problems += 1
            else:
                hint = _closest_section(parser, wanted, FILTER_PREFIXES)
                print(f"{indent}! no section [{wanted}]{hint}", file=out)
                problems += 1
        print(f"  app {app}", file=out)
        candidates = [f"{prefix}:{app}" for prefix in APP_PREFIXES]
        found = next((c for c in candidates if parser.has_section(c)), None)
        if app.startswith("egg:"):
            problems += _print_egg(app, APP_GROUPS, section, indent, out)
        elif found is None:
            why = _wrong_kind(parser, section, app, last=True)
            if not why:
                hint = _closest_section(parser, f"app:{app}", APP_PREFIXES)
                why = f"no section [app:{app}]{hint}"
            print(f"{indent}! {why}", file=out)
            problems += 1
        else:
            print(f"{indent}[{found}]", file=out)
            lines, found_problems = _describe_component(
                ini, found, APP_GROUPS, APP_GROUPS, APP_PREFIXES
            )
            for line in lines:
                print(f"{indent}{line}", file=out)
            problems += found_problems
    if problems:
        print(f"{PROG}: {path}: {problems} problem(s), marked with '!'", file=sys.stderr)
        return 1
    return 0


# -- command line --------------------------------------------------------------------------


class _Parser(ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {self.explain(message)} (see '{PROG} --help')", file=sys.stderr)
        raise SystemExit(2)

    def explain(self, message: str) -> str:
        """:meth:`ArgumentParser.explain`, plus where an option of a subcommand written before
        the subcommand belongs (``--config-file etc/x.conf list`` reads ``etc/x.conf`` as the
        command): ``('--config-file' is an option of the commands check, list: put it after
        the command; did you mean 'myservice-plugins list --config-file etc/x.conf'?)``."""
        explained = super().explain(message)
        misplaced = self._misplaced_options()
        if misplaced is None:
            return explained
        owners, command, corrected = misplaced
        for name in owners:
            # "unrecognized arguments: --json; did you mean '--json'?": it is spelt right
            explained = explained.replace(f"; did you mean {name!r}?", "")
        stray = False
        clauses = []
        for name, cmds in owners.items():
            clause = f"{name!r} is an option of the command{'s' if len(cmds) > 1 else ''} "
            clause += ", ".join(cmds)
            if command and command not in cmds:
                clause += f", not of {command}"
                stray = True
            clauses.append(clause)
        hint = "; ".join(clauses)
        if not stray:
            hint += f": put {'it' if len(owners) == 1 else 'them'} after the command"
            if corrected:
                hint += f"; did you mean '{corrected}'?"
        return f"{explained} ({hint})"

    def _misplaced_options(self) -> tuple[dict[str, list[str]], str, str] | None:
        """The options of subcommands (not of this parser) given before the subcommand:
        ``({option: [commands that take it]}, the command or '', the corrected command line
        or '')``, or None when there is none."""
        commands = {
            name: sub
            for action in self._actions
            if isinstance(action, argparse._SubParsersAction)
            for name, sub in action.choices.items()
        }
        if not commands:
            return None
        given = list(self._given)
        before: list[str] = []
        moved: list[str] = []
        owners: dict[str, list[str]] = {}
        command = ""
        index = 0
        while index < len(given):
            word = given[index]
            if word == "--":
                break
            if word in commands:
                command = word
                break
            name = word.split("=", 1)[0]
            action = self._option_string_actions.get(name) if word.startswith("-") else None
            mine = action is not None
            if not mine and word.startswith("--"):
                cmds = sorted(c for c, p in commands.items() if name in p._option_string_actions)
                if cmds:
                    owners.setdefault(name, cmds)
                    action = commands[cmds[0]]._option_string_actions[name]
            takes = 1 if action is not None and action.nargs is None and "=" not in word else 0
            (before if mine or name not in owners else moved).extend(
                given[index : index + 1 + takes]
            )
            index += 1 + takes
        if not owners:
            return None
        corrected = ""
        if command:
            rest = given[index + 1 :]
            corrected = shlex.join([PROG, *before, command, *moved, *rest])
        return owners, command, corrected


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``myservice-plugins``."""
    parser = _Parser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="log at DEBUG on stderr")
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_Parser
    )
    p_list = sub.add_parser("list", help="list plugins, their distribution and load status")
    p_list.add_argument(
        "namespaces",
        nargs="*",
        metavar="NAMESPACE",
        help="namespaces to show (default: " + ", ".join(DEFAULT_NAMESPACES) + ")",
    )
    p_list.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p_list.add_argument("--all", action="store_true", help="show every entry-point group")
    p_list.add_argument(
        "--no-load",
        action="store_true",
        help="do not import the plugins (STATUS shows '-' unless a name conflicts)",
    )
    config_help = (
        "service configuration API extensions are initialised with, as the service does "
        "(default: the built-in defaults)"
    )
    p_list.add_argument("--config-file", metavar="PATH", help=config_help)
    p_list.set_defaults(func=cmd_list)
    p_check = sub.add_parser(
        "check", help="exit 1 when a plugin of the namespaces fails to load or conflicts"
    )
    p_check.add_argument("namespaces", nargs="+", metavar="NAMESPACE")
    p_check.add_argument("--config-file", metavar="PATH", help=config_help)
    p_check.set_defaults(func=cmd_check)
    p_pipe = sub.add_parser("pipeline", help="print the pipelines of a paste ini file")
    p_pipe.add_argument("path", metavar="PATH_TO_PASTE_INI")
    p_pipe.set_defaults(func=cmd_pipeline)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``myservice-plugins`` with ``argv`` (default ``sys.argv[1:]``); return exit status."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error already printed (2)
        return exc.code if isinstance(exc.code, int) else 2
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING)
    try:
        code = args.func(args, sys.stdout)
        # flushed here, not at interpreter exit, so that a closed pipe is seen below
        sys.stdout.flush()
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return _stdout_closed()
    return code


#: exit status when stdout is closed early: 128 + SIGPIPE, what a shell reports for a C tool
#: killed by SIGPIPE (``ls | head -1``); distinct from 1 (a plugin fails) and 2 (usage)
EXIT_BROKEN_PIPE = 141


def _stdout_closed() -> int:
    """The reader of stdout went away (``| head -1``): stop quietly, like a Unix tool.

    Python would report the unflushed rest of stdout once more at exit ("Exception ignored
    ... BrokenPipeError"), so stdout is pointed at /dev/null first.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, io.UnsupportedOperation):
        # no file descriptor (stdout replaced in-process): nothing flushes to a pipe at exit
        pass
    return EXIT_BROKEN_PIPE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
