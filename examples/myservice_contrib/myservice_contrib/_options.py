"""Reading a ``[plugin:NAME]`` section of ``etc/myservice.conf`` (shared by the plugins here)."""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from pathlib import Path

from myservice.conf import Config


def section_options(
    conf: Config, plugin: str, known: Iterable[str], error: type[Exception]
) -> dict[str, str]:
    """The options of ``[plugin:PLUGIN]``; ``error`` (naming the file, the section, the option
    and the closest known one) for an option that is not in ``known``."""
    options = conf.plugin_options(plugin)
    allowed = sorted(known)
    for name in options:
        if name not in allowed:
            close = difflib.get_close_matches(name, allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise error(
                f"{conf.path or 'configuration'} [plugin:{plugin}]: unknown option "
                f"{name!r}{hint} (allowed: {', '.join(allowed)})"
            )
    return options


def resolve_path(conf: Config, raw: str) -> Path:
    """``raw`` with ``%(here)s`` / ``%(state_path)s`` expanded; relative to the config file."""
    here = str(conf.path.parent) if conf.path else os.getcwd()
    text = raw.replace("%(here)s", here).replace("%(state_path)s", str(conf.state_path))
    path = Path(text).expanduser()
    return path if path.is_absolute() else Path(here) / path


def parse_bool(conf: Config, plugin: str, name: str, raw: str, error: type[Exception]) -> bool:
    """A boolean option (``true/false/yes/no/on/off/1/0``)."""
    text = raw.strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise error(
        f"{conf.path or 'configuration'} [plugin:{plugin}] {name} = {raw}: expected true or false"
    )
