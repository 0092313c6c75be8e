"""The "did you mean" of error messages: the valid name or path closest to a wrong one.

Every entry point (config file, paste ini, CLI, HTTP) answers an unknown name with the closest
valid one, through these functions, so "close" means the same everywhere:
:func:`difflib.get_close_matches`' default, a similarity ratio of at least 0.6, the highest
wins.  Used only when building an error, never on the path of a valid request.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(name: str, choices: Iterable[str]) -> str | None:
    """The one of ``choices`` most like ``name``, or ``None`` when none is close; when none
    is close as written, case is ignored (``LIMIT`` -> ``limit``)."""
    choices = list(choices)
    close = difflib.get_close_matches(name, choices, n=1)
    if close:
        return close[0]
    folded: dict[str, str] = {}
    for choice in choices:
        folded.setdefault(choice.casefold(), choice)
    close = difflib.get_close_matches(name.casefold(), list(folded), n=1)
    return folded[close[0]] if close else None


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'closest'?"`` to end an error message, or ``""``."""
    close = closest(name, choices)
    return f"; did you mean {close!r}?" if close is not None else ""


#: a longer path gets no suggestion: comparing strings costs up to the product of their
#: lengths, and no typo makes a path this long
MAX_LENGTH = 128

#: request text that cannot stand for a ``{var}`` segment of a suggested path
_NOT_SEGMENTS = frozenset({"", ".", ".."})


def closest_path(path: str, templates: Iterable[str]) -> str | None:
    """The path of ``templates`` most like ``path``, or ``None`` when none is close.

    ``templates`` are route paths in Routes syntax (``/users/{user_id}``).  A template with as
    many segments as ``path`` is compared with the request's own text in its ``{var}``
    segments (``/usrs/abc`` -> ``/users/abc``); a template with another number of segments
    is compared only if it has no variable (a suggestion never shows ``{var}``), and a
    template whose variable would get an empty, ``.`` or ``..`` segment is not (a client
    following the suggestion would land elsewhere).  ``path`` itself is never suggested.
    A ``path`` longer than :data:`MAX_LENGTH` characters gets ``None``.
    """
    if len(path) > MAX_LENGTH:
        return None
    given = path.strip("/").split("/")
    candidates: list[str] = []
    for template in templates:
        parts = template.strip("/").split("/")
        if len(parts) == len(given):
            pairs = list(zip(parts, given, strict=True))
            if any(part.startswith("{") and mine in _NOT_SEGMENTS for part, mine in pairs):
                continue  # a link to it would resolve elsewhere (RFC 3986 dot segments)
            parts = [mine if part.startswith("{") else part for part, mine in pairs]
        elif any(part.startswith("{") for part in parts):
            continue
        candidate = "/" + "/".join(parts)
        if candidate != path and candidate not in candidates:
            candidates.append(candidate)
    return closest(path, candidates)


def no_resource(shown: str, suggestion: str | None) -> str:
    """The detail of a 404 for the path ``shown``: ``No resource at /v1/usrs; did you mean
    /v1/users?``, or ``No resource at /v1/nothing.`` when there is no ``suggestion``."""
    if suggestion is None:
        return f"No resource at {shown}."
    return f"No resource at {shown}; did you mean {suggestion}?"
