"""What the HTTP conformance walkthrough found: ``Accept`` parameters and empty list elements
(RFC 8259 section 11, RFC 9110 section 5.6.1), ``?limit=`` of any length, integers beyond
``int()``'s digit limit, ``Content-Encoding`` on request bodies (RFC 9110 section 15.5.16) and
``Accept-Post``/``Accept-Patch`` on 415 answers (RFC 5789 section 2.2)."""

from __future__ import annotations

import gzip
import json
import sys

import pytest
import webtest

from myservice.api.common import parse_limit
from myservice.wsgi import app as app_mod
from myservice.wsgi import health
from myservice.wsgi.faults import APIError
from myservice.wsgi.router import accept_qualities, accepts_json
from tests.api.conftest import ADMIN, READER, envelope_of

USER = json.dumps({"user": {"name": "alice"}}).encode()
JSON_WITH_PARAMETERS = [
    "application/json; charset=utf-8",
    "application/json;charset=UTF-8",
    'application/json; charset="utf-8"',
    "application/json; charset=iso-8859-1",
    "Application/JSON; Charset=utf-8",
    "application/json ;charset=utf-8;q=0.5",
    "application/json;q=0.5;charset=utf-8",
    "text/html, application/json; charset=utf-8; q=0.1",
]
NO_PREFERENCE = [",,", ",", " , ", ", ,,"]


def _user_id(api) -> str:
    return api.post_json("/v1/users", {"user": {"name": "bob"}}, headers=ADMIN).json["user"]["id"]


# -- Accept: the matching rules ------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("application/json; charset=utf-8", (1.0,)),
        ("application/json;q=0.5;charset=utf-8", (0.5,)),
        ("application/json; charset=utf-8; q=0", (0.0,)),
        ("text/html", (0.0,)),
        ("application/*;q=0.3", (0.3,)),
        ("*/*;q=0.2, application/*;q=0.4", (0.4,)),
        ("*/*;q=0.2, application/*;q=0.4, application/json;level=1;q=0.6", (0.6,)),
        # the most specific range counts, not the highest q
        ("*/*, application/json;q=0", (0.0,)),
        # of equally specific ranges the first counts, as WebOb decides
        ("application/json;charset=utf-8;q=0.7, application/json;q=0.9", (0.7,)),
    ],
)
def test_accept_qualities_ignore_parameters_other_than_q(accept, expected):
    assert accept_qualities(accept, "application/json") == expected


def test_accept_qualities_of_several_media_types_in_order():
    assert accept_qualities("text/*;q=0.5, application/json", "application/json", "text/plain") == (
        1.0,
        0.5,
    )


@pytest.mark.parametrize("accept", ["", *NO_PREFERENCE, "not a media range;;"])
def test_accept_without_a_preference_has_no_qualities(accept):
    assert accept_qualities(accept, "application/json") is None


@pytest.mark.parametrize("accept", JSON_WITH_PARAMETERS)
def test_accepts_json_whatever_its_parameters(accept):
    assert accepts_json({"HTTP_ACCEPT": accept}) is True


@pytest.mark.parametrize(
    "accept",
    [
        "text/html",
        "application/json;q=0",
        "application/json; charset=utf-8; q=0",
        "*/*, application/json;q=0",
        "application/*;q=0",
        "application/xml, text/*",
    ],
)
def test_accepts_json_not_when_excluded(accept):
    assert accepts_json({"HTTP_ACCEPT": accept}) is False


@pytest.mark.parametrize("accept", [*NO_PREFERENCE, "application/*", "*/*"])
def test_accepts_json_for_a_header_without_preference_or_a_wildcard(accept):
    assert accepts_json({"HTTP_ACCEPT": accept}) is True


# -- Accept over HTTP ----------------------------------------------------------------------


@pytest.mark.parametrize("accept", [*JSON_WITH_PARAMETERS, *NO_PREFERENCE])
def test_json_endpoints_answer_json_with_parameters_or_empty_elements(api, accept):
    res = api.get("/v1/users", headers={**READER, "Accept": accept}, status=200)
    assert res.json == {"users": [], "links": []}
    api.post(
        "/v1/users",
        USER,
        headers={**ADMIN, "Accept": accept, "Content-Type": "application/json"},
        status=201,
    )


@pytest.mark.parametrize("accept", ["text/html", "application/json; charset=utf-8; q=0"])
def test_json_endpoints_still_refuse_an_accept_excluding_json(api, accept):
    res = api.get("/v1/users", headers={**READER, "Accept": accept}, status=406)
    assert envelope_of(res)["detail"] == (
        f"This resource is only available as application/json; the Accept header "
        f"{accept!r} excludes it."
    )


@pytest.mark.parametrize("accept", ["application/json; charset=utf-8", ",,"])
def test_versions_document_with_parameters_or_empty_elements(global_conf, accept):
    versions = webtest.TestApp(app_mod.versions_factory(global_conf))
    assert versions.get("/", headers={"Accept": accept}, status=200).json["versions"]


@pytest.fixture
def healthcheck(ctx, global_conf):
    return webtest.TestApp(health.healthcheck_factory(global_conf))


@pytest.mark.parametrize(
    "accept",
    [
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
        "text/plain;q=0.5, application/json; charset=utf-8",
        "application/json; charset=utf-8, text/plain;q=0.9",
    ],
)
def test_health_chooses_json_whatever_its_parameters(healthcheck, accept):
    res = healthcheck.get("/", headers={"Accept": accept}, status=200)
    assert res.content_type == "application/json"
    assert res.json == {"status": "OK"}


@pytest.mark.parametrize(
    "accept",
    [
        *NO_PREFERENCE,
        "*/*",
        "application/json; charset=utf-8; q=0.5, text/plain",
        "application/json; charset=utf-8, text/plain",  # a tie: text
        "text/plain; charset=utf-8, application/json;q=0.5",
        "application/json; charset=utf-8; q=0",
    ],
)
def test_health_chooses_text_otherwise(healthcheck, accept):
    res = healthcheck.get("/", headers={"Accept": accept}, status=200)
    assert res.content_type == "text/plain"
    assert res.body == b"OK"


# -- ?limit= -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "maximum", "expected"),
    [
        ("1000000000000", 5, 5),
        ("9" * 5000, 5, 5),  # int() of it would raise (sys.get_int_max_str_digits)
        ("0" * 5000 + "3", 5, 3),
        ("1" + "0" * 5000, 5, 5),
        ("5", 5, 5),
        ("6", 5, 5),
        ("10", 9, 9),  # more digits than the maximum
        ("99", 100, 99),  # fewer digits
        ("101", 100, 100),  # as many digits
        (" 7 ", 100, 7),
    ],
)
def test_parse_limit_reduces_any_value_above_the_maximum(raw, maximum, expected):
    assert parse_limit(raw, 3, maximum) == expected


@pytest.mark.parametrize("raw", ["0", "0" * 5000, "-1", "abc", "", " ", "1_000", "١"])
def test_parse_limit_refuses_what_is_not_a_positive_integer(raw):
    with pytest.raises(APIError) as info:
        parse_limit(raw, 3, 5)
    assert info.value.status == 400
    assert info.value.detail == (
        "Query parameter 'limit' must be a positive integer (values above 5 are reduced to 5); "
        f"got {raw!r}."
    )


# -- integers beyond int()'s digit limit ---------------------------------------------------


def test_an_integer_with_too_many_digits_is_a_400_naming_its_pointer(api):
    limit = sys.get_int_max_str_digits()
    body = b'{"user": {"name": "alice", "x~y/z": [0, -' + b"7" * (limit + 1) + b"]}}"
    res = api.post(
        "/v1/users", body, headers={**ADMIN, "Content-Type": "application/json"}, status=400
    )
    assert envelope_of(res)["detail"] == (
        "The request body has an integer with too many digits at /user/x~0y~1z/1: "
        f"{limit + 1} digits, at most {limit} are accepted."
    )


# -- Content-Encoding ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("gzip", gzip.compress(USER)),
        ("br", USER),
        ("GZIP", USER),
        ("identity, gzip", USER),
    ],
    ids=["gzip", "br", "GZIP", "identity-gzip"],
)
@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_an_encoded_body_is_415_with_accept_encoding_identity(api, method, encoding, body):
    path = "/v1/users" if method == "POST" else f"/v1/users/{_user_id(api)}"
    res = api.request(
        path,
        method=method,
        body=body,
        headers={**ADMIN, "Content-Type": "application/json", "Content-Encoding": encoding},
        status=415,
    )
    assert envelope_of(res)["detail"] == (
        f"Request bodies must not be encoded; got Content-Encoding {encoding!r} "
        "(only identity is accepted)."
    )
    assert res.headers["Accept-Encoding"] == "identity"
    assert [u["name"] for u in api.get("/v1/users", headers=READER).json["users"]] == (
        [] if method == "POST" else ["bob"]
    )


@pytest.mark.parametrize("encoding", ["identity", "IDENTITY", " Identity ", ""])
def test_an_identity_or_empty_content_encoding_is_no_encoding(api, encoding):
    api.post(
        "/v1/users",
        USER,
        headers={**ADMIN, "Content-Type": "application/json", "Content-Encoding": encoding},
        status=201,
    )


# -- 415 for a wrong Content-Type --------------------------------------------------------


@pytest.mark.parametrize(
    "ctype", ["text/plain", "application/json; charset=latin-1", "application/merge-patch+json"]
)
def test_415_for_post_names_accept_post(api, ctype):
    res = api.post("/v1/users", USER, headers={**ADMIN, "Content-Type": ctype}, status=415)
    assert res.headers["Accept-Post"] == "application/json"
    assert "Accept-Patch" not in res.headers
    assert "application/json" in envelope_of(res)["detail"]


@pytest.mark.parametrize(
    "ctype", ["text/plain", "application/json; charset=latin-1", "application/merge-patch+json"]
)
def test_415_for_patch_names_accept_patch(api, ctype):
    res = api.patch(
        f"/v1/users/{_user_id(api)}", USER, headers={**ADMIN, "Content-Type": ctype}, status=415
    )
    assert res.headers["Accept-Patch"] == "application/json"
    assert "Accept-Post" not in res.headers


def test_415_for_put_names_neither(api):
    uid = _user_id(api)
    res = api.put(
        f"/v1/users/{uid}/metadata/color",
        b'{"meta": {"color": "blue"}}',
        headers={**ADMIN, "Content-Type": "text/plain"},
        status=415,
    )
    assert envelope_of(res)["detail"] == (
        "Request bodies must be application/json; got Content-Type 'text/plain'."
    )
    assert "Accept-Post" not in res.headers
    assert "Accept-Patch" not in res.headers
