"""The ``/v1/users`` controllers.

Each controller is ``controller(request, context, **path_vars) -> Reply``; the route table in
:mod:`myservice.wsgi.router` binds them to methods, paths and policy rules.  Storage
exceptions are not caught here: the router maps them (404, 409, 400 for an unknown marker,
503) in one place, :data:`myservice.wsgi.app.STORAGE_ERRORS`.

A user as the API shows it::

    {"id": "...", "name": "alice", "email": "alice@example.com" | null, "enabled": true,
     "description": "..." | null, "created_at": "2024-05-01T12:00:00.000000Z",
     "updated_at": "..."}

After each successful change the event hooks run: ``user.create`` and ``user.update`` with the
user after the change, ``user.delete`` with the user as it was.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

import webob

from myservice.api import common, schemas
from myservice.wsgi.context import ServiceContext
from myservice.wsgi.faults import APIError
from myservice.wsgi.reply import Reply

FIELDS = ("id", "name", "email", "enabled", "description", "created_at", "updated_at")
_LIST_PARAMS = ("limit", "marker", "name")


def view(user: dict[str, Any]) -> dict[str, Any]:
    """A stored user as the API shows it (timestamps in ISO 8601 UTC)."""
    return {
        "id": user["id"],
        "name": user["name"],
        "email": user.get("email"),
        "enabled": bool(user.get("enabled", True)),
        "description": user.get("description"),
        "created_at": common.timestamp(user.get("created_at")),
        "updated_at": common.timestamp(user.get("updated_at")),
    }


def _url(req: webob.Request, ctx: ServiceContext, user_id: str) -> str:
    return f"{ctx.application_url(req.environ)}/users/{quote(user_id, safe='')}"


def create_user(req: webob.Request, ctx: ServiceContext) -> Reply:
    """``POST /users``: 201 with ``Location`` and ``{"user": {...}}``."""
    fields = common.read_json(req, schemas.user_create, schemas.user_create_fast)["user"]
    values = {
        "name": fields["name"],
        "email": fields.get("email"),
        "enabled": fields.get("enabled", True),
        "description": fields.get("description"),
    }
    user = view(ctx.storage.create_user(values))
    common.fire(req, ctx.hooks, "user.create", user)
    return Reply(201, {"user": user}, [("Location", _url(req, ctx, user["id"]))])


def list_users(req: webob.Request, ctx: ServiceContext) -> Reply:
    """``GET /users?limit=&marker=&name=``: one page in creation order, with a ``next`` link
    when more users exist."""
    params = common.single_params(req, _LIST_PARAMS)
    api = ctx.conf.api
    limit = common.parse_limit(params.get("limit"), api.default_limit, api.max_limit)
    marker = params.get("marker")
    if marker is not None and not marker:
        raise APIError(400, "Query parameter 'marker' must be a user id; got an empty value.")
    name = params.get("name")
    if name is not None and not 1 <= len(name) <= 255:
        raise APIError(400, f"Query parameter 'name' must be 1 to 255 characters; got {len(name)}.")
    found = ctx.storage.list_users(limit + 1, marker=marker, name=name)
    page = [view(u) for u in found[:limit]]
    links = []
    if len(found) > limit:
        query = [("limit", str(limit)), ("marker", page[-1]["id"])]
        if name is not None:
            query.append(("name", name))
        base = ctx.application_url(req.environ)
        links.append({"rel": "next", "href": f"{base}/users?{urlencode(query)}"})
    return Reply(200, {"users": page, "links": links})


def show_user(req: webob.Request, ctx: ServiceContext, user_id: str) -> Reply:
    """``GET /users/{user_id}``."""
    return Reply(200, {"user": view(ctx.storage.get_user(user_id))})


def update_user(req: webob.Request, ctx: ServiceContext, user_id: str) -> Reply:
    """``PATCH /users/{user_id}``: change only the given fields (``null`` clears ``email`` or
    ``description``); 200 with the whole user."""
    fields = common.read_json(req, schemas.user_update, schemas.user_update_fast)["user"]
    user = view(ctx.storage.update_user(user_id, dict(fields)))
    common.fire(req, ctx.hooks, "user.update", user)
    return Reply(200, {"user": user})


def delete_user(req: webob.Request, ctx: ServiceContext, user_id: str) -> Reply:
    """``DELETE /users/{user_id}``: 204; the ``user.delete`` hooks get the user as it was."""
    user = view(ctx.storage.get_user(user_id))
    ctx.storage.delete_user(user_id)
    common.fire(req, ctx.hooks, "user.delete", user)
    return Reply(204)
