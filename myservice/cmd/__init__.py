"""Console scripts (``myservice-api``, ``myservice-manage``, ``myservice-plugins``), and the
argument parser they share."""

from __future__ import annotations

import argparse
from typing import Any

from myservice.suggest import did_you_mean


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose "invalid choice" error (a subcommand, a ``choices``
    option) also names the closest valid choice: ``invalid choice: 'tokn'; did you mean
    'token'? (choose from 'db', 'token')``.  Sub-parsers made by ``add_subparsers`` are of
    the same class unless told otherwise."""

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        choices = action.choices
        if choices is None or value in choices:
            return
        hint = did_you_mean(str(value), [str(choice) for choice in choices])
        listed = ", ".join(repr(choice) for choice in choices)
        raise argparse.ArgumentError(
            action, f"invalid choice: {value!r}{hint} (choose from {listed})"
        )
