"""The fast checks of the request schemas never accept what the reference validator rejects.

:func:`myservice.api.schemas.validate` accepts a body as soon as the compiled fast check
(``fastjsonschema``) does, without asking ``jsonschema``; that is only right if the fast check
is never more lenient.  Bodies are drawn near the schemas' edges (right and wrong types, lengths
0/1/255/256, control characters, trailing newlines, unknown and missing fields).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from myservice.api import schemas
from myservice.wsgi.faults import APIError

_CHARS = st.sampled_from(["a", "é", " ", "\n", "\t", "\x00", "\x7f", "@", ".", "x", "😀"])
_STRINGS = st.one_of(
    st.text(_CHARS, max_size=8),
    st.builds(lambda n, tail: "a" * n + tail, st.sampled_from([0, 1, 254, 255, 256, 1024, 1025]),
              st.sampled_from(["", "\n", "@b.c", "x@y.z\n"])),
    st.sampled_from(["a@b.c", "a@b.c\n", "a b@c.d", "@b.c", "a@b", "alice\n", "alice"]),
)  # fmt: skip
_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-2, 2), st.floats(allow_nan=False), _STRINGS,
    st.lists(st.integers(), max_size=2), st.dictionaries(st.sampled_from(["a"]), st.none()),
)  # fmt: skip
_FIELDS = st.dictionaries(
    st.sampled_from(["name", "email", "enabled", "description", "nmae", "id"]), _VALUES,
    max_size=5,
)  # fmt: skip
_BODIES = st.one_of(
    st.builds(lambda f: {"user": f}, _FIELDS),
    st.builds(lambda f, k, v: {"user": f, k: v}, _FIELDS, st.sampled_from(["x", "users"]), _VALUES),
    _VALUES,
    st.dictionaries(st.sampled_from(["user", "users"]), _VALUES, max_size=2),
)  # fmt: skip

_PAIRS = [
    (schemas.user_create, schemas.user_create_fast),
    (schemas.user_update, schemas.user_update_fast),
]


@pytest.mark.parametrize(("reference", "fast"), _PAIRS, ids=["create", "update"])
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=_BODIES)
def test_fast_check_is_never_more_lenient(reference, fast, body):
    if fast(body):
        assert reference.is_valid(body), body


@pytest.mark.parametrize(("reference", "fast"), _PAIRS, ids=["create", "update"])
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=_BODIES)
def test_validate_with_fast_check_answers_as_the_reference(reference, fast, body):
    def outcome(**kwargs):
        try:
            schemas.validate(reference, body, **kwargs)
        except APIError as err:
            return err.status, str(err)
        return None

    assert outcome(fast=fast) == outcome()


def test_fast_check_accepts_plain_valid_bodies():
    assert schemas.user_create_fast({"user": {"name": "alice", "email": "a@example.com"}})
    assert schemas.user_create_fast(
        {"user": {"name": "b", "email": None, "enabled": False, "description": None}}
    )
    assert schemas.user_update_fast({"user": {"enabled": True}})


def test_fast_check_rejects_what_the_reference_rejects_here():
    assert not schemas.user_create_fast({"user": {}})
    assert not schemas.user_create_fast({"user": {"name": ""}})
    assert not schemas.user_create_fast({"user": {"name": "a", "nmae": "b"}})
    assert not schemas.user_update_fast({"user": {}})
    assert not schemas.user_create_fast([])


@pytest.mark.parametrize(
    "user",
    [{"name": "alice\n"}, {"name": "a", "email": "a@b.c\n"}, {"name": "a", "description": "x\x00"}],
)
def test_a_trailing_newline_or_nul_is_refused_by_both_validators(user):
    # Forbidden characters are an unanchored "not pattern": no "$ matches before a final
    # newline" loophole in Python's re, which jsonschema uses.
    body = {"user": user}
    assert not schemas.user_create_fast(body)
    assert not schemas.user_create.is_valid(body)
    with pytest.raises(APIError) as caught:
        schemas.validate(schemas.user_create, body, schemas.user_create_fast)
    assert caught.value.status == 400
    assert "invalid value" in caught.value.detail


def test_a_newline_inside_a_description_is_fine():
    body = {"user": {"name": "a", "description": "line one\nline two\n"}}
    assert schemas.user_create_fast(body) and schemas.user_create.is_valid(body)


def test_forbidden_patterns_become_formats_with_the_same_rule():
    formats = {}
    compiled_schema = schemas._patterns_as_formats(schemas.USER_CREATE, formats)
    fields = compiled_schema["properties"]["user"]["properties"]
    assert all("not" not in field for field in fields.values())
    assert {fields[f]["format"] for f in ("name", "email", "description")} == set(formats)
    assert "format" not in fields["enabled"]
    no_control = formats[fields["name"]["format"]]
    assert no_control("alice") and no_control("é 😀")
    assert not no_control("a\nb") and not no_control("\x7f") and not no_control("\ud800")
    no_nul = formats[fields["description"]["format"]]
    assert no_nul("a\nb") and not no_nul("a\x00")
    assert schemas.USER_CREATE["properties"]["user"]["properties"]["name"]["not"]  # untouched
