"""Console scripts (``myservice-api``, ``myservice-manage``, ``myservice-plugins``), and the
argument parser they share."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from myservice.suggest import did_you_mean


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors name the closest valid word:

    * an invalid choice (a subcommand, a ``choices`` option): ``invalid choice: 'tokn'; did
      you mean 'token'? (choose from 'db', 'token')``;
    * an unknown option: ``unrecognized arguments: --prot 9000; did you mean '--port'?``
      (compared with the options of this parser and of all its subcommands), also when
      argparse reports something else first -- missing required arguments (a mistyped
      ``--usr-id`` would read as a missing ``--user-id``) or an invalid subcommand (the value
      of a mistyped ``--confg-file`` taken for one).

    Sub-parsers made by ``add_subparsers`` are of the same class unless told otherwise."""

    _given: Sequence[str] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # descriptions come from module docstrings: show their ``literals`` as 'literals'
        description = kwargs.get("description")
        if isinstance(description, str):
            kwargs["description"] = description.replace("``", "'")
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:  # type: ignore[override]
        # remembered for explain(): argparse reports missing required arguments before it
        # returns the unrecognized ones
        self._given = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(self._given, namespace)

    def parse_args(self, args: Any = None, namespace: Any = None) -> Any:  # type: ignore[override]
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            unknown = next((arg for arg in extras if arg.startswith("-")), None)
            hint = did_you_mean(unknown.split("=", 1)[0], _options(self)) if unknown else ""
            self.error(f"unrecognized arguments: {' '.join(extras)}{hint}")
        return parsed

    def error(self, message: str) -> NoReturn:
        super().error(self.explain(message))

    def explain(self, message: str) -> str:
        """``message``, led by the unknown options of the arguments being parsed (with the
        closest valid one): argparse reports a missing required argument, or the value after
        a mistyped option taken for a subcommand (``--confg-file etc/x.conf``: invalid choice
        'etc/x.conf'), before the unknown option that caused it."""
        if message.startswith("unrecognized arguments"):
            return message
        unknown = self._unknown_options(self._given)
        if not unknown:
            return message
        hint = did_you_mean(unknown[0].split("=", 1)[0], _options(self))
        head = f"unrecognized arguments: {' '.join(unknown)}{hint}"
        return f"{head}{' ' if hint else '. '}Also, {message}"

    def _unknown_options(self, given: Sequence[str]) -> list[str]:
        """The words of ``given`` (up to ``--``) that look like options this parser does not
        take."""
        unknown = []
        for word in given:
            if word == "--":
                break
            if word.startswith("-") and word != "-" and not self._takes(word):
                unknown.append(word)
        return unknown

    def _takes(self, word: str) -> bool:
        """Whether argparse would read ``word`` as one of this parser's options or as a
        negative number, not as an unknown option."""
        known = self._option_string_actions
        name = word.split("=", 1)[0]
        if name in known or name in _options(self):  # also a subcommand's, not parsed yet
            return True
        if self._negative_number_matcher.match(word):
            return not self._has_negative_number_optionals
        if name.startswith("--"):
            return self.allow_abbrev and any(option.startswith(name) for option in known)
        return name[:2] in known  # -vv, -p9000

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
