"""JSON Schemas (Draft 2020-12) of the request bodies, and turning their errors into 400s.

Every object schema says ``additionalProperties: false``; every property has a
``description`` saying what is expected, which the 400 message repeats.  The validators are
compiled once at import.  :func:`validate` raises an :class:`~myservice.wsgi.faults.APIError`
whose ``detail`` names each offending field by its JSON pointer (``/user/email``).

Two validators per schema.  ``jsonschema``'s :class:`Draft202012Validator` is the reference:
it decides what is valid and its errors make the 400 message.  It costs tens of µs per body,
so the core schemas also get a **fast check** (:func:`fast_check`, code generated once by
``fastjsonschema``, ≈ 3 µs): a body it accepts is accepted without asking ``jsonschema``;
a body it rejects is handed to ``jsonschema``, which builds the message -- or accepts it,
since ``jsonschema`` has the last word (e.g. ``fastjsonschema`` reads ``$`` in a pattern as
the very end of the string, ``jsonschema``/``re.search`` also before a final newline).  So a
fast check may only be *stricter*, never more lenient, than the reference; the test
``tests/api/test_schemas_fast.py`` checks that on generated bodies.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import fastjsonschema
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from myservice.suggest import did_you_mean
from myservice.wsgi.faults import APIError

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

# Control characters break some backends (PostgreSQL rejects NUL) and lone surrogates cannot
# be encoded as UTF-8.  Forbidden characters are looked for with an unanchored search under
# "not", which means the same in every regex dialect: an anchored ``^[^...]*$`` would let
# Python's ``re`` (what jsonschema uses) accept a trailing newline, since its ``$`` also
# matches before a final newline.  ``type: string`` inside "not" keeps null valid.
_CONTROL = "[\x00-\x1f\x7f\ud800-\udfff]"
_NUL = "[\x00\ud800-\udfff]"
NO_CONTROL = {"not": {"type": "string", "pattern": _CONTROL}}
NO_NUL = {"not": {"type": "string", "pattern": _NUL}}
_EMAIL_PATTERN = "^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$"

NAME = {
    "type": "string",
    "minLength": 1,
    "maxLength": 255,
    **NO_CONTROL,
    "description": "a string of 1 to 255 characters without control characters, unique among users",
}
EMAIL = {
    "type": ["string", "null"],
    "maxLength": 255,
    "pattern": _EMAIL_PATTERN,
    **NO_CONTROL,
    "description": "an email address like name@example.com (up to 255 characters) or null",
}
ENABLED = {"type": "boolean", "description": "true or false"}
DESCRIPTION = {
    "type": ["string", "null"],
    "maxLength": 1024,
    **NO_NUL,
    "description": "a string of up to 1024 characters (no NUL character) or null",
}

USER_FIELDS = {"name": NAME, "email": EMAIL, "enabled": ENABLED, "description": DESCRIPTION}


def _envelope(key: str, inner: dict[str, Any]) -> dict[str, Any]:
    return {
        "$schema": SCHEMA_DIALECT,
        "type": "object",
        "properties": {key: inner},
        "required": [key],
        "additionalProperties": False,
        "description": f'an object {{"{key}": {{...}}}}',
    }


#: ``POST /v1/users``
USER_CREATE = _envelope(
    "user",
    {
        "type": "object",
        "properties": USER_FIELDS,
        "required": ["name"],
        "additionalProperties": False,
        "description": "the new user: name (required), email, enabled, description",
    },
)

#: ``PATCH /v1/users/{id}``: only the fields to change
USER_UPDATE = _envelope(
    "user",
    {
        "type": "object",
        "properties": USER_FIELDS,
        "minProperties": 1,
        "additionalProperties": False,
        "description": "the fields to change: any of name, email, enabled, description",
    },
)

#: ``body -> bool``: True only for bodies the reference validator accepts too
FastCheck = Callable[[Any], bool]


def _forbidden_patterns_as_formats(schema: Any, formats: dict[str, Callable[[str], bool]]) -> Any:
    """A copy of ``schema`` in which each ``not: {type: string, pattern: P}`` is a ``format``
    named for ``P``, registered in ``formats`` (see :func:`fast_check`)."""
    if isinstance(schema, list):
        return [_forbidden_patterns_as_formats(item, formats) for item in schema]
    if not isinstance(schema, dict):
        return schema
    copy = {key: _forbidden_patterns_as_formats(value, formats) for key, value in schema.items()}
    inner = schema.get("not")
    if (
        isinstance(inner, dict)
        and set(inner) == {"type", "pattern"}
        and inner["type"] == "string"
        and "format" not in schema
    ):
        name = f"myservice-forbid-{len(formats)}"
        search = re.compile(inner["pattern"]).search
        formats[name] = lambda value, search=search: search(value) is None
        del copy["not"]
        copy["format"] = name
    return copy


def fast_check(schema: dict[str, Any]) -> FastCheck:
    """A compiled ``body -> bool`` check of ``schema`` (``fastjsonschema``, no defaults filled
    in).  True means valid; False means "ask the reference validator" (see the module
    docstring).  Never raises for any decoded JSON value.

    Each ``{"not": {"type": "string", "pattern": P}}`` (:data:`NO_CONTROL`, :data:`NO_NUL`) is
    compiled as a ``format`` whose check is "not a string, or ``re.search(P)`` finds
    nothing" -- the same rule -- because ``fastjsonschema`` compiles ``not`` as "run the inner
    schema and expect it to fail", which raises and catches an exception (carrying the whole
    schema) for every *valid* string: 6.3 -> 3.0 us per ``POST /v1/users`` body."""
    formats: dict[str, Callable[[str], bool]] = {}
    compiled = fastjsonschema.compile(
        _forbidden_patterns_as_formats(schema, formats),
        formats=formats,
        use_default=False,
        use_formats=True,
    )
    failed = fastjsonschema.JsonSchemaException

    def check(body: Any) -> bool:
        try:
            compiled(body)
        except failed:
            return False
        return True

    return check


Draft202012Validator.check_schema(USER_CREATE)
Draft202012Validator.check_schema(USER_UPDATE)
user_create = Draft202012Validator(USER_CREATE)
user_update = Draft202012Validator(USER_UPDATE)
#: the fast checks of :data:`USER_CREATE` / :data:`USER_UPDATE`
user_create_fast = fast_check(USER_CREATE)
user_update_fast = fast_check(USER_UPDATE)


_JSON_TYPES = (
    (bool, "boolean"),
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    (list, "array"),
    (dict, "object"),
    (type(None), "null"),
)


def json_type(value: Any) -> str:
    """The JSON type name of a decoded JSON value."""
    for cls, name in _JSON_TYPES:
        if isinstance(value, cls):
            return name
    return type(value).__name__


def pointer(path: Any) -> str:
    """RFC 6901 JSON pointer of a jsonschema error path (``""`` is the whole document)."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def _where(ptr: str) -> str:
    return ptr or "the body"


def _expected(schema: dict[str, Any]) -> str:
    description = schema.get("description")
    return f"; expected {description}" if description else ""


def describe(error: ValidationError) -> list[str]:
    """Human sentences for one validation error, each starting with the field's pointer."""
    ptr = pointer(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    instance = error.instance
    kind = error.validator
    if kind == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        extra = sorted(k for k in instance if k not in schema.get("properties", {}))
        out = []
        for key in extra:
            hint = did_you_mean(key, allowed)
            out.append(
                f"{pointer([*error.absolute_path, key])}: unknown field{hint} "
                f"(allowed: {', '.join(allowed)})"
            )
        return out
    if kind == "required":
        missing = [k for k in error.validator_value if k not in instance]
        props = schema.get("properties", {})
        return [
            f"{pointer([*error.absolute_path, key])}: required field is missing"
            + _expected(props.get(key, {}))
            for key in missing
        ]
    if kind == "type":
        return [f"{_where(ptr)}: got {json_type(instance)}{_expected(schema)}"]
    if kind in ("minLength", "maxLength"):
        return [f"{_where(ptr)}: got {len(instance)} characters{_expected(schema)}"]
    if kind in ("pattern", "not"):
        return [f"{_where(ptr)}: invalid value{_expected(schema)}"]
    if kind == "minProperties":
        return [f"{_where(ptr)}: no field given{_expected(schema)}"]
    message = error.message if len(error.message) <= 200 else error.message[:200] + "..."
    return [f"{_where(ptr)}: {message}"]


def validate(validator: Draft202012Validator, body: Any, fast: FastCheck | None = None) -> None:
    """Raise a 400 :class:`APIError` listing every problem of ``body``, field by field.

    ``fast``: an optional :func:`fast_check` of the same schema; when it accepts ``body``,
    ``validator`` is not run (it must never accept what ``validator`` rejects)."""
    if fast is not None and fast(body):
        return
    errors = list(validator.iter_errors(body))
    if not errors:
        return
    sentences: list[str] = []
    for error in sorted(errors, key=lambda e: pointer(e.absolute_path)):
        sentences.extend(describe(error))
    raise APIError(400, "Invalid request body: " + "; ".join(sentences) + ".")
