"""``GET /v1/extensions`` and ``GET /v1/extensions/{alias}``: the loaded API extensions.

Reads ``context.extensions`` (stevedore-style ``Extension`` records whose ``obj`` has
``alias``, ``name``, ``description`` and ``updated``), in the order they were loaded::

    {"extensions": [{"alias": "user_metadata", "name": "User metadata",
                     "description": "...", "updated": "2024-05-01T00:00:00Z"}]}
"""

from __future__ import annotations

from typing import Any

import webob

from myservice.api import common
from myservice.wsgi.context import ServiceContext
from myservice.wsgi.faults import APIError
from myservice.wsgi.reply import Reply


def _objects(ctx: ServiceContext) -> list[Any]:
    return [getattr(record, "obj", record) for record in ctx.extensions]


def describe(extension: Any) -> dict[str, Any]:
    """The public description of one extension object."""
    return {
        "alias": getattr(extension, "alias", ""),
        "name": getattr(extension, "name", ""),
        "description": getattr(extension, "description", ""),
        "updated": common.timestamp(getattr(extension, "updated", None)),
    }


def list_extensions(req: webob.Request, ctx: ServiceContext) -> Reply:
    """``GET /extensions``."""
    return Reply(200, {"extensions": [describe(e) for e in _objects(ctx)]})


def show_extension(req: webob.Request, ctx: ServiceContext, alias: str) -> Reply:
    """``GET /extensions/{alias}``: 404 naming the loaded aliases when unknown."""
    loaded = _objects(ctx)
    for extension in loaded:
        if getattr(extension, "alias", None) == alias:
            return Reply(200, {"extension": describe(extension)})
    aliases = ", ".join(getattr(e, "alias", "?") for e in loaded) or "none"
    raise APIError(404, f"No API extension with alias {alias!r} is loaded (loaded: {aliases}).")
