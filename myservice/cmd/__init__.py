"""Console scripts (``myservice-api``, ``myservice-manage``, ``myservice-plugins``), and the
argument parser they share."""

from __future__ import annotations

import argparse
from typing import Any

from myservice.suggest import did_you_mean


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors name the closest valid word:

    * an invalid choice (a subcommand, a ``choices`` option): ``invalid choice: 'tokn'; did
      you mean 'token'? (choose from 'db', 'token')``;
    * an unknown option: ``unrecognized arguments: --prot 9000; did you mean '--port'?``
      (compared with the options of this parser and of all its subcommands).

    Sub-parsers made by ``add_subparsers`` are of the same class unless told otherwise."""

    def parse_args(self, args: Any = None, namespace: Any = None) -> Any:  # type: ignore[override]
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            unknown = next((arg for arg in extras if arg.startswith("-")), None)
            hint = did_you_mean(unknown.split("=", 1)[0], _options(self)) if unknown else ""
            self.error(f"unrecognized arguments: {' '.join(extras)}{hint}")
        return parsed

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        choices = action.choices
        if choices is None or value in choices:
            return
        hint = did_you_mean(str(value), [str(choice) for choice in choices])
        listed = ", ".join(repr(choice) for choice in choices)
        raise argparse.ArgumentError(
            action, f"invalid choice: {value!r}{hint} (choose from {listed})"
        )


def _options(parser: argparse.ArgumentParser) -> list[str]:
    """The long option strings of ``parser`` and of its subcommands' parsers, recursively."""
    found: list[str] = []
    for action in parser._actions:
        found += [option for option in action.option_strings if option.startswith("--")]
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                found += _options(sub)
    return list(dict.fromkeys(found))
