"""``getLogger`` for the plugin managers that does not import :mod:`logging` until needed.

Importing :mod:`logging` costs a fresh process about 4 ms (it pulls in threading,
traceback, string, weakref...), as much as a whole warm plugin look-up.  Until some code
has imported :mod:`logging`, nobody can have configured it: the root logger is at its
default level WARNING with no handlers, so a DEBUG or INFO record would be dropped.  A
:class:`LazyLogger` therefore drops DEBUG/INFO records while ``logging`` is not in
``sys.modules``, and for everything else (or once ``logging`` is imported by anyone)
forwards to ``logging.getLogger(name)`` -- the same logger, the same records, the same
``lastResort`` output on stderr for an unconfigured WARNING.  It keeps no state besides
its name.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - typing only
    import logging
    from typing import Any

#: The levels of :mod:`logging`, without importing it.
DEBUG = 10
INFO = 20
WARNING = 30
ERROR = 40


class LazyLogger:
    """A stand-in for ``logging.getLogger(name)``; see the module docstring."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def logger(self) -> logging.Logger:
        """The real logger (imports :mod:`logging`)."""
        import logging

        return logging.getLogger(self.name)

    def _real(self, level: int) -> logging.Logger | None:
        """The real logger, or None when a record of ``level`` cannot be seen by anyone."""
        logging = sys.modules.get("logging")
        if logging is None:
            if level < WARNING:  # the level of an unconfigured root logger
                return None
            import logging
        return logging.getLogger(self.name)

    def _emit(self, level: int, msg: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        logger = self._real(level)
        if logger is not None and logger.isEnabledFor(level):
            # Point %(funcName)s/%(lineno)d at our caller, not at this module.
            kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 2
            logger.log(level, msg, *args, **kwargs)

    def debug(self, msg: str, *args: Any, **kwargs: Any) -> None:
        """``Logger.debug``: dropped while nobody has imported :mod:`logging`."""
        self._emit(DEBUG, msg, args, kwargs)

    def info(self, msg: str, *args: Any, **kwargs: Any) -> None:
        """``Logger.info``: dropped while nobody has imported :mod:`logging`."""
        self._emit(INFO, msg, args, kwargs)

    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None:
        """``Logger.warning``."""
        self._emit(WARNING, msg, args, kwargs)

    def error(self, msg: str, *args: Any, **kwargs: Any) -> None:
        """``Logger.error``."""
        self._emit(ERROR, msg, args, kwargs)

    def log(self, level: int, msg: str, *args: Any, **kwargs: Any) -> None:
        """``Logger.log``."""
        self._emit(level, msg, args, kwargs)

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 - the logging API's name
        """``Logger.isEnabledFor``: False for DEBUG/INFO while logging is not imported."""
        logger = self._real(level)
        return logger is not None and logger.isEnabledFor(level)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.logger, name)


def getLogger(name: str) -> LazyLogger:  # noqa: N802 - mirrors logging.getLogger
    """A :class:`LazyLogger` for ``name`` (use ``__name__``, as with logging)."""
    return LazyLogger(name)
