"""Hypothesis strategies from the JSON Schemas of an OpenAPI 3.1 document (the subset the
service's schemas use: ``type`` (one or a list), ``const``, ``enum``, strings with
``minLength``/``maxLength``/``pattern``, integers with ``minimum``/``maximum``, arrays, objects
with ``properties``/``required``/``additionalProperties``/``propertyNames``/
``minProperties``/``maxProperties``, and ``$ref`` into the document).

A keyword outside that subset raises :class:`NotImplementedError`, so a schema the fuzzer
cannot honour is noticed instead of silently fuzzed with wrong data.
"""

from __future__ import annotations

import re
from typing import Any

from hypothesis import strategies as st

_KNOWN = {
    "type", "const", "enum", "minLength", "maxLength", "pattern", "minimum", "maximum",
    "items", "properties", "required", "additionalProperties", "propertyNames",
    "minProperties", "maxProperties", "description", "format", "$ref", "minItems", "not",
}  # fmt: skip

#: text without surrogates (they cannot be sent as UTF-8)
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
#: any JSON value, small
ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)


def resolve(doc: dict, node: dict) -> dict:
    """Follow ``$ref`` (``#/...`` pointers into ``doc``) until a schema without one."""
    while "$ref" in node:
        target: Any = doc
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def _forbidden(schema: dict) -> re.Pattern[str] | None:
    """The pattern of a ``"not": {"type": "string", "pattern": ...}`` (the only use of "not"
    the service's schemas make: characters a string must not contain)."""
    negated = schema.get("not")
    if negated is None:
        return None
    if set(negated) != {"type", "pattern"} or negated["type"] != "string":
        raise NotImplementedError(f"'not' other than a string pattern in {schema}")
    return re.compile(negated["pattern"])


def _string(schema: dict) -> st.SearchStrategy[str]:
    forbidden = _forbidden(schema)
    strings = _allowed_strings(schema)
    if forbidden is None:
        return strings
    return strings.filter(lambda s: not forbidden.search(s))


def _allowed_strings(schema: dict) -> st.SearchStrategy[str]:
    low = schema.get("minLength", 0)
    high = schema.get("maxLength", max(low, 40) + 10)
    pattern = schema.get("pattern")
    if pattern is None:
        return st.text(st.characters(exclude_categories=("Cs",)), min_size=low, max_size=high)
    compiled = re.compile(pattern)
    # Patterns of the form ^[^...]*$ are character classes: draw from the characters they
    # allow, sized by the length bounds, then keep what matches.
    plain = st.text(
        st.characters(exclude_categories=("Cs", "Cc")), min_size=low, max_size=min(high, 60)
    )
    regex = st.from_regex(compiled, fullmatch=True)
    return (plain | regex).filter(lambda s: low <= len(s) <= high and compiled.search(s))


def from_schema(doc: dict, schema: dict) -> st.SearchStrategy[Any]:
    """Values valid for ``schema`` (a schema of ``doc``)."""
    schema = resolve(doc, schema)
    unknown = set(schema) - _KNOWN
    if unknown:
        raise NotImplementedError(f"schema keywords {sorted(unknown)} in {schema}")
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    types = schema.get("type")
    if types is None:
        return ANY_JSON
    if isinstance(types, list):
        return st.one_of([from_schema(doc, {**schema, "type": t}) for t in types])
    if types == "null":
        return st.none()
    if types == "boolean":
        return st.booleans()
    if types == "integer":
        return st.integers(schema.get("minimum"), schema.get("maximum"))
    if types == "string":
        return _string(schema)
    if types == "array":
        return st.lists(
            from_schema(doc, schema.get("items", {})),
            min_size=schema.get("minItems", 0),
            max_size=4,
        )
    if types == "object":
        return _object(doc, schema)
    raise NotImplementedError(f"type {types!r}")


def _object(doc: dict, schema: dict) -> st.SearchStrategy[dict]:
    props = schema.get("properties", {})
    required = set(schema.get("required", ()))
    extra = schema.get("additionalProperties", True)
    low = schema.get("minProperties", 0)
    high = schema.get("maxProperties", 8)

    @st.composite
    def build(draw: Any) -> dict:
        out: dict = {}
        for name, sub in props.items():
            if name in required or draw(st.booleans()):
                out[name] = draw(from_schema(doc, sub))
        if extra is not False and not props:
            names = from_schema(doc, schema.get("propertyNames", {"type": "string"}))
            values = ANY_JSON if extra is True else from_schema(doc, extra)
            more = draw(
                st.dictionaries(
                    names, values, min_size=max(low - len(out), 0), max_size=max(high - len(out), 0)
                )
            )
            out.update(more)
        while len(out) < low and props:
            name = draw(st.sampled_from(sorted(props)))
            out[name] = draw(from_schema(doc, props[name]))
        return out

    return build()
