"""Property-based fuzzing of the whole application from its own OpenAPI document.

The application is built from the shipped ``etc/api-paste.ini`` over a tmp config (SQLite)
and driven **in-process through WSGI** (``conftest.wsgi_call``: body read, then ``close()``).
The document is fetched from ``GET /v1/openapi.json``; for every operation in it Hypothesis draws
path parameters (ids of users created earlier in the run, or any text), query parameters
(valid for their schemas, or any text, or unknown names), bodies (valid for the request
schema, any JSON value, bytes that are not UTF-8 or no body), a ``Content-Type`` and an
``Accept``; it sends them with a valid admin token, or with none.  Every response must:

* not be a 5xx;
* have a status the operation declares (``2XX`` counts for any 2xx);
* have a body that matches the declared schema of its media type;
* for 4xx, be the error envelope whose ``request_id`` equals ``X-OpenStack-Request-ID``.

The run is derandomized (fixed seed, no example database): the same examples every run.
``MYSERVICE_FUZZ_EXAMPLES`` is the number of examples per operation (default 25);
``MYSERVICE_FUZZ_EXAMPLES=2000 pytest tests/reliability -k fuzz`` is the longer run.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from urllib.parse import quote, urlencode

import pytest
import webob
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from myservice.wsgi.faults import REQUEST_ID_HEADER

from . import strategies as gen
from .conftest import wsgi_call

EXAMPLES = int(os.environ.get("MYSERVICE_FUZZ_EXAMPLES", "25"))
_DOC_URI = "urn:myservice:openapi"
_METHODS = ("get", "put", "post", "patch", "delete")


class Checker:
    """Validates instances against schemas of the document (``$ref`` resolved in it)."""

    def __init__(self, doc: dict) -> None:
        self.doc = doc
        resource = Resource.from_contents(doc, default_specification=DRAFT202012)
        self.registry = Registry().with_resource(_DOC_URI, resource)

    def errors(self, pointer: str, instance: object) -> list[str]:
        validator = Draft202012Validator({"$ref": f"{_DOC_URI}#{pointer}"}, registry=self.registry)
        return [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(instance)
        ]


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _operations(doc: dict) -> list[tuple[str, str]]:
    return sorted(
        (path, method)
        for path, item in doc["paths"].items()
        for method in item
        if method in _METHODS
    )


@st.composite
def requests(draw, doc: dict, path: str, method: str, ids: list[str], token: str | None):
    """One request (method, url, headers, body) for the operation."""
    op = doc["paths"][path][method]
    url = path
    query: list[tuple[str, str]] = []
    for param in op.get("parameters", []):
        param = gen.resolve(doc, param)
        if param["in"] == "path":
            # the same draws whatever the state (Hypothesis replays them): a pool index and
            # any text; the pool (ids created so far, the loaded alias) is used if non-empty
            known = {"user_id": ids, "alias": ["user_metadata"]}.get(param["name"], [])
            use_known = draw(st.booleans())
            index = draw(st.integers(0, 10_000))
            value = draw(gen.TEXT.filter(lambda s: s and "/" not in s and s not in (".", "..")))
            if use_known and known:
                value = known[index % len(known)]
            url = url.replace("{" + param["name"] + "}", quote(value.encode("utf-8"), safe=""))
        elif param["in"] == "query" and draw(st.booleans()):
            valid = gen.from_schema(doc, param["schema"]).map(str)
            value = draw(valid | gen.TEXT if draw(st.booleans()) else valid)
            query.append((param["name"], value))
    if draw(st.integers(0, 9)) == 0:  # an unknown parameter now and then
        query.append((draw(st.sampled_from(["limit", "foo", "marker"])), draw(gen.TEXT)))
    if query:
        url += "?" + urlencode(query)
    headers = {}
    if token is not None:
        headers["X-Auth-Token"] = token
    headers["Accept"] = draw(
        st.sampled_from(
            ["application/json", "*/*", "application/json;q=0.5, text/html", "text/html"]
        )
    )
    body = None
    schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    if schema is not None:
        kind = draw(st.sampled_from(["valid", "valid", "valid", "json", "bytes", "none"]))
        if kind == "valid":
            body = json.dumps(draw(gen.from_schema(doc, schema))).encode()
        elif kind == "json":
            body = json.dumps(draw(gen.ANY_JSON)).encode()
        elif kind == "bytes":
            body = draw(st.binary(max_size=40))
        headers["Content-Type"] = draw(
            st.sampled_from(
                ["application/json"] * 4 + ["text/plain", "application/json; charset=latin-1"]
            )
        )
    return method.upper(), url, headers, body


def _check(checker: Checker, path: str, method: str, res: webob.Response) -> None:
    op = checker.doc["paths"][path][method]
    where = f"{method.upper()} {path} -> {res.status}"
    assert res.status_int < 500, f"{where}: {res.body[:500]!r}"
    declared = op["responses"]
    status = str(res.status_int)
    key = status if status in declared else f"{status[0]}XX"
    assert key in declared, f"{where}: status not declared ({sorted(declared)}): {res.body[:300]!r}"
    response = gen.resolve(checker.doc, declared[key])
    rid = res.headers.get(REQUEST_ID_HEADER)
    assert rid, f"{where}: no {REQUEST_ID_HEADER}"
    content = response.get("content")
    if not content:
        assert not res.body or key == "2XX", f"{where}: unexpected body {res.body[:200]!r}"
        return
    media = (res.content_type or "").lower()
    assert media in content, f"{where}: Content-Type {media!r} not among {sorted(content)}"
    if media != "application/json":
        return
    body = json.loads(res.body)
    if "$ref" in declared[key]:
        pointer = declared[key]["$ref"].removeprefix("#") + "/content/application~1json/schema"
    else:
        pointer = (
            f"/paths/{_escape(path)}/{method}/responses/{key}/content/application~1json/schema"
        )
    problems = checker.errors(pointer, body)
    assert not problems, f"{where}: body does not match the document: {problems}; {body!r}"
    if res.status_int >= 400:
        assert body["errors"][0]["status"] == res.status_int, where
        assert body["errors"][0]["request_id"] == rid, f"{where}: request_id differs from header"


@pytest.mark.parametrize("auth", ["admin", "none"])
def test_fuzz_every_operation_conforms_to_the_document(built, auth):
    app, _, admin_token = built
    token = admin_token if auth == "admin" else None
    doc = wsgi_call(app, webob.Request.blank("/v1/openapi.json")).json
    checker = Checker(doc)
    operations = _operations(doc)
    ids: list[str] = []
    if token is not None:
        # a few users exist before the run, so reads by id can succeed whatever the draws
        # delete; the outcome must not hang on which creates the examples happen to make
        for n in range(3):
            seed = webob.Request.blank(
                "/v1/users",
                method="POST",
                headers={"X-Auth-Token": token, "Content-Type": "application/json"},
                body=json.dumps({"user": {"name": f"fuzz-seed-{n}"}}).encode(),
            )
            res = wsgi_call(app, seed)
            assert res.status_int == 201, res.text
            ids.append(res.json["user"]["id"])
    seen: Counter = Counter()
    statuses: Counter = Counter()

    @settings(
        max_examples=EXAMPLES * len(operations),
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def run(data):
        path, method = data.draw(st.sampled_from(operations), label="operation")
        verb, url, headers, body = data.draw(requests(doc, path, method, ids, token))
        req = webob.Request.blank(url, method=verb, headers=headers)
        if body is not None:
            req.body = body
            if "Content-Type" in headers:
                req.content_type = headers["Content-Type"]
        res = wsgi_call(app, req)
        seen[(path, method)] += 1
        statuses[(path, method, res.status_int)] += 1
        _check(checker, path, method, res)
        if res.status_int == 201 and path == "/v1/users":
            ids.append(res.json["user"]["id"])

    run()
    assert set(seen) == set(operations), f"never exercised: {set(operations) - set(seen)}"
    if auth == "admin":  # valid requests got through, not only errors
        assert statuses[("/v1/users", "post", 201)] > 0, statuses
        assert statuses[("/v1/users", "get", 200)] > 0, statuses
        # which single-user operations succeed depends on the order the draws create and
        # delete users in; that several of them succeed does not
        user_successes = sum(
            count
            for (path, _, status), count in statuses.items()
            if path.startswith("/v1/users/{user_id}") and 200 <= status < 300
        )
        assert user_successes >= 3, statuses
    else:
        assert statuses[("/v1/users", "post", 401)] > 0, statuses
        assert not ids
