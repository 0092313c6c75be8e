"""Helpers shared by controllers: reading JSON bodies, query parameters, timestamps, hooks."""

from __future__ import annotations

import io
import json
import logging
import sys
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


class _LongInteger:
    """Stands, in a document decoded by :data:`_MARKING_DECODER`, for an integer with more
    digits than ``int()`` converts (``sys.get_int_max_str_digits()``)."""

    __slots__ = ("digits",)

    def __init__(self, digits: int) -> None:
        self.digits = digits


def _int_or_marker(literal: str) -> int | _LongInteger:
    """``parse_int`` of :data:`_MARKING_DECODER`: ``int(literal)``, or a :class:`_LongInteger`
    when ``literal`` (a JSON integer: optional ``-``, no leading zeros) has more digits than
    ``int()`` accepts."""
    digits = len(literal) - literal.startswith("-")
    limit = sys.get_int_max_str_digits()
    if limit and digits > limit:
        return _LongInteger(digits)
    return int(literal)


#: :data:`_DECODER` marking over-long integers instead of failing on them; used only to
#: explain a failure of :data:`_DECODER` (a ``parse_int`` costs a Python call per integer)
_MARKING_DECODER = json.JSONDecoder(
    parse_constant=_reject_constant, object_pairs_hook=_unique_keys, parse_int=_int_or_marker
)

#: the header listing the media types a method accepts in bodies (RFC 5789 section 2.2 for
#: ``Accept-Patch``; ``Accept-Post`` is its counterpart for POST)
_ACCEPT_BY_METHOD = {"PATCH": "Accept-Patch", "POST": "Accept-Post"}

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
    repeated in one object included), an integer with more digits than Python converts
    (``sys.get_int_max_str_digits()``, 4300 by default; named by its JSON pointer), nesting
    deeper than :data:`MAX_DEPTH` or a schema violation; 415 when ``Content-Type`` is not
    ``application/json`` (a ``charset`` parameter, if any, must be UTF-8; with
    ``Accept-Post``/``Accept-Patch: application/json`` for POST/PATCH) or when the body has a
    ``Content-Encoding`` other than ``identity`` (with ``Accept-Encoding: identity``).
    """
    raw = _read_body(req)
    if not raw:
        raise APIError(400, f"A JSON request body is required (Content-Type: {JSON}).")
    environ = req.environ
    _check_content_type(environ)
    _check_content_encoding(environ)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise APIError(400, f"The request body is not valid UTF-8 (byte {exc.start}).") from None
    body = _decode(text)
    # each level of nesting opens a bracket: fewer brackets than the limit cannot exceed it
    if text.count("{") + text.count("[") > MAX_DEPTH and _depth_exceeds(body, MAX_DEPTH):
        raise APIError(400, f"The request body is nested more than {MAX_DEPTH} levels deep.")
    schemas.validate(validator, body, fast)
    return body


def _check_content_type(environ: dict) -> None:
    """415 unless ``Content-Type`` is ``application/json``, with a UTF-8 ``charset`` if any;
    for POST and PATCH the answer names what is accepted (``Accept-Post``/``Accept-Patch``)."""
    ctype = environ.get("CONTENT_TYPE", "")
    media, _, params = ctype.partition(";")
    if media.strip().lower() != JSON:
        shown = repr(ctype) if ctype else "none"
        raise _unsupported_type(
            environ, f"Request bodies must be {JSON}; got Content-Type {shown}."
        )
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip().strip('"').lower() not in (
            "utf-8",
            "utf8",
        ):
            raise _unsupported_type(environ, f"JSON bodies must be UTF-8; got {ctype!r}.")


def _unsupported_type(environ: dict, detail: str) -> APIError:
    """The 415 for a body of a media type other than JSON, with ``Accept-Post`` or
    ``Accept-Patch: application/json`` when the method is POST or PATCH."""
    header = _ACCEPT_BY_METHOD.get(environ.get("REQUEST_METHOD", ""))
    return APIError(415, detail, headers=[(header, JSON)] if header else ())


def _check_content_encoding(environ: dict) -> None:
    """415 with ``Accept-Encoding: identity`` (RFC 9110 section 15.5.16) unless the body is
    not encoded: no ``Content-Encoding``, an empty one, or only ``identity`` (any case)."""
    value = environ.get("HTTP_CONTENT_ENCODING", "")
    codings = [c.strip().lower() for c in value.split(",") if c.strip()]
    if any(coding != "identity" for coding in codings):
        raise APIError(
            415,
            f"Request bodies must not be encoded; got Content-Encoding {value.strip()!r} "
            "(only identity is accepted).",
            headers=[("Accept-Encoding", "identity")],
        )


def _decode(text: str, decoder: json.JSONDecoder = _DECODER) -> Any:
    """``text`` decoded by ``decoder``; 400 for invalid JSON, nesting too deep for the
    parser, or (explained by a second pass with :data:`_MARKING_DECODER`) an integer too long
    to convert."""
    try:
        if text.startswith("\ufeff"):  # as json.loads() says it (decode() does not check)
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        return decoder.decode(text)
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
    except ValueError as exc:  # NaN, a repeated key (our hooks) or int()'s digit limit
        detail = f"The request body is not valid JSON: {exc}."
    if decoder is _DECODER:  # the digit limit is no JSON error: find the integer, if so
        _refuse_long_integer(_decode(text, _MARKING_DECODER))
    raise APIError(400, detail)


def _refuse_long_integer(body: Any) -> None:
    """400 naming, by its JSON pointer, the first :class:`_LongInteger` of ``body`` in
    document order; nothing when there is none."""
    # (node, path): a path is None (the top) or (key, the parent's path), never copied
    stack: list[tuple[Any, Any]] = [(body, None)]
    while stack:
        node, path = stack.pop()
        if isinstance(node, _LongInteger):
            raise APIError(
                400,
                f"The request body {_long_integer_place(path)}: {node.digits} digits, "
                f"at most {sys.get_int_max_str_digits()} are accepted.",
            )
        if isinstance(node, dict):
            stack.extend((node[key], (key, path)) for key in reversed(node))
        elif isinstance(node, list):
            stack.extend((node[i], (i, path)) for i in reversed(range(len(node))))


def _long_integer_place(path: Any) -> str:
    """Where the too long integer at ``path`` (see :func:`_refuse_long_integer`) is, to
    follow "The request body"."""
    if path is None:
        return "is an integer with too many digits"
    keys: list[Any] = []
    while path is not None:
        key, path = path
        keys.append(key)
    return f"has an integer with too many digits at {schemas.pointer(reversed(keys))}"


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
    (larger values, however many digits they have, are reduced to it); 400 naming ``limit``
    unless ASCII digits (surrounding whitespace aside) of a value of 1 or more."""
    if raw is None:
        return min(default, maximum)
    digits = raw.strip()
    if digits.isascii() and digits.isdigit():
        digits = digits.lstrip("0")
        if digits:
            # more digits than the maximum has: larger, whatever they are (no int() of them)
            return maximum if len(digits) > len(str(maximum)) else min(int(digits), maximum)
    raise APIError(
        400,
        f"Query parameter 'limit' must be a positive integer (values above {maximum} are "
        f"reduced to {maximum}); got {raw!r}.",
    )


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
