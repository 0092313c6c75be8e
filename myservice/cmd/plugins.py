"""``myservice-plugins``: inspect plugin namespaces and paste pipelines.

Commands::

    myservice-plugins list [NAMESPACE ...] [--json] [--all] [--no-load] [--config-file PATH]
    myservice-plugins check NAMESPACE [NAMESPACE ...] [--config-file PATH]
    myservice-plugins pipeline PATH_TO_PASTE_INI

``list`` shows, per namespace, each plugin's name, entry-point target, the distribution
(and version) that provides it and whether it loads (it is imported; the error is reported
when it does not; API extensions are also constructed and their routes added to a scratch
router, as the service does, so one the service would leave out is reported as failing).
Without NAMESPACE it shows myservice's own namespaces; ``--all`` shows
every entry-point group installed.  ``check`` exits 1 when any plugin of the given
namespaces fails to load.  ``pipeline`` reads a Paste Deploy ini file with configparser
(nothing is imported or built) and prints each ``[pipeline:...]``: its filters in order,
each filter's ``use`` / factory and options, and the application at its end.

Exit status: 0 success, 1 a plugin fails to load or the ini names a missing section,
2 bad arguments (unknown namespace, missing or unreadable ini file) — reported as one
line on stderr, never a traceback.  Values of keys containing ``password``, ``token`` or
``secret`` and the password of any ``scheme://user:password@host`` URL are masked.
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import dataclasses
import io
import json
import logging
import os
import re
import sys
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn, TextIO

from myservice.cmd import ArgumentParser
from myservice.suggest import closest

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

#: section prefixes Paste Deploy accepts for the application at the end of a pipeline
_APP_PREFIXES = ("app", "application", "composite", "composit", "pipeline", "filter-app")


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


_INITIALISERS = {"myservice.api.extensions": _initialise_extension}


def inspect_namespace(namespace: str, load: bool = True, conf: Any = None) -> list[PluginStatus]:
    """Return the status of every entry point of ``namespace``, in discovery order.

    With ``load`` the target of each entry point is imported; an exception raised by the
    import is caught and described (``"ModuleNotFoundError: No module named 'x'"``).  API
    extensions are also initialised the way the service does it (``Cls(conf)``, then their
    routes are added to a scratch router), with ``conf`` (defaults when None), so one whose
    constructor or ``add_routes`` raises is reported as failing too.
    """
    result = []
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
        result.append(
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
    return result


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
    if status.loads is None:
        return "-"
    return "ok" if status.loads else f"FAILED {status.error}"


def _print_namespaces(report: dict[str, list[PluginStatus]], out: TextIO) -> None:
    for index, (namespace, plugins) in enumerate(report.items()):
        if index:
            print(file=out)
        count = f"{len(plugins)} plugin{'s' if len(plugins) != 1 else ''}"
        print(f"{namespace} ({count})", file=out)
        if not plugins:
            continue
        rows = [["NAME", "TARGET", "DISTRIBUTION", "LOADS"]]
        rows += [[p.name, p.target, _dist_label(p), _status_label(p)] for p in plugins]
        _format_table(rows, out)


def cmd_list(args: argparse.Namespace, out: TextIO) -> int:
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
    print(
        f"{len(plugins)} plugin(s) in {len(namespaces)} namespace(s): "
        f"{len(plugins) - len(failures)} load, {len(failures)} fail",
        file=out,
    )
    return 1 if failures else 0


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
    except configparser.Error as exc:
        first_line = str(exc).strip().splitlines()[0]
        raise UsageError(f"{path}: not a valid ini file: {first_line}") from exc
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


def _egg_target(use: str, group: str) -> str | None:
    """Resolve ``egg:DIST#NAME`` to its entry-point target in ``group``, without loading."""
    if not use.startswith("egg:"):
        if use.startswith("call:"):
            return use[len("call:") :]
        return None
    spec = use[len("egg:") :]
    dist_name, _, ep_name = spec.partition("#")
    ep_name = ep_name or "main"

    def norm(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    try:
        entry_points = _discovery().get_entry_points(group)
    except Exception:  # noqa: BLE001 - resolution is a courtesy; the ini is still shown
        LOG.debug("cannot look up %s entry points", group, exc_info=True)
        return None
    for ep in entry_points:
        dist = getattr(ep, "dist", None)
        if ep.name == ep_name and dist is not None and norm(dist.name) == norm(dist_name):
            return ep.value
    return None


def _describe_component(
    ini: PasteIni, section: str, factory_keys: Iterable[str], group: str
) -> list[str]:
    """Lines describing one filter/app section: its use or factory, then other options."""
    lines = []
    options = _local_options(ini, section)
    factory_keys = tuple(factory_keys)
    for key, value in options:
        if key == "use":
            target = _egg_target(value, group)
            suffix = f" -> {target}" if target else ""
            lines.append(f"use = {mask_value(key, value)}{suffix}")
        elif key in factory_keys:
            lines.append(f"{key} = {mask_value(key, value)}")
    for key, value in options:
        if key != "use" and key not in factory_keys:
            lines.append(f"{key} = {mask_value(key, value)}")
    return lines


def _closest_section(parser: configparser.ConfigParser, wanted: str) -> str:
    close = closest(wanted, parser.sections())
    return f" (closest: [{close}])" if close else ""


def cmd_pipeline(args: argparse.Namespace, out: TextIO) -> int:
    path = args.path
    ini = read_paste_ini(path)
    parser = ini.parser
    pipelines = [s for s in parser.sections() if s.startswith("pipeline:")]
    if not pipelines:
        print(f"{PROG}: {path}: no [pipeline:...] section", file=sys.stderr)
        return 1
    problems = 0
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
                target = _egg_target(name, "paste.filter_factory")
                print(f"       -> {target or '(not installed)'}", file=out)
            elif parser.has_section(wanted):
                for line in _describe_component(
                    ini,
                    wanted,
                    ("paste.filter_factory", "paste.filter_app_factory"),
                    "paste.filter_factory",
                ):
                    print(f"       {line}", file=out)
            else:
                print(f"       ! no section [{wanted}]{_closest_section(parser, wanted)}", file=out)
                problems += 1
        print(f"  app {app}", file=out)
        candidates = [f"{prefix}:{app}" for prefix in _APP_PREFIXES]
        found = next((c for c in candidates if parser.has_section(c)), None)
        if app.startswith("egg:"):
            target = _egg_target(app, "paste.app_factory")
            print(f"       -> {target or '(not installed)'}", file=out)
        elif found is None:
            print(
                f"       ! no section [app:{app}]{_closest_section(parser, 'app:' + app)}", file=out
            )
            problems += 1
        else:
            kind = found.split(":", 1)[0]
            group = "paste.composite_factory" if kind.startswith("compos") else "paste.app_factory"
            print(f"       [{found}]", file=out)
            for line in _describe_component(
                ini, found, ("paste.app_factory", "paste.composite_factory"), group
            ):
                print(f"       {line}", file=out)
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
        "--no-load", action="store_true", help="do not import the plugins (LOADS shows '-')"
    )
    config_help = (
        "service configuration API extensions are initialised with, as the service does "
        "(default: the built-in defaults)"
    )
    p_list.add_argument("--config-file", metavar="PATH", help=config_help)
    p_list.set_defaults(func=cmd_list)
    p_check = sub.add_parser("check", help="exit 1 when a plugin of the namespaces fails to load")
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
        return args.func(args, sys.stdout)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
