"""``myservice-manage``: operator commands (``db upgrade``, ``db current``, ``token ...``).

Each command group lives in its own module exposing ``add_parser(subparsers)``; the parser it
adds sets ``func(args) -> int``.  Errors meant for the operator are printed as one line on
stderr with exit status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from myservice.cmd import ArgumentParser
from myservice.conf import ConfigError

#: modules contributing subcommands
_GROUPS = ("myservice.cmd.manage_db", "myservice.cmd.manage_token")


class CommandError(Exception):
    """An operator-facing failure of a command; printed without traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="myservice-manage", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config-file",
        default="etc/myservice.conf",
        help="service configuration file (default: %(default)s)",
    )
    parser.add_argument("--debug", action="store_true", help="log at DEBUG on stderr")
    subparsers = parser.add_subparsers(dest="group", metavar="COMMAND", required=True)
    for name in _GROUPS:
        importlib.import_module(name).add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING)
    try:
        return int(args.func(args) or 0)
    except (CommandError, ConfigError) as exc:
        print(f"myservice-manage: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
