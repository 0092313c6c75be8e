"""``GET /v1/``: this API version's own document (authenticated, like all of ``/v1``)."""

from __future__ import annotations

import webob

from myservice.wsgi.context import ServiceContext
from myservice.wsgi.reply import Reply

VERSION = {"id": "v1.0", "status": "CURRENT"}


def show_version(req: webob.Request, ctx: ServiceContext) -> Reply:
    """``GET /``: ``{"version": {"id": "v1.0", "status": "CURRENT", "links": [self]}}``."""
    href = f"{ctx.application_url(req.environ)}/"
    return Reply(200, {"version": {**VERSION, "links": [{"rel": "self", "href": href}]}})
