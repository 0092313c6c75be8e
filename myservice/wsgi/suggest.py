"""The "did you mean" of a 404: the known path most like a path nobody serves.

Used only on the error path (the urlmap's and the router's 404), never on a matched request.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

#: a longer path gets no suggestion: comparing strings costs up to the product of their
#: lengths, and no typo makes a path this long
MAX_LENGTH = 128


def closest_path(path: str, templates: Iterable[str]) -> str | None:
    """The path of ``templates`` most like ``path``, or ``None`` when none is close.

    ``templates`` are route paths in Routes syntax (``/users/{user_id}``).  A template with as
    many segments as ``path`` is compared with the request's own text in its ``{var}``
    segments (``/usrs/abc`` -> ``/users/abc``); a template with another number of segments
    is compared only if it has no variable (a suggestion never shows ``{var}``).  ``path``
    itself is never suggested.  "Close" is :func:`difflib.get_close_matches`' default: a
    similarity ratio of at least 0.6, the highest wins.  A ``path`` longer than
    :data:`MAX_LENGTH` characters gets ``None``.
    """
    if len(path) > MAX_LENGTH:
        return None
    given = path.strip("/").split("/")
    candidates: list[str] = []
    for template in templates:
        parts = template.strip("/").split("/")
        if len(parts) == len(given):
            parts = [
                mine if part.startswith("{") else part
                for part, mine in zip(parts, given, strict=True)
            ]
        elif any(part.startswith("{") for part in parts):
            continue
        candidate = "/" + "/".join(parts)
        if candidate != path and candidate not in candidates:
            candidates.append(candidate)
    close = difflib.get_close_matches(path, candidates, n=1)
    return close[0] if close else None


def no_resource(shown: str, suggestion: str | None) -> str:
    """The detail of a 404 for the path ``shown``: ``No resource at /v1/usrs; did you mean
    /v1/users?``, or ``No resource at /v1/nothing.`` when there is no ``suggestion``."""
    if suggestion is None:
        return f"No resource at {shown}."
    return f"No resource at {shown}; did you mean {suggestion}?"
