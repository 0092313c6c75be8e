"""The OpenAPI 3.1 description of the public API, served at ``GET /v1/openapi.json``.

The document is built **once at start-up from the router's actual route table**
(:func:`build_document`, called by :func:`myservice.wsgi.app.build_router` after every
extension has added its routes), so it cannot drift from what the service answers:

* every ``/v1`` route of the router is one operation of the document, and the document has
  no ``/v1`` operation the router does not route (``tests/reliability/test_openapi.py``
  checks both ways);
* the core operations (users, extensions, the version document) are described by
  :data:`CORE_OPERATIONS`, keyed by controller; their request schemas are the JSON Schemas of
  :mod:`myservice.api.schemas` themselves (``components/schemas/UserCreate`` is
  :data:`~myservice.api.schemas.USER_CREATE`), not copies written again;
* an API extension may describe its own routes with an optional ``openapi_paths()`` method
  (see :mod:`myservice.api.extensions.base`) returning ``{path: {method: operation}}`` with
  paths relative to ``/v1``; fragments for a route the router does not have are dropped
  (logged at WARNING); a route nobody describes gets a generic operation (its path
  parameters, any JSON body, every error it may answer);
* ``/`` (versions) and ``/healthcheck`` are the other applications of the urlmap composite.

Every 4xx/5xx response of every operation is the error envelope of
:mod:`myservice.wsgi.faults`, ``components/schemas/Error``; the token is
``components/securitySchemes/token`` (``X-Auth-Token`` header), required everywhere except
``/``, ``/healthcheck`` and ``/v1/openapi.json``.

``GET /v1/openapi.json`` is the one ``/v1`` route answered **without authentication**: its
route carries the rule :data:`myservice.wsgi.router.PUBLIC`, and the ``auth`` filter lets
the paths of ``[auth] public_paths`` (default ``/v1/openapi.json``) through without a token.
"""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import webob

from myservice.api import extension_list, schemas, users, version
from myservice.wsgi.faults import REQUEST_ID_HEADER, StartResponse, reason
from myservice.wsgi.reply import JSON, Reply

LOG = logging.getLogger(__name__)

#: where the ``/v1`` application is mounted (``[composite:main]`` of ``etc/api-paste.ini``)
PREFIX = "/v1"
#: the route of the document, relative to :data:`PREFIX`
PATH = "/openapi.json"
OPENAPI_VERSION = "3.1.0"
#: statuses that have a ``components/responses/ErrorNNN`` entry
ERROR_STATUSES = (400, 401, 403, 404, 405, 406, 409, 411, 413, 415, 500, 503)

#: what an error status tells a client beyond its reason phrase
_MEANING = {
    415: " The body is not application/json (UTF-8), or has a Content-Encoding other than "
    "identity. Comes with Accept-Post / Accept-Patch: application/json (POST / PATCH) or "
    "Accept-Encoding: identity.",
    503: " The storage backend is unreachable. code myservice.service_unavailable: nothing "
    "was written, retry later; code myservice.outcome_unknown (writes only): the connection "
    "was lost while the change was being committed, so it may or may not have been saved: "
    "read the resource before sending the change again.",
}
#: errors any authenticated ``/v1`` operation may answer: a malformed ``Content-Length``
#: (400), no or a bad token (401), a missing role (403), ``Accept`` without JSON (406), a
#: body over ``[sizelimit]`` (413), the fault barrier (500)
V1_ERRORS = (400, 401, 403, 406, 413, 500)
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_PATH_VAR = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_REQUEST_ID_PATTERN = "^req-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"


def ref(kind: str, name: str) -> dict[str, str]:
    """``{"$ref": "#/components/<kind>/<name>"}``."""
    return {"$ref": f"#/components/{kind}/{name}"}


def error_ref(status: int) -> dict[str, str]:
    """The shared response of an error status (one of :data:`ERROR_STATUSES`)."""
    if status not in ERROR_STATUSES:
        raise ValueError(f"no shared error response for {status}; one of {ERROR_STATUSES}")
    return ref("responses", f"Error{status}")


def json_content(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A ``content`` map of one ``application/json`` schema."""
    return {JSON: {"schema": dict(schema)}}


def json_response(description: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    """A success response with a JSON body and the request-id header."""
    return {
        "description": description,
        "headers": {REQUEST_ID_HEADER: ref("headers", "RequestId")},
        "content": json_content(schema),
    }


def empty_response(description: str) -> dict[str, Any]:
    """A success response without a body (204)."""
    return {"description": description, "headers": {REQUEST_ID_HEADER: ref("headers", "RequestId")}}


def request_body(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A required ``application/json`` request body."""
    return {"required": True, "content": json_content(schema)}


def path_variables(path: str) -> list[str]:
    """The ``{name}`` variables of a route path, in order."""
    return _PATH_VAR.findall(path)


def path_parameters(path: str) -> list[dict[str, Any]]:
    """One required string ``in: path`` parameter per variable of ``path``."""
    return [
        {
            "name": name,
            "in": "path",
            "required": True,
            "description": "one path segment, percent-encoded as UTF-8",
            "schema": {"type": "string", "minLength": 1},
        }
        for name in path_variables(path)
    ]


def _request_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON Schema of :mod:`myservice.api.schemas` as a component: the same schema; its
    ``$schema`` is the document's ``jsonSchemaDialect``, so it is left out."""
    out = copy.deepcopy(dict(schema))
    out.pop("$schema", None)
    return out


@dataclass(frozen=True)
class Operation:
    """What the route table does not say about one core operation."""

    operation_id: str
    summary: str
    tag: str
    #: status -> response object (success answers)
    success: Mapping[str, Any]
    #: error statuses besides :data:`V1_ERRORS`
    errors: tuple[int, ...] = ()
    #: name of a ``components/schemas`` entry for the request body
    body: str | None = None
    query: tuple[dict[str, Any], ...] = ()
    description: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


_USER = ref("schemas", "UserResponse")

#: controller -> its description (the router's table says method, path and policy)
CORE_OPERATIONS: Mapping[Any, Operation] = {
    version.show_version: Operation(
        "showVersionV1",
        "This API version's document",
        "versions",
        {"200": json_response("The v1 version document.", ref("schemas", "VersionResponse"))},
    ),
    users.list_users: Operation(
        "listUsers",
        "List users, one page at a time, in creation order",
        "users",
        {"200": json_response("One page of users and a `next` link.", ref("schemas", "UserList"))},
        errors=(503,),
        query=(
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "description": "page size, 1 or more ([api] max_limit at most; larger "
                "values are reduced to it)",
                "schema": {"type": "integer", "minimum": 1},
            },
            {
                "name": "marker",
                "in": "query",
                "required": False,
                "description": "the id of the last user of the previous page",
                "schema": {"type": "string", "minLength": 1},
            },
            {
                "name": "name",
                "in": "query",
                "required": False,
                "description": "only the user of this exact name",
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            },
        ),
        description="Any other query parameter, or one given twice, is a 400.",
    ),
    users.create_user: Operation(
        "createUser",
        "Create a user",
        "users",
        {
            "201": {
                **json_response("The new user.", _USER),
                "headers": {
                    REQUEST_ID_HEADER: ref("headers", "RequestId"),
                    "Location": {
                        "description": "URL of the new user",
                        "schema": {"type": "string"},
                    },
                },
            }
        },
        errors=(409, 415, 503),
        body="UserCreate",
    ),
    users.show_user: Operation(
        "showUser",
        "Show a user",
        "users",
        {"200": json_response("The user.", _USER)},
        errors=(404, 503),
    ),
    users.update_user: Operation(
        "updateUser",
        "Change some fields of a user (null clears email or description)",
        "users",
        {"200": json_response("The whole user after the change.", _USER)},
        errors=(404, 409, 415, 503),
        body="UserUpdate",
    ),
    users.delete_user: Operation(
        "deleteUser",
        "Delete a user",
        "users",
        {"204": empty_response("Deleted.")},
        errors=(404, 503),
    ),
    extension_list.list_extensions: Operation(
        "listExtensions",
        "List the loaded API extensions",
        "extensions",
        {"200": json_response("The loaded extensions.", ref("schemas", "ExtensionList"))},
    ),
    extension_list.show_extension: Operation(
        "showExtension",
        "Show one loaded API extension",
        "extensions",
        {"200": json_response("The extension.", ref("schemas", "ExtensionResponse"))},
        errors=(404,),
    ),
}


def _components() -> dict[str, Any]:
    nullable_string = {"type": ["string", "null"]}
    link = {
        "type": "object",
        "required": ["rel", "href"],
        "properties": {"rel": {"type": "string"}, "href": {"type": "string"}},
    }
    version_doc = {
        "type": "object",
        "required": ["id", "status", "links"],
        "properties": {
            "id": {"type": "string"},
            "status": {"type": "string"},
            "links": {"type": "array", "items": ref("schemas", "Link")},
        },
    }
    user = {
        "type": "object",
        "required": list(users.FIELDS),
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "email": nullable_string,
            "enabled": {"type": "boolean"},
            "description": nullable_string,
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
        },
    }
    extension = {
        "type": "object",
        "required": ["alias", "name", "description", "updated"],
        "properties": {
            "alias": {"type": "string"},
            "name": {"type": "string"},
            "description": {"type": "string"},
            "updated": nullable_string,
        },
    }
    error = {
        "type": "object",
        "description": "The error envelope of every 4xx/5xx answer (myservice.wsgi.faults); "
        "request_id equals the X-OpenStack-Request-ID response header.",
        "required": ["errors"],
        "additionalProperties": False,
        "properties": {
            "errors": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["status", "code", "title", "detail", "request_id"],
                    "additionalProperties": False,
                    "properties": {
                        "status": {"type": "integer", "minimum": 400, "maximum": 599},
                        "code": {"type": "string", "pattern": "^myservice\\."},
                        "title": {"type": "string"},
                        "detail": {"type": "string"},
                        "request_id": {"type": "string", "pattern": _REQUEST_ID_PATTERN},
                    },
                },
            }
        },
    }
    responses = {
        f"Error{status}": {
            "description": f"{reason(status)}, in the error envelope.{_MEANING.get(status, '')}",
            "headers": {REQUEST_ID_HEADER: ref("headers", "RequestId")},
            "content": json_content(ref("schemas", "Error")),
        }
        for status in ERROR_STATUSES
    }
    return {
        "schemas": {
            "Error": error,
            "Link": link,
            "Versions": {
                "type": "object",
                "required": ["versions"],
                "properties": {"versions": {"type": "array", "items": version_doc}},
            },
            "VersionResponse": {
                "type": "object",
                "required": ["version"],
                "properties": {"version": version_doc},
            },
            "User": user,
            "UserResponse": {
                "type": "object",
                "required": ["user"],
                "additionalProperties": False,
                "properties": {"user": ref("schemas", "User")},
            },
            "UserList": {
                "type": "object",
                "required": ["users", "links"],
                "additionalProperties": False,
                "properties": {
                    "users": {"type": "array", "items": ref("schemas", "User")},
                    "links": {"type": "array", "items": ref("schemas", "Link")},
                },
            },
            "UserCreate": _request_schema(schemas.USER_CREATE),
            "UserUpdate": _request_schema(schemas.USER_UPDATE),
            "Extension": extension,
            "ExtensionResponse": {
                "type": "object",
                "required": ["extension"],
                "properties": {"extension": ref("schemas", "Extension")},
            },
            "ExtensionList": {
                "type": "object",
                "required": ["extensions"],
                "properties": {
                    "extensions": {"type": "array", "items": ref("schemas", "Extension")}
                },
            },
            "Health": {
                "type": "object",
                "required": ["status"],
                "properties": {"status": {"const": "OK"}},
            },
            "OpenAPI": {
                "type": "object",
                "required": ["openapi", "info", "paths"],
                "properties": {"openapi": {"type": "string", "pattern": "^3\\.1\\."}},
            },
        },
        "responses": responses,
        "headers": {
            "RequestId": {
                "description": "This request's id (req-<uuid4>), also in error envelopes and "
                "in the service's log lines.",
                "schema": {"type": "string", "pattern": _REQUEST_ID_PATTERN},
            }
        },
        "securitySchemes": {
            "token": {
                "type": "apiKey",
                "in": "header",
                "name": "X-Auth-Token",
                "description": "A token made with 'myservice-manage token create'.",
            }
        },
    }


def _errors(statuses: Iterable[int]) -> dict[str, Any]:
    return {str(s): error_ref(s) for s in sorted(set(statuses))}


def _core_operation(method: str, path: str, op: Operation, rule_name: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "responses": {**op.success, **_errors((*V1_ERRORS, *op.errors))},
    }
    if op.description:
        out["description"] = op.description
    params = [*path_parameters(path), *op.query]
    if params:
        out["parameters"] = params
    if op.body:
        out["requestBody"] = request_body(ref("schemas", op.body))
    out["x-policy-rule"] = rule_name
    out.update(op.extra)
    return out


def _operation_id(method: str, path: str) -> str:
    words = [w for w in re.split(r"[^A-Za-z0-9]+", path) if w]
    return method.lower() + "".join(w[:1].upper() + w[1:] for w in words)


def _generic_operation(method: str, path: str, rule_name: str, tag: str) -> dict[str, Any]:
    """A route nobody describes: path parameters, any JSON body, any success, every error."""
    errors = [*V1_ERRORS, 409, 503]
    if path_variables(path):
        errors.append(404)
    out: dict[str, Any] = {
        "operationId": _operation_id(method, path),
        "summary": f"{method} {PREFIX}{path} (undocumented by its extension)",
        "tags": [tag],
        "responses": {"2XX": {"description": "Success."}, **_errors(errors)},
        "x-policy-rule": rule_name,
    }
    if path_variables(path):
        out["parameters"] = path_parameters(path)
    if method in _BODY_METHODS:
        errors.append(415)
        out["responses"].update(_errors(errors))
        out["requestBody"] = {"required": True, "content": json_content({})}
    return out


def _complete(method: str, path: str, given: Mapping[str, Any], rule_name: str, tag: str) -> dict:
    """An extension's operation with what it may leave out: path parameters, tags,
    operationId and the errors every ``/v1`` operation may answer."""
    out = copy.deepcopy(dict(given))
    out.setdefault("operationId", _operation_id(method, path))
    out.setdefault("tags", [tag])
    out.setdefault("x-policy-rule", rule_name)
    params = list(out.get("parameters", ()))
    named = {(p.get("in"), p.get("name")) for p in params if isinstance(p, Mapping)}
    missing = [p for p in path_parameters(path) if ("path", p["name"]) not in named]
    if missing or params:
        out["parameters"] = missing + params
    responses = dict(out.get("responses", {}))
    for status, response in _errors(V1_ERRORS).items():
        responses.setdefault(status, response)
    out["responses"] = responses
    return out


def _extension_fragments(extensions: Iterable[Any]) -> dict[tuple[str, str], tuple[dict, str]]:
    """``(METHOD, path) -> (operation, alias)`` from each extension's ``openapi_paths()``."""
    out: dict[tuple[str, str], tuple[dict, str]] = {}
    for record in extensions:
        extension = getattr(record, "obj", record)
        alias = getattr(extension, "alias", "") or getattr(record, "name", "extension")
        hook = getattr(extension, "openapi_paths", None)
        if hook is None:
            continue
        try:
            paths = hook() or {}
            for path, item in paths.items():
                for method, operation in item.items():
                    out[(method.upper(), path)] = (dict(operation), alias)
        except Exception:
            LOG.exception(
                "API extension %s: openapi_paths() failed; its routes get generic descriptions",
                alias,
            )
    return out


def _public_paths() -> dict[str, Any]:
    """``/`` and ``/healthcheck``: the urlmap's other applications."""
    health_json = {**json_response("Healthy.", ref("schemas", "Health"))}
    health_json["content"] = {
        "text/plain": {"schema": {"type": "string", "const": "OK"}},
        **json_content(ref("schemas", "Health")),
    }
    return {
        "/": {
            "get": {
                "operationId": "listVersions",
                "summary": "The API versions (unauthenticated)",
                "tags": ["versions"],
                "security": [],
                "responses": {
                    "200": json_response("The versions document.", ref("schemas", "Versions")),
                    **_errors((406,)),
                },
            }
        },
        "/healthcheck": {
            "get": {
                "operationId": "healthcheck",
                "summary": "Whether this process can serve (unauthenticated)",
                "description": 'text/plain `OK`, or `{"status": "OK"}` when Accept prefers '
                "application/json; 503 when the storage backend is unreachable or the "
                "operator disabled the node ([healthcheck] disable_by_file_path). HEAD "
                "answers 204 when healthy.",
                "tags": ["health"],
                "security": [],
                "responses": {
                    "200": health_json,
                    "503": {
                        "description": "Unhealthy: the error envelope for JSON clients, one line "
                        "of text otherwise.",
                        "headers": {REQUEST_ID_HEADER: ref("headers", "RequestId")},
                        "content": {
                            "text/plain": {"schema": {"type": "string"}},
                            **json_content(ref("schemas", "Error")),
                        },
                    },
                },
            }
        },
    }


def build_document(routes: Iterable[Any], extensions: Iterable[Any] = ()) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the service whose ``/v1`` router has ``routes``
    (:class:`~myservice.wsgi.router.Route` rows) and the loaded ``extensions`` (records or
    objects; their optional ``openapi_paths()`` describe their routes).

    The ``/v1`` operations are exactly ``routes``: one per ``(method, path)``.  A route whose
    rule has no roles (:data:`myservice.wsgi.router.PUBLIC`) has ``security: []``.
    """
    fragments = _extension_fragments(extensions)
    paths: dict[str, Any] = _public_paths()
    used: set[tuple[str, str]] = set()
    for route in routes:
        method, path, controller, rule = route
        method = method.upper()
        key = (method, path)
        core = CORE_OPERATIONS.get(controller)
        if isinstance(getattr(controller, "__self__", None), OpenAPIDocument):
            operation = _document_operation()
        elif core is not None:
            operation = _core_operation(method, path, core, rule.name)
        elif key in fragments:
            given, alias = fragments[key]
            operation = _complete(method, path, given, rule.name, alias)
            used.add(key)
        else:
            operation = _generic_operation(method, path, rule.name, "extensions")
        if not rule.roles:
            operation["security"] = []
            for status in ("401", "403"):
                operation["responses"].pop(status, None)
        paths.setdefault(PREFIX + path, {})[method.lower()] = operation
    for key in sorted(set(fragments) - used):
        LOG.warning(
            "API extension %s describes %s %s%s, which is not a route; left out of %s%s",
            fragments[key][1],
            key[0],
            PREFIX,
            key[1],
            PREFIX,
            PATH,
        )
    return {
        "openapi": OPENAPI_VERSION,
        "jsonSchemaDialect": schemas.SCHEMA_DIALECT,
        "info": {
            "title": "myservice",
            "version": "1.0",
            "description": "An OpenStack-style API service. Every error is the envelope "
            "components/schemas/Error; every response carries X-OpenStack-Request-ID.",
        },
        "servers": [{"url": "/", "description": "this service"}],
        "security": [{"token": []}],
        "tags": [
            {"name": "versions"},
            {"name": "health"},
            {"name": "users"},
            {"name": "extensions"},
            {"name": "openapi"},
        ],
        "paths": paths,
        "components": _components(),
    }


def _document_operation() -> dict[str, Any]:
    return {
        "operationId": "showOpenAPI",
        "summary": "This document (unauthenticated)",
        "tags": ["openapi"],
        "responses": {
            "200": json_response("The OpenAPI 3.1 document.", ref("schemas", "OpenAPI")),
            **_errors((400, 406, 413, 500)),
        },
        "x-policy-rule": "public",
    }


class _Prepared(Reply):
    """A 200 whose JSON body is already encoded (ASCII-escaped JSON; the schemas' patterns
    are written with escapes, so the document is also valid I-JSON)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        super().__init__(200, None)
        self.data = data

    def send(self, environ: dict, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("Content-Type", JSON), ("Content-Length", str(len(self.data)))])
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [self.data]


class OpenAPIDocument:
    """The document of one application: :meth:`build` makes it once, at start-up, and the
    bound method :meth:`show` is the controller of ``GET /v1/openapi.json``."""

    def __init__(self) -> None:
        self.document: dict[str, Any] = {}
        self.data = b"{}"

    def build(self, routes: Iterable[Any], extensions: Iterable[Any] = ()) -> dict[str, Any]:
        """Build (or rebuild) the document and its encoded form; return the document."""
        self.document = build_document(routes, extensions)
        self.data = json.dumps(self.document, ensure_ascii=True).encode("ascii")
        return self.document

    def show(self, req: webob.Request, ctx: Any) -> Reply:
        """``GET /openapi.json``: the document built at start-up."""
        return _Prepared(self.data)
