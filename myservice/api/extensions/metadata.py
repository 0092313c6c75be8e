"""The built-in ``user_metadata`` API extension: key/value metadata per user.

Modelled on compute's server metadata::

    GET    /v1/users/{user_id}/metadata        200 {"metadata": {"k": "v", ...}}
    GET    /v1/users/{user_id}/metadata/{key}  200 {"meta": {"k": "v"}}
    PUT    /v1/users/{user_id}/metadata/{key}  body {"meta": {"k": "v"}} -> 200 {"meta": {...}}
    DELETE /v1/users/{user_id}/metadata/{key}  204

Rules:

* keys are 1 to 255 characters without control characters (case-sensitive, any Unicode; in the
  URL percent-encode them as UTF-8).  A key cannot contain ``/``: WSGI servers decode ``%2F``
  in the path, so such a key would not reach the resource (404).  Values are strings of up to
  1024 characters without NUL;
* the body of ``PUT`` holds exactly one key, equal to the key in the URL (else 400); ``PUT``
  creates or replaces it;
* a user holds at most :data:`MAX_ITEMS` (128) keys: adding one more is **403**
  (``myservice.metadata_limit_exceeded``), as compute answers a metadata quota; replacing an
  existing key is always allowed.  The limit is checked just before the write, so two
  concurrent requests adding different new keys to a user at 127 keys may both succeed;
* an unknown user or key is 404;
* policy: reads (``GET``/``HEAD``) need ``reader`` or ``admin``
  (:data:`~myservice.api.policy.READ`), writes need ``admin``
  (:data:`~myservice.api.policy.WRITE`).

Metadata lives in the storage driver (``get_metadata``, ``set_metadata_item``,
``delete_metadata_item``, see :mod:`myservice.storage.base`); deleting a user deletes it.
No event hook is fired for metadata changes.
"""

from __future__ import annotations

import webob

from myservice.api import common, policy, schemas
from myservice.api.extensions.base import APIExtension, RouteSink
from myservice.wsgi.context import ServiceContext
from myservice.wsgi.faults import APIError
from myservice.wsgi.reply import Reply

#: most metadata keys one user may hold
MAX_ITEMS = 128
MAX_KEY_LENGTH = 255
MAX_VALUE_LENGTH = 1024

#: a metadata key (the user-name rules: 1..255 characters, no control characters)
KEY = {
    **schemas.NAME,
    "description": "a key of 1 to 255 characters without control characters",
}
#: a metadata value
VALUE = {
    **schemas.DESCRIPTION,
    "type": "string",
    "description": "a string of up to 1024 characters (no NUL character)",
}

#: ``PUT /v1/users/{user_id}/metadata/{key}``
META_ITEM = {
    "$schema": schemas.SCHEMA_DIALECT,
    "type": "object",
    "properties": {
        "meta": {
            "type": "object",
            "propertyNames": KEY,
            "additionalProperties": VALUE,
            "minProperties": 1,
            "description": 'one key and its value, e.g. {"color": "blue"}',
        }
    },
    "required": ["meta"],
    "additionalProperties": False,
    "description": '{"meta": {"KEY": "VALUE"}}',
}
schemas.Validator.check_schema(META_ITEM)
meta_item = schemas.Validator(META_ITEM)


def _no_key(user_id: str, key: str) -> APIError:
    return APIError(404, f"User {user_id} has no metadata key {key!r}.")


def list_metadata(req: webob.Request, ctx: ServiceContext, user_id: str) -> Reply:
    """``GET /users/{user_id}/metadata``: every key of the user."""
    return Reply(200, {"metadata": ctx.storage.get_metadata(user_id)})


def show_metadata_item(req: webob.Request, ctx: ServiceContext, user_id: str, key: str) -> Reply:
    """``GET /users/{user_id}/metadata/{key}``."""
    metadata = ctx.storage.get_metadata(user_id)
    if key not in metadata:
        raise _no_key(user_id, key)
    return Reply(200, {"meta": {key: metadata[key]}})


def set_metadata_item(req: webob.Request, ctx: ServiceContext, user_id: str, key: str) -> Reply:
    """``PUT /users/{user_id}/metadata/{key}``: create or replace one key."""
    meta = common.read_json(req, meta_item)["meta"]
    if len(meta) != 1:
        raise APIError(
            400,
            f"Invalid request body: /meta: must hold exactly one key, the one in the URL "
            f"({key!r}); got {len(meta)} keys.",
        )
    ((body_key, value),) = meta.items()
    if body_key != key:
        raise APIError(
            400,
            f"Invalid request body: /meta: the key {body_key!r} differs from the key in the "
            f"URL {key!r}; they must be equal.",
        )
    current = ctx.storage.get_metadata(user_id)
    if key not in current and len(current) >= MAX_ITEMS:
        raise APIError(
            403,
            f"User {user_id} already has {len(current)} metadata keys, the most allowed is "
            f"{MAX_ITEMS}; delete a key or replace an existing one.",
            code="metadata_limit_exceeded",
        )
    ctx.storage.set_metadata_item(user_id, key, value)
    return Reply(200, {"meta": {key: value}})


def delete_metadata_item(req: webob.Request, ctx: ServiceContext, user_id: str, key: str) -> Reply:
    """``DELETE /users/{user_id}/metadata/{key}``: 204."""
    if key not in ctx.storage.get_metadata(user_id):
        raise _no_key(user_id, key)
    ctx.storage.delete_metadata_item(user_id, key)
    return Reply(204)


class UserMetadataExtension(APIExtension):
    """``user_metadata``: ``/v1/users/{user_id}/metadata[/{key}]`` (see the module docstring)."""

    alias = "user_metadata"
    name = "User metadata"
    description = "Key/value metadata on users: /v1/users/{user_id}/metadata[/{key}]."
    updated = "2024-05-01T00:00:00Z"

    def add_routes(self, router: RouteSink) -> None:
        """Add the four metadata routes."""
        base = "/users/{user_id}/metadata"
        router.add_route("GET", base, list_metadata, policy.READ)
        router.add_route("GET", base + "/{key}", show_metadata_item, policy.READ)
        router.add_route("PUT", base + "/{key}", set_metadata_item, policy.WRITE)
        router.add_route("DELETE", base + "/{key}", delete_metadata_item, policy.WRITE)

    def openapi_paths(self) -> dict[str, dict[str, dict]]:
        """The OpenAPI operations of the four routes (request schema: :data:`META_ITEM`)."""
        from myservice.api import openapi as oa

        metadata = {
            "type": "object",
            "required": ["metadata"],
            "properties": {
                "metadata": {"type": "object", "additionalProperties": {"type": "string"}}
            },
        }
        meta = {
            "type": "object",
            "required": ["meta"],
            "properties": {
                "meta": {
                    "type": "object",
                    "minProperties": 1,
                    "maxProperties": 1,
                    "additionalProperties": {"type": "string"},
                }
            },
        }
        body = {k: v for k, v in META_ITEM.items() if k != "$schema"}
        base = "/users/{user_id}/metadata"
        return {
            base: {
                "get": {
                    "summary": "Every metadata key of a user",
                    "responses": {
                        "200": oa.json_response("The user's metadata.", metadata),
                        "404": oa.error_ref(404),
                        "503": oa.error_ref(503),
                    },
                }
            },
            base + "/{key}": {
                "get": {
                    "summary": "One metadata key of a user",
                    "responses": {
                        "200": oa.json_response("The key and its value.", meta),
                        "404": oa.error_ref(404),
                        "503": oa.error_ref(503),
                    },
                },
                "put": {
                    "summary": "Create or replace one metadata key (the body's key must "
                    f"equal the URL's; at most {MAX_ITEMS} keys per user: 403 beyond)",
                    "requestBody": oa.request_body(body),
                    "responses": {
                        "200": oa.json_response("The key and its value.", meta),
                        **{str(s): oa.error_ref(s) for s in (404, 415, 503)},
                    },
                },
                "delete": {
                    "summary": "Delete one metadata key",
                    "responses": {
                        "204": oa.empty_response("Deleted."),
                        "404": oa.error_ref(404),
                        "503": oa.error_ref(503),
                    },
                },
            },
        }
