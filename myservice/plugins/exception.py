"""Exceptions raised by the plugin managers (same hierarchy as ``stevedore.exception``)."""


class NoUniqueMatch(RuntimeError):
    """There was not exactly one plugin for a name that must identify one."""


class NoMatches(NoUniqueMatch):
    """No plugin matched (empty namespace, unknown name, or every candidate failed)."""


class MultipleMatches(NoUniqueMatch):
    """More than one plugin claims a name that must identify exactly one."""
