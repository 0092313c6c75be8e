"""``user_notes``: an API extension giving each user one free-text note.

::

    GET    /v1/users/{user_id}/notes   200 {"note": {"text": "...", "user_id": "..."}}
                                       (404 when the user has no note)
    PUT    /v1/users/{user_id}/notes   body {"note": {"text": "..."}} -> 200, same shape
    DELETE /v1/users/{user_id}/notes   204

The text is 1 to 1024 characters without NUL.  The note is stored in the user's metadata (the
storage driver's ``set_metadata_item``) under the reserved key :data:`NOTE_KEY`, so it works
on every storage driver and goes away with the user; it is also visible (and counted)
through the ``user_metadata`` extension when that one is enabled.  Reads need ``reader``,
writes ``admin``.

The extension contract (:mod:`myservice.api.extensions.base`): a subclass of
:class:`~myservice.api.extensions.APIExtension` built as ``UserNotesExtension(conf)``, adding
its routes in ``add_routes(router)``; controllers reuse
:func:`myservice.api.common.read_json` for body validation and let storage errors through.
"""

from __future__ import annotations

import webob
from jsonschema import Draft202012Validator

from myservice.api import common, policy, schemas
from myservice.api.extensions import APIExtension, RouteSink
from myservice.wsgi.context import ServiceContext
from myservice.wsgi.faults import APIError
from myservice.wsgi.reply import Reply

#: the metadata key holding the note
NOTE_KEY = "contrib.note"

NOTE_PUT = {
    "$schema": schemas.SCHEMA_DIALECT,
    "type": "object",
    "properties": {
        "note": {
            "type": "object",
            "properties": {
                "text": {
                    **schemas.DESCRIPTION,
                    "type": "string",
                    "minLength": 1,
                    "description": "a string of 1 to 1024 characters (no NUL character)",
                }
            },
            "required": ["text"],
            "additionalProperties": False,
            "description": 'the note: {"text": "..."}',
        }
    },
    "required": ["note"],
    "additionalProperties": False,
    "description": '{"note": {"text": "..."}}',
}
Draft202012Validator.check_schema(NOTE_PUT)
note_put = Draft202012Validator(NOTE_PUT)


def _view(user_id: str, text: str) -> dict:
    return {"note": {"user_id": user_id, "text": text}}


def show_note(req: webob.Request, ctx: ServiceContext, user_id: str) -> Reply:
    """``GET /users/{user_id}/notes``."""
    text = ctx.storage.get_metadata(user_id).get(NOTE_KEY)
    if text is None:
        raise APIError(404, f"User {user_id} has no note; PUT one first.")
    return Reply(200, _view(user_id, text))


def set_note(req: webob.Request, ctx: ServiceContext, user_id: str) -> Reply:
    """``PUT /users/{user_id}/notes``: create or replace the note."""
    text = common.read_json(req, note_put)["note"]["text"]
    ctx.storage.set_metadata_item(user_id, NOTE_KEY, text)
    return Reply(200, _view(user_id, text))


def delete_note(req: webob.Request, ctx: ServiceContext, user_id: str) -> Reply:
    """``DELETE /users/{user_id}/notes``: 204; 404 when there is no note."""
    if NOTE_KEY not in ctx.storage.get_metadata(user_id):
        raise APIError(404, f"User {user_id} has no note.")
    ctx.storage.delete_metadata_item(user_id, NOTE_KEY)
    return Reply(204)


class UserNotesExtension(APIExtension):
    """``user_notes``: ``/v1/users/{user_id}/notes`` (see the module docstring)."""

    alias = "user_notes"
    name = "User notes"
    description = "One free-text note per user: /v1/users/{user_id}/notes."
    updated = "2024-06-01T00:00:00Z"

    def add_routes(self, router: RouteSink) -> None:
        path = "/users/{user_id}/notes"
        router.add_route("GET", path, show_note, policy.READ)
        router.add_route("PUT", path, set_note, policy.WRITE)
        router.add_route("DELETE", path, delete_note, policy.WRITE)
