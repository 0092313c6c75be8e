"""Limits of request validation (:mod:`myservice.api.schemas`) against hostile bodies.

* Patterns run in linear time: each one is checked *structurally* (no repeated part can
  also match what may follow it, and an unanchored pattern repeats nothing), the property
  that keeps a backtracking engine such as Python's ``re`` from retrying splits of the same
  characters.  The check is shown to catch the former, quadratic email pattern.
* No pattern runs on a string longer than its ``maxLength``, in either validator: every
  pattern search goes through ``schemas._searcher``, which a spy records (with a positive
  control showing the spy sees the searches it should).
* Patterns are ASCII escapes: the OpenAPI document is valid I-JSON, and the characters
  refused are exactly those of the former literal patterns.
* A 400 detail names at most ``MAX_PROBLEMS`` problems and counts the rest.

No test measures time.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from re import _constants as sre  # the parser's node types (CPython 3.11+)
from re import _parser
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from myservice.api import schemas
from myservice.wsgi.faults import APIError
from tests.api.conftest import ADMIN, READER, envelope_of

#: the patterns before the fix: quadratic email, literal control characters and surrogates
OLD_EMAIL = "^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$"
OLD_CONTROL = "[\x00-\x1f\x7f\ud800-\udfff]"
OLD_NUL = "[\x00\ud800-\udfff]"

#: the value that held the GIL for ~69 s with the old pattern (110,003 characters)
HOSTILE_EMAIL = "a@" + "." * 110_000 + "@"

NAME_EXPECTED = (
    "expected a string of 1 to 255 characters without control characters, unique among users"
)
EMAIL_EXPECTED = "expected an email address like name@example.com (up to 255 characters) or null"
DESCRIPTION_EXPECTED = "expected a string of up to 1024 characters (no NUL character) or null"
ALLOWED = "(allowed: description, email, enabled, name)"


def problems(body: Any, fast: schemas.FastCheck | None = None) -> str:
    """The 400 detail :func:`schemas.validate` gives for a ``POST /v1/users`` ``body``."""
    with pytest.raises(APIError) as caught:
        schemas.validate(schemas.user_create, body, fast)
    assert caught.value.status == 400
    return caught.value.detail


# -- linear patterns ---------------------------------------------------------------------------

#: the characters the structural check considers (every code point a pattern here names,
#: whitespace of all kinds, surrogates, an astral one)
_UNIVERSE = [chr(c) for c in range(0x3100)] + ["\ud800", "\udfff", "\ue000", "\ufeff", "😀"]
_END = "<end of string>"
_REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT)
_ONE_CHAR = (sre.LITERAL, sre.NOT_LITERAL, sre.IN, sre.ANY)


def _chars(node: tuple[Any, Any]) -> frozenset[str]:
    """The characters of :data:`_UNIVERSE` a one-character node matches (asked of ``re``)."""
    state = _parser.State()
    single = re._compiler.compile(_parser.SubPattern(state, [node]), 0)
    return frozenset(ch for ch in _UNIVERSE if single.fullmatch(ch))


def _first(items: list[Any]) -> tuple[frozenset[str], bool]:
    """``(characters a match of the node sequence can start with, whether it can be empty)``;
    ``$`` counts as "\\n or the end" (Python's ``$`` also matches before a final newline)."""
    first: frozenset[str] = frozenset()
    for op, av in items:
        if op in _ONE_CHAR:
            return first | _chars((op, av)), False
        if op in _REPEATS:
            chars, empty = _first(list(av[2]))
            first, nullable = first | chars, empty or av[0] == 0
        elif op is sre.SUBPATTERN:
            chars, nullable = _first(list(av[3]))
            first |= chars
        elif op is sre.AT and av in (sre.AT_BEGINNING, sre.AT_BEGINNING_STRING):
            nullable = True
        elif op is sre.AT and av in (sre.AT_END, sre.AT_END_STRING):
            first |= {_END, "\n"} if av is sre.AT_END else {_END}
            nullable = True
        else:
            raise NotImplementedError(f"the linearity check does not know {op} yet")
        if not nullable:
            return first, False
    return first, True


def _ambiguities(items: list[Any], follow: frozenset[str]) -> Iterator[str]:
    """Each repeat in ``items`` that can match a character which may also follow it: where a
    backtracking engine has a choice to retry (``follow``: what may follow ``items``)."""
    for index, (op, av) in enumerate(items):
        rest, rest_empty = _first(items[index + 1 :])
        after = rest | follow if rest_empty else rest
        if op in _REPEATS:
            low, high, body = av
            body_first, _ = _first(list(body))
            if low != high and body_first & after:
                yield f"{op} {low}..{high} overlaps {sorted(body_first & after)[:5]}"
            yield from _ambiguities(list(body), body_first | after)
        elif op is sre.SUBPATTERN:
            yield from _ambiguities(list(av[3]), after)


def linearity_problems(pattern: str) -> list[str]:
    """Why ``re.search(pattern, s)`` might take more than linear time, or ``[]``: a repeat
    that may also match what follows it, or a repeat in an unanchored pattern (searched
    from every position)."""
    items = list(_parser.parse(pattern))
    found = list(_ambiguities(items, frozenset({_END})))
    anchored = items[:1] == [(sre.AT, sre.AT_BEGINNING)]
    if not anchored and _has_repeat(items):
        found.append("a repeat in an unanchored pattern")
    return found


def _has_repeat(items: list[Any]) -> bool:
    """Whether a parsed pattern repeats anything a variable number of times."""
    for op, av in items:
        if op in _REPEATS and (av[0] != av[1] or _has_repeat(list(av[2]))):
            return True
        if op is sre.SUBPATTERN and _has_repeat(list(av[3])):
            return True
    return False


def test_the_linearity_check_catches_backtracking_patterns():
    assert linearity_problems(OLD_EMAIL)  # the quadratic one this fix replaces
    assert linearity_problems(r"^(a+)+$")
    assert linearity_problems(r"^a*a*$")
    assert linearity_problems(r"[a-z]+@")  # unanchored: tried from every position
    assert linearity_problems(r"^a+a$") and not linearity_problems(r"^a+b$")


@pytest.mark.parametrize("name", ["_EMAIL_PATTERN", "_CONTROL", "_NUL"])
def test_the_schema_patterns_run_in_linear_time(name):
    assert linearity_problems(getattr(schemas, name)) == []


def _patterns(document: Any) -> Iterator[str]:
    """Every ``pattern`` string of a JSON document."""
    if isinstance(document, dict):
        for key, value in document.items():
            if key == "pattern" and isinstance(value, str):
                yield value
            else:
                yield from _patterns(value)
    elif isinstance(document, list):
        for item in document:
            yield from _patterns(item)


def test_every_pattern_of_the_served_document_runs_in_linear_time(api):
    document = api.get("/v1/openapi.json", headers=READER).json
    found = set(_patterns(document))
    assert {schemas._EMAIL_PATTERN, schemas._CONTROL, schemas._NUL} <= found
    assert {pattern: linearity_problems(pattern) for pattern in found} == dict.fromkeys(found, [])


# -- the email pattern: what it accepts ----------------------------------------------------


@pytest.mark.parametrize(
    "email",
    [
        "a@b.c",
        "a.b@c.d.e",
        "alice@example.com",
        "first.last+tag@sub.example.co.uk",
        "x_y-z@host-name.io",
        "a!#$%&'*+/=?^_`{|}~-@x.y",
        "用户@例子.广告",
        ".a.@b.c",  # the local part is as free as before
    ],
)
def test_realistic_addresses_are_accepted_as_before(email):
    assert re.search(schemas._EMAIL_PATTERN, email)
    assert re.search(OLD_EMAIL, email)
    body = {"user": {"name": "n", "email": email}}
    assert schemas.user_create_fast(body) and schemas.user_create.is_valid(body)


@pytest.mark.parametrize(
    "email",
    ["a@b", "@b.c", "a@", "a@.b", "a b@c.d", "a@b c.d", "a@@b.c", "a@b@c.d", "a.b", "", "a@b."],
)
def test_malformed_addresses_are_refused_as_before(email):
    assert not re.search(schemas._EMAIL_PATTERN, email)
    assert not re.search(OLD_EMAIL, email)
    detail = f"Invalid request body: /user/email: invalid value; {EMAIL_EXPECTED}."
    assert problems({"user": {"name": "n", "email": email}}) == detail


@pytest.mark.parametrize("email", ["a@.b.c", "a@b..c", "a@b.c.", "a@..b"])
def test_an_empty_domain_label_is_now_refused(email):
    assert re.search(OLD_EMAIL, email)
    assert not re.search(schemas._EMAIL_PATTERN, email)


def test_the_email_pattern_changes_only_empty_domain_labels():
    # every string of up to 7 characters over the characters that matter
    strings = ["".join(p) for n in range(8) for p in itertools.product("a.@ ", repeat=n)]
    new = set(filter(re.compile(schemas._EMAIL_PATTERN).search, strings))
    old = set(filter(re.compile(OLD_EMAIL).search, strings))
    assert new <= old  # never more lenient
    empty_label = {text for text in old if "" in text.split("@")[1].split(".")}
    assert old - new == empty_label and len(empty_label) == 150


@pytest.mark.parametrize("fast", [None, schemas.user_create_fast], ids=["jsonschema", "fast"])
def test_a_trailing_newline_in_an_email_is_still_refused(fast):
    detail = f"Invalid request body: /user/email: invalid value; {EMAIL_EXPECTED}."
    assert problems({"user": {"name": "n", "email": "a@b.c\n"}}, fast) == detail


# -- length before patterns ----------------------------------------------------------------


@pytest.fixture
def searched(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every pattern search that ``schemas`` runs from now on: ``(pattern, len(string))``."""
    calls: list[tuple[str, int]] = []
    real = schemas._searcher

    def spy(pattern: str) -> schemas.Search:
        search = real(pattern)

        def recorded(value: str) -> Any:
            calls.append((pattern, len(value)))
            return search(value)

        return recorded

    monkeypatch.setattr(schemas, "_searcher", spy)
    return calls


#: field -> (an over-long value failing every pattern of the field too, its 400 detail)
OVER_LONG = {
    "email": (HOSTILE_EMAIL, f"/user/email: got 110003 characters; {EMAIL_EXPECTED}"),
    "name": ("\x00" * 300, f"/user/name: got 300 characters; {NAME_EXPECTED}"),
    "description": (
        "\ud800" * 1025,
        f"/user/description: got 1025 characters; {DESCRIPTION_EXPECTED}",
    ),
}
#: field -> a short value its patterns refuse
SHORT_INVALID = {"email": "a@b", "name": "a\x00", "description": "a\x00"}


@pytest.mark.parametrize("field", sorted(OVER_LONG))
def test_validate_runs_no_pattern_on_a_value_over_max_length(searched, field):
    value, sentence = OVER_LONG[field]
    body = {"user": {"name": "n", field: value}}
    assert problems(body) == f"Invalid request body: {sentence}."
    assert all(length <= 255 for _, length in searched)
    # positive control: the spy sees the searches of a short value
    searched.clear()
    problems({"user": {"name": "n", field: SHORT_INVALID[field]}})
    assert (len(SHORT_INVALID[field])) in {length for _, length in searched}


@pytest.mark.parametrize("field", sorted(OVER_LONG))
def test_the_fast_check_runs_no_pattern_on_a_value_over_max_length(searched, field):
    fast = schemas.fast_check(schemas.USER_CREATE)  # built with the spy
    value, _ = OVER_LONG[field]
    assert not fast({"user": {"name": "n", field: value}})
    assert all(length <= 255 for _, length in searched)
    searched.clear()
    assert not fast({"user": {"name": "n", field: SHORT_INVALID[field]}})
    assert (len(SHORT_INVALID[field])) in {length for _, length in searched}


@pytest.mark.parametrize("field", sorted(OVER_LONG))
def test_the_fast_checks_pattern_formats_do_not_run_past_max_length(searched, field):
    # fastjsonschema happens to check maxLength first; the formats do not rely on it
    formats: dict[str, schemas.StringCheck] = {}
    copy = schemas._patterns_as_formats(schemas.USER_CREATE, formats)
    check = formats[copy["properties"]["user"]["properties"][field]["format"]]
    assert check(OVER_LONG[field][0])  # left to maxLength, which refuses it
    assert searched == []
    assert not check(SHORT_INVALID[field])
    assert searched


@pytest.mark.parametrize("fast", [None, schemas.user_create_fast], ids=["jsonschema", "fast"])
def test_an_over_long_address_gets_the_same_message_as_before(fast):
    email = "a@" + "b" * 250 + ".com"  # well-formed, 256 characters
    detail = f"Invalid request body: /user/email: got 256 characters; {EMAIL_EXPECTED}."
    assert problems({"user": {"name": "n", "email": email}}, fast) == detail


@pytest.mark.parametrize(
    "user",
    [
        {"name": "n", "email": HOSTILE_EMAIL},
        {"name": "\x00" * 256},
        {"name": "n", "description": "\x00" * 1025},
        {"name": "n", "email": "a@b.c" + "\x01" * 251},
        {"name": "n", "email": "a@b.c"},
        {"name": "n\x00"},
    ],
)
def test_skipping_patterns_past_max_length_never_changes_validity(user):
    body = {"user": user}
    reference = Draft202012Validator(schemas.USER_CREATE)
    assert schemas.user_create.is_valid(body) == reference.is_valid(body)
    assert schemas.user_create_fast(body) == reference.is_valid(body)


# -- patterns as ASCII escapes ---------------------------------------------------------------


def test_the_patterns_are_ascii():
    assert all(p.isascii() for p in (schemas._CONTROL, schemas._NUL, schemas._EMAIL_PATTERN))


def test_the_served_document_is_i_json(api):
    res = api.get("/v1/openapi.json", headers=READER)
    text = res.body.decode("ascii")
    document = json.loads(text)
    encoded = json.dumps(document, ensure_ascii=False).encode("utf-8")  # no lone surrogate
    assert json.loads(encoded) == document
    assert json.dumps(schemas._CONTROL) in text  # the escapes, as written


@pytest.mark.parametrize(
    ("new", "old"), [("_CONTROL", OLD_CONTROL), ("_NUL", OLD_NUL)], ids=["control", "nul"]
)
def test_the_escaped_patterns_refuse_the_same_characters(new, old):
    everything = [chr(c) for c in range(0x110000)]
    refused = set(filter(re.compile(getattr(schemas, new)).search, everything))
    assert refused == set(filter(re.compile(old).search, everything))


@pytest.mark.parametrize("fast", [None, schemas.user_create_fast], ids=["jsonschema", "fast"])
@pytest.mark.parametrize(
    "char", ["\x00", "\x01", "\x1f", "\x7f", "\n", "\ud800", "\udc00", "\udfff"]
)
def test_a_control_character_or_surrogate_in_a_name_is_refused_as_before(fast, char):
    detail = f"Invalid request body: /user/name: invalid value; {NAME_EXPECTED}."
    assert problems({"user": {"name": f"a{char}b"}}, fast) == detail


@pytest.mark.parametrize("fast", [None, schemas.user_create_fast], ids=["jsonschema", "fast"])
@pytest.mark.parametrize("char", ["\x00", "\ud800", "\udfff"])
def test_nul_or_a_surrogate_in_a_description_is_refused_as_before(fast, char):
    detail = f"Invalid request body: /user/description: invalid value; {DESCRIPTION_EXPECTED}."
    assert problems({"user": {"name": "n", "description": f"a{char}"}}, fast) == detail


@pytest.mark.parametrize("char", ["\x01", "\n", "\x7f", "\x80", "\ue000", "😀"])
def test_other_characters_in_a_description_are_fine(char):
    body = {"user": {"name": "n", "description": f"a{char}"}}
    assert schemas.user_create_fast(body) and schemas.user_create.is_valid(body)


def test_a_surrogate_sent_over_http_is_refused(api):
    raw = b'{"user": {"name": "a\\ud800b"}}'
    res = api.post(
        "/v1/users", raw, headers={**ADMIN, "Content-Type": "application/json"}, status=400
    )
    assert (
        envelope_of(res)["detail"]
        == f"Invalid request body: /user/name: invalid value; {NAME_EXPECTED}."
    )


# -- capped details --------------------------------------------------------------------------


def _unknown(key: str) -> str:
    return f"/user/{key}: unknown field {ALLOWED}"


def test_one_to_three_problems_read_as_before():
    assert problems({"user": {"name": "a", "nmae": 1}}) == (
        f"Invalid request body: /user/nmae: unknown field; did you mean 'name'? {ALLOWED}."
    )
    assert problems({"user": {"name": "a", "emial": 1, "x": 2, "y": 3}}) == (
        "Invalid request body: /user/emial: unknown field; did you mean 'email'? "
        f"{ALLOWED}; {_unknown('x')}; {_unknown('y')}."
    )
    assert problems({"user": {"name": 5, "enabled": "yes"}}) == (
        "Invalid request body: /user/enabled: got string; expected true or false; "
        f"/user/name: got integer; {NAME_EXPECTED}."
    )


@pytest.mark.parametrize(("count", "tail"), [(10, ""), (11, "; ... and 1 more")])
def test_max_problems_are_listed_then_the_rest_is_counted(count, tail):
    keys = [f"x{i:02d}" for i in range(count)]
    body = {"user": {"name": "a", **dict.fromkeys(keys, 1)}}
    shown = "; ".join(_unknown(key) for key in keys[:10])
    assert problems(body) == f"Invalid request body: {shown}{tail}."


def test_5000_unknown_fields_make_a_short_detail(monkeypatch):
    hints: list[str] = []
    real = schemas.did_you_mean
    monkeypatch.setattr(schemas, "did_you_mean", lambda k, c: hints.append(k) or real(k, c))
    keys = [f"x{i:04d}" for i in range(5000)]
    body = {"user": {"name": 7, **dict.fromkeys(keys, 1)}}
    shown = "; ".join(_unknown(key) for key in keys[:10])
    assert problems(body) == f"Invalid request body: {shown}; ... and 4991 more."
    assert hints == keys[:10]  # "did you mean" only for the problems shown


def test_problem_count_is_the_number_of_sentences():
    body = {"user": {"name": 7, "email": "x", "a": 1, "b": 2}, "extra": 1}
    errors = list(schemas.user_create.iter_errors(body))
    assert {e.validator for e in errors} == {"additionalProperties", "type", "pattern"}
    for error in errors:
        assert schemas.problem_count(error) == len(list(schemas.describe(error)))
    missing = next(schemas.user_create.iter_errors({}))
    assert schemas.problem_count(missing) == len(list(schemas.describe(missing))) == 1
