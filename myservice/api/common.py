"""Helpers shared by controllers: reading JSON bodies, query parameters, timestamps, hooks."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import webob
from jsonschema import Draft202012Validator
from webob.request import DisconnectionError

from myservice.api import policy, schemas
from myservice.suggest import did_you_mean
from myservice.wsgi.faults import REQUEST_ID_KEY, APIError
from myservice.wsgi.reply import JSON

LOG = logging.getLogger(__name__)

#: JSON documents nested deeper than this are refused (400) before validation
MAX_DEPTH = 32


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` refusing an object that names a key twice (which of the two
    values counts is ambiguous between parsers)."""
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        duplicate = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise ValueError(f"the key {duplicate!r} appears twice in one object")
    return out


#: built once: ``json.loads(text, **options)`` would build a new decoder per call
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, object_pairs_hook=_unique_keys)

#: bodies up to this size are read directly (larger ones through WebOb, which may spool them)
_DIRECT_READ = 65536


def _read_body(req: webob.Request) -> bytes:
    """``req.body``, without WebOb's generic copy for the common case (a ``Content-Length`` of
    at most :data:`_DIRECT_READ` bytes, body not read yet): read it once and leave a seekable
    copy in ``wsgi.input`` for anyone reading it again, as ``req.body`` does.  A client that
    sends fewer bytes than announced raises WebOb's ``DisconnectionError``, as ``req.body``."""
    environ = req.environ
    length = environ.get("CONTENT_LENGTH")
    if (
        not length
        or environ.get("webob.is_body_seekable")
        or not (length.isdigit() and length.isascii())
        or len(length) > 5
        or int(length) > _DIRECT_READ
    ):
        return req.body
    size = int(length)
    if size == 0:
        return b""
    data = environ["wsgi.input"].read(size)
    if len(data) < size:
        raise DisconnectionError(
            f"The client disconnected while sending the body ({size - len(data)} more bytes "
            "were expected)"
        )
    environ["wsgi.input"] = io.BytesIO(data)
    environ["webob.is_body_seekable"] = True
    return data


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether ``value`` nests containers more than ``limit`` levels deep (iterative)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Iterable[Any] = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def read_json(
    req: webob.Request, validator: Draft202012Validator, fast: schemas.FastCheck | None = None
) -> Any:
    """The request body decoded as UTF-8 JSON and validated by ``validator`` (``fast``: an
    optional :func:`myservice.api.schemas.fast_check` of the same schema, tried first; see
    :func:`myservice.api.schemas.validate`).

    400 for a missing body, invalid UTF-8, invalid JSON (``NaN``/``Infinity`` and a key
    repeated in one object included), nesting deeper than
    :data:`MAX_DEPTH` or a schema violation; 415 when ``Content-Type`` is not
    ``application/json`` (a ``charset`` parameter, if any, must be UTF-8).
    """
    raw = _read_body(req)
    if not raw:
        raise APIError(400, f"A JSON request body is required (Content-Type: {JSON}).")
    ctype = req.environ.get("CONTENT_TYPE", "")
    media, _, params = ctype.partition(";")
    if media.strip().lower() != JSON:
        shown = repr(ctype) if ctype else "none"
        raise APIError(415, f"Request bodies must be {JSON}; got Content-Type {shown}.")
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip().strip('"').lower() not in (
            "utf-8",
            "utf8",
        ):
            raise APIError(415, f"JSON bodies must be UTF-8; got {ctype!r}.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise APIError(400, f"The request body is not valid UTF-8 (byte {exc.start}).") from None
    try:
        if text.startswith("\ufeff"):  # as json.loads() says it (decode() does not check)
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        body = _DECODER.decode(text)
    except RecursionError:
        raise APIError(
            400, f"The request body is nested more than {MAX_DEPTH} levels deep."
        ) from None
    except json.JSONDecodeError as exc:
        raise APIError(
            400,
            f"The request body is not valid JSON: {exc.msg} "
            f"(line {exc.lineno}, column {exc.colno}).",
        ) from None
    except ValueError as exc:
        raise APIError(400, f"The request body is not valid JSON: {exc}.") from None
    # each level of nesting opens a bracket: fewer brackets than the limit cannot exceed it
    if text.count("{") + text.count("[") > MAX_DEPTH and _depth_exceeds(body, MAX_DEPTH):
        raise APIError(400, f"The request body is nested more than {MAX_DEPTH} levels deep.")
    schemas.validate(validator, body, fast)
    return body


def single_params(req: webob.Request, allowed: Iterable[str]) -> dict[str, str]:
    """The query parameters as a dict; 400 for an unknown or repeated parameter."""
    allowed = tuple(allowed)
    out: dict[str, str] = {}
    try:
        items = list(req.GET.items())
    except UnicodeDecodeError:
        raise APIError(400, "The query string is not valid UTF-8 once percent-decoded.") from None
    for key, value in items:
        if key not in allowed:
            raise APIError(
                400,
                f"Unknown query parameter {key!r}{did_you_mean(key, allowed)} "
                f"(allowed: {', '.join(allowed)}).",
            )
        if key in out:
            raise APIError(400, f"Query parameter {key!r} is given more than once.")
        out[key] = value
    return out


def parse_limit(raw: str | None, default: int, maximum: int) -> int:
    """The page size from ``?limit=``: ``default`` when absent, at most ``maximum``
    (larger values are reduced to it); 400 naming ``limit`` unless a positive integer."""
    if raw is None:
        return min(default, maximum)
    text = raw.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 12 or int(text) < 1:
        raise APIError(
            400,
            f"Query parameter 'limit' must be a positive integer (values above {maximum} are "
            f"reduced to {maximum}); got {raw!r}.",
        )
    return min(int(text), maximum)


def timestamp(value: Any) -> Any:
    """ISO 8601 UTC with ``Z`` for a ``datetime`` (naive ones are taken as UTC), with
    microseconds: ``2024-05-01T12:00:00.000000Z``."""
    if isinstance(value, datetime):
        tz = value.tzinfo
        if tz is None or tz is UTC:
            # already UTC: isoformat() is "YYYY-MM-DDTHH:MM:SS.ffffff" (+ "+00:00"); no
            # conversion needed (a third of the cost of the general path below)
            return value.isoformat(timespec="microseconds")[:26] + "Z"
        text = value.astimezone(UTC).isoformat(timespec="microseconds")
        return text.replace("+00:00", "Z")
    return value


def fire(req: webob.Request, hooks: Any, event: str, resource: Mapping[str, Any]) -> None:
    """Fire ``event`` with the request's id, user and project; a failing dispatcher is
    logged, never turned into an error (the change is already committed)."""
    environ = req.environ
    try:
        hooks.fire(
            event,
            resource,
            request_id=environ.get(REQUEST_ID_KEY),
            user_id=environ.get(policy.USER_ID),
            project_id=environ.get(policy.PROJECT_ID),
        )
    except Exception:
        LOG.exception("event hooks of %s failed", event)
