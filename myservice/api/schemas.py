"""JSON Schemas (Draft 2020-12) of the request bodies, and turning their errors into 400s.

Every object schema says ``additionalProperties: false``; every property has a
``description`` saying what is expected, which the 400 message repeats.  The validators are
compiled once at import.  :func:`validate` raises an :class:`~myservice.wsgi.faults.APIError`
whose ``detail`` names each offending field by its JSON pointer (``/user/email``), at most
:data:`MAX_PROBLEMS` of them.

Length before patterns.  A string longer than its schema's ``maxLength`` is refused for its
length without any regular expression running on it (:data:`Validator` for ``jsonschema``,
:func:`fast_check` for the fast check), so the cost of a pattern is bounded by ``maxLength``
whatever the body size; the patterns themselves are also written to run in linear time
(each repeated character class excludes the character that must follow it).  Patterns are
written with ASCII escapes (``\\x00``, ``\\ud800``), never literal control characters or
surrogates, so the OpenAPI document that embeds them is valid I-JSON (RFC 7493).

Two validators per schema.  ``jsonschema``'s :class:`Draft202012Validator` is the reference:
it decides what is valid and its errors make the 400 message.  It costs tens of µs per body,
so the core schemas also get a **fast check** (:func:`fast_check`, code generated once by
``fastjsonschema``, ≈ 3 µs): a body it accepts is accepted without asking ``jsonschema``;
a body it rejects is handed to ``jsonschema``, which builds the message -- or accepts it,
since ``jsonschema`` has the last word.  So a fast check may only be *stricter*, never more
lenient, than the reference (its patterns run through the same ``re.search`` as
``jsonschema``'s, see :func:`fast_check`); the test
``tests/api/test_schemas_fast.py`` checks that on generated bodies.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import fastjsonschema
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator as JSONSchemaValidator

from myservice.suggest import did_you_mean
from myservice.wsgi.faults import APIError

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

# Control characters break some backends (PostgreSQL rejects NUL) and lone surrogates cannot
# be encoded as UTF-8.  Forbidden characters are looked for with an unanchored search under
# "not", which means the same in every regex dialect: an anchored ``^[^...]*$`` would let
# Python's ``re`` (what jsonschema uses) accept a trailing newline, since its ``$`` also
# matches before a final newline.  ``type: string`` inside "not" keeps null valid.
# Raw strings: the patterns hold the escapes ``\x00`` and ``\ud800``, which Python's ``re``
# and ECMA-262 (with the ``u`` flag, as JSON Schema validators use it) read as the same code
# points, not the characters themselves (a lone surrogate is not valid I-JSON).
_CONTROL = r"[\x00-\x1f\x7f\ud800-\udfff]"
_NUL = r"[\x00\ud800-\udfff]"
NO_CONTROL = {"not": {"type": "string", "pattern": _CONTROL}}
NO_NUL = {"not": {"type": "string", "pattern": _NUL}}
# local part "@" dot-separated labels, none empty.  Linear: each repeated class excludes the
# character that ends it ("@", "."), so every character has exactly one place in a match.
_EMAIL_PATTERN = r"^[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+$"

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
#: ``str -> bool``: a custom ``format`` of a fast check
StringCheck = Callable[[str], bool]
#: ``str -> match or None``: a compiled pattern's ``search``
Search = Callable[[str], re.Match[str] | None]


@functools.cache
def _searcher(pattern: str) -> Search:
    """``re.compile(pattern).search``, compiled once per pattern: the one way both validators
    run a pattern (what ``jsonschema``'s own ``pattern`` keyword does, ``re.search``)."""
    return re.compile(pattern).search


def _length_limit(schema: Mapping[str, Any]) -> float:
    """``schema``'s ``maxLength``, or infinity when it has none."""
    limit = schema.get("maxLength")
    return limit if isinstance(limit, int) else float("inf")


def _too_long(instance: Any, schema: Mapping[str, Any]) -> bool:
    """Whether ``instance`` is a string longer than ``schema``'s ``maxLength``: ``schema``
    refuses it for its length whatever else it says, so its patterns are not run on it."""
    return isinstance(instance, str) and len(instance) > _length_limit(schema)


def _pattern(
    validator: Any, pattern: str, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    """The ``pattern`` keyword, as ``jsonschema``'s (``re.search``), except that it does not
    run on a string :func:`_too_long` for ``schema`` (``maxLength`` reports that one)."""
    if (
        validator.is_type(instance, "string")
        and not _too_long(instance, schema)
        and _searcher(pattern)(instance) is None
    ):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


_DRAFT_NOT = Draft202012Validator.VALIDATORS["not"]


def _not(
    validator: Any, not_schema: Any, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    """The ``not`` keyword, as ``jsonschema``'s, except that it does not run on a string
    :func:`_too_long` for ``schema`` (the forbidden characters of :data:`NO_CONTROL` and
    :data:`NO_NUL` are a pattern inside a ``not`` beside the ``maxLength``)."""
    if not _too_long(instance, schema):
        yield from _DRAFT_NOT(validator, not_schema, instance, schema)


#: :class:`Draft202012Validator` with ``maxLength`` checked before patterns: a string longer
#: than its ``maxLength`` gets only the length error (same validity: the length error alone
#: refuses it).  The validator class of every request schema, extensions' included.
Validator = validators.extend(Draft202012Validator, {"pattern": _pattern, "not": _not})


def _regex_rules(schema: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """``(found, forbidden)``: the pattern ``schema`` requires a string to match (its
    ``pattern``) and the one it forbids (a ``not: {type: string, pattern: P}``), or None."""
    found = schema.get("pattern")
    inner = schema.get("not")
    forbidden = (
        inner["pattern"]
        if isinstance(inner, dict)
        and set(inner) == {"type", "pattern"}
        and inner["type"] == "string"
        else None
    )
    return (found if isinstance(found, str) else None), forbidden


def _string_check(found: str | None, forbidden: str | None, limit: float) -> StringCheck:
    """``value -> bool``: True when ``re.search(found)`` finds something and
    ``re.search(forbidden)`` finds nothing (a None pattern is no rule) -- or, without running
    either, when ``value`` is longer than ``limit`` (``maxLength`` refuses it)."""
    must = _searcher(found) if found is not None else None
    must_not = _searcher(forbidden) if forbidden is not None else None

    def check(value: str) -> bool:
        if len(value) > limit:
            return True
        return (must is None or must(value) is not None) and (
            must_not is None or must_not(value) is None
        )

    return check


def _patterns_as_formats(schema: Any, formats: dict[str, StringCheck]) -> Any:
    """A copy of ``schema`` in which the regex rules of each schema (:func:`_regex_rules`) are
    one ``format``, a :func:`_string_check` registered in ``formats`` (see :func:`fast_check`);
    a schema that already has a ``format`` is copied as it is."""
    if isinstance(schema, list):
        return [_patterns_as_formats(item, formats) for item in schema]
    if not isinstance(schema, dict):
        return schema
    found, forbidden = (None, None) if "format" in schema else _regex_rules(schema)
    dropped = {"pattern"} if found is not None else set()
    dropped |= {"not"} if forbidden is not None else set()
    copy = {
        key: _patterns_as_formats(value, formats)
        for key, value in schema.items()
        if key not in dropped
    }
    if dropped:
        name = f"myservice-regex-{len(formats)}"
        formats[name] = _string_check(found, forbidden, _length_limit(schema))
        copy["format"] = name
    return copy


def fast_check(schema: dict[str, Any]) -> FastCheck:
    """A compiled ``body -> bool`` check of ``schema`` (``fastjsonschema``, no defaults filled
    in).  True means valid; False means "ask the reference validator" (see the module
    docstring).  Never raises for any decoded JSON value.

    The patterns of each schema -- its ``pattern`` and a ``{"not": {"type": "string",
    "pattern": P}}`` (:data:`NO_CONTROL`, :data:`NO_NUL`) -- are compiled as one ``format``
    (:func:`_string_check`) applying the same rules with ``re.search``, as ``jsonschema``
    does, and running no pattern on a string longer than ``maxLength``, which
    ``fastjsonschema`` refuses for its length anyway.  Not ``not``, because ``fastjsonschema``
    compiles it as "run the inner schema and expect it to fail", which raises and catches an
    exception (carrying the whole schema) for every *valid* string: 6.3 -> 3.0 us per
    ``POST /v1/users`` body."""
    formats: dict[str, StringCheck] = {}
    compiled = fastjsonschema.compile(
        _patterns_as_formats(schema, formats),
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


Validator.check_schema(USER_CREATE)
Validator.check_schema(USER_UPDATE)
user_create = Validator(USER_CREATE)
user_update = Validator(USER_UPDATE)
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


#: a 400 detail names at most this many problems, then says how many more there are
MAX_PROBLEMS = 10


def _unknown_keys(error: ValidationError) -> list[str]:
    """The keys an ``additionalProperties`` error is about, sorted."""
    known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
    return sorted(key for key in error.instance if key not in known)


def _missing_keys(error: ValidationError) -> list[str]:
    """The keys a ``required`` error is about, in the schema's order."""
    return [key for key in error.validator_value if key not in error.instance]


def problem_count(error: ValidationError) -> int:
    """How many sentences :func:`describe` gives for ``error``, without building them."""
    if error.validator == "additionalProperties":
        return len(_unknown_keys(error))
    if error.validator == "required":
        return len(_missing_keys(error))
    return 1


def describe(error: ValidationError) -> Iterator[str]:
    """Human sentences for one validation error, each starting with the field's pointer
    (:func:`problem_count` of them).  Built as they are consumed: the sentences of a body
    with thousands of unknown fields cost only as many "did you mean"s as are shown."""
    ptr = pointer(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    instance = error.instance
    kind = error.validator
    if kind == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        for key in _unknown_keys(error):
            hint = did_you_mean(key, allowed)
            yield (
                f"{pointer([*error.absolute_path, key])}: unknown field{hint} "
                f"(allowed: {', '.join(allowed)})"
            )
    elif kind == "required":
        props = schema.get("properties", {})
        for key in _missing_keys(error):
            yield (
                f"{pointer([*error.absolute_path, key])}: required field is missing"
                + _expected(props.get(key, {}))
            )
    elif kind == "type":
        yield f"{_where(ptr)}: got {json_type(instance)}{_expected(schema)}"
    elif kind in ("minLength", "maxLength"):
        yield f"{_where(ptr)}: got {len(instance)} characters{_expected(schema)}"
    elif kind in ("pattern", "not"):
        yield f"{_where(ptr)}: invalid value{_expected(schema)}"
    elif kind == "minProperties":
        yield f"{_where(ptr)}: no field given{_expected(schema)}"
    else:
        message = error.message if len(error.message) <= 200 else error.message[:200] + "..."
        yield f"{_where(ptr)}: {message}"


def detail(errors: list[ValidationError]) -> str:
    """The 400 detail of ``errors``: ``Invalid request body: `` and their sentences in the
    order of their fields' pointers, separated by ``; ``, at most :data:`MAX_PROBLEMS` of
    them, the rest counted (``...; ... and 4990 more.``)."""
    ordered = sorted(errors, key=lambda e: pointer(e.absolute_path))
    sentences = itertools.chain.from_iterable(describe(error) for error in ordered)
    shown = list(itertools.islice(sentences, MAX_PROBLEMS))
    more = sum(problem_count(error) for error in ordered) - len(shown)
    tail = f"; ... and {more} more" if more > 0 else ""
    return "Invalid request body: " + "; ".join(shown) + tail + "."


def validate(validator: JSONSchemaValidator, body: Any, fast: FastCheck | None = None) -> None:
    """Raise a 400 :class:`APIError` listing the problems of ``body``, field by field (see
    :func:`detail`).  ``validator`` should be a :data:`Validator` (length before patterns).

    ``fast``: an optional :func:`fast_check` of the same schema; when it accepts ``body``,
    ``validator`` is not run (it must never accept what ``validator`` rejects)."""
    if fast is not None and fast(body):
        return
    errors = list(validator.iter_errors(body))
    if errors:
        raise APIError(400, detail(errors))
