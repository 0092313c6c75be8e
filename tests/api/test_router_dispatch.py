"""The router's start-up dispatch table finds exactly the route ``Mapper.routematch`` finds.

:meth:`Router.match` tries only the routes that can match a request's method and first path
segment; these tests compare it with Routes' own full scan on the shipped table plus routes
chosen to stress the ordering rules (a prefix ending inside a segment, a variable first
segment, ``:name`` syntax, overlapping templates of different static-prefix lengths).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from myservice.api import policy
from myservice.wsgi.reply import Reply
from myservice.wsgi.router import ROUTES, Route, Router


def _ok(req, ctx, **kw):
    return Reply(200, kw)


EXTRA = (
    Route("GET", "/users/{user_id}/metadata", _ok, policy.READ),
    Route("GET", "/users{suffix}", _ok, policy.READ),
    Route("GET", "/{anything}/items", _ok, policy.READ),
    Route("PUT", "/things/:thing_id", _ok, policy.WRITE),
    # both match /users/special/1: Routes tries the longer static prefix first, although
    # the other one is declared first
    Route("GET", "/{kind}/special/{x}", _ok, policy.READ),
    Route("GET", "/users/special/{x}", _ok, policy.READ),
    Route("OPTIONS", "/", _ok, policy.READ),
)

SEGMENTS = ["users", "usersx", "extensions", "things", "special", "items", "metadata", "", "x"]
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "BREW"]


def _router() -> Router:
    return Router(ROUTES, extension_routes=EXTRA)


def _same(router: Router, method: str, path: str) -> None:
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path}
    expected = router._mapper.routematch(path, environ)
    got = router.match(path, environ)
    if expected is None:
        assert got is None, (method, path, got)
    else:
        assert got is not None, (method, path)
        assert got[1] is expected[1], (method, path, got[1].routepath, expected[1].routepath)
        assert got[0] == expected[0]


def test_the_table_is_bounded_by_the_routes_not_by_traffic():
    router = _router()
    before = len(router._dispatch)
    for i in range(50):
        router.match(f"/unknown{i}/x", {"REQUEST_METHOD": "GET"})
    assert len(router._dispatch) == before


def test_known_cases_agree_with_routematch():
    router = _router()
    paths = [
        "/",
        "",
        "/users",
        "/users/",
        "/users/abc",
        "/users/abc/",
        "/users/abc/metadata",
        "/users/abc/metadata/k",
        "/usersfoo",
        "/users.json",
        "/users/special/1",
        "/things/7",
        "/extensions",
        "/extensions/user_metadata",
        "/anything/items",
        "/users/items",
        "/nothing",
        "users",
        "//users",
    ]
    for method in METHODS:
        for path in paths:
            _same(router, method, path)


@settings(max_examples=400, deadline=None)
@given(
    method=st.sampled_from(METHODS),
    parts=st.lists(
        st.one_of(st.sampled_from(SEGMENTS), st.text("ab.-_~%/:{}", max_size=6)),
        max_size=4,
    ),
    trailing=st.booleans(),
)
def test_generated_paths_agree_with_routematch(method, parts, trailing):
    path = "/" + "/".join(parts) + ("/" if trailing else "")
    _same(_router(), method, path)
