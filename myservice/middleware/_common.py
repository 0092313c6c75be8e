"""Helpers shared by the filters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from myservice import conf


def section_config(
    global_conf: Mapping[str, Any], local_conf: Mapping[str, str], section: str
) -> conf.Section:
    """The validated options of ``[section]`` for one filter.

    The service configuration comes from :func:`myservice.conf.from_global_conf`; the options
    of the filter's own ``[filter:...]`` section of ``api-paste.ini`` override it and are
    validated by the same declarations (errors name the ini file and the option).
    """
    cfg = conf.from_global_conf(global_conf)
    cfg = conf.paste_overrides(cfg, section, local_conf, global_conf)
    return cfg.sections[section]


def service_config(
    global_conf: Mapping[str, Any], local_conf: Mapping[str, str], section: str
) -> conf.Config:
    """Like :func:`section_config` but the whole :class:`~myservice.conf.Config`."""
    cfg = conf.from_global_conf(global_conf)
    return conf.paste_overrides(cfg, section, local_conf, global_conf)


def no_options(global_conf: Mapping[str, Any], local_conf: Mapping[str, str], name: str) -> None:
    """Refuse options given to a filter that has none (a typo would otherwise go unnoticed)."""
    own = sorted(k for k in local_conf if k not in conf._PASTE_KEYS and k not in global_conf)
    if own:
        origin = global_conf.get("__file__", "api-paste.ini")
        raise conf.ConfigError(
            f"{origin} [filter:{name}]: unknown option(s) {', '.join(own)}: "
            f"the {name} filter takes no options"
        )


def close_result(result: object) -> None:
    """Call ``result.close()`` if the application's response iterable has one (PEP 3333:
    a filter that wraps the iterable must pass ``close`` on)."""
    close = getattr(result, "close", None)
    if close is not None:
        close()
