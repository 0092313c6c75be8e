"""myservice.suggest: the "did you mean" of error messages."""

from __future__ import annotations

import pytest

from myservice.suggest import MAX_LENGTH, closest, closest_path, did_you_mean, no_resource

TEMPLATES = ["/users", "/users/{user_id}", "/users/{user_id}/metadata", "/extensions"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/usrs", "/users"),
        # the request's own text fills the template's variable segments
        ("/usrs/abc", "/users/abc"),
        ("/users/abc/metdata", "/users/abc/metadata"),
        # a trailing slash is a typo too
        ("/users/abc/", "/users/abc"),
        ("/extension", "/extensions"),
    ],
)
def test_the_closest_template_with_the_requests_values(path, expected):
    assert closest_path(path, TEMPLATES) == expected


def test_case_is_ignored_when_nothing_is_close_as_written():
    assert closest("LIMIT", ["limit", "marker"]) == "limit"
    assert closest("Marker", ["limit", "marker"]) == "marker"
    assert closest("XYZ", ["limit"]) is None


def test_nothing_close_is_none():
    assert closest_path("/nothing", TEMPLATES) is None


def test_a_variable_is_never_shown():
    # /users/{user_id}/metadata has three segments, the path two: not a candidate, so the
    # suggestion is never "/users/{user_id}/metadata"
    assert closest_path("/users/metadata", ["/users/{user_id}/metadata"]) is None


def test_the_path_itself_is_never_suggested():
    assert closest_path("/users/abc", ["/users/{user_id}"]) is None


@pytest.mark.parametrize("segment", ["..", ".", ""])
def test_a_dot_or_empty_segment_never_fills_a_variable(segment):
    # "/users/../metadata" would take a client following it to /metadata
    assert closest_path(f"/users/{segment}/metdata", TEMPLATES) is None
    assert closest_path("/users/ab/metdata", TEMPLATES) == "/users/ab/metadata"


def test_a_path_over_the_limit_gets_no_suggestion():
    near = "/users/" + "a" * (MAX_LENGTH - len("/users/") - 1)
    assert len(near + "/") == MAX_LENGTH
    assert closest_path(near + "/", ["/users/{user_id}"]) == near
    assert closest_path(near + "a/", ["/users/{user_id}"]) is None


def test_no_resource_detail():
    assert (
        no_resource("/v1/usrs", "/v1/users") == "No resource at /v1/usrs; did you mean /v1/users?"
    )
    assert no_resource("/v1/nothing", None) == "No resource at /v1/nothing."


def test_closest_name_and_its_hint():
    assert closest("sqlte", ["memory", "sqlite"]) == "sqlite"
    assert closest("oracle", ["memory", "sqlite"]) is None
    assert did_you_mean("sqlte", ("memory", "sqlite")) == "; did you mean 'sqlite'?"
    assert did_you_mean("oracle", {"memory": 1, "sqlite": 2}) == ""
