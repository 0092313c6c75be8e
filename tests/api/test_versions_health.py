"""The versions document (``/``) and the health application (``/healthcheck``)."""

from __future__ import annotations

import pytest
import webtest

from myservice import conf as conf_mod
from myservice.storage import base as storage
from myservice.storage.memory import MemoryDriver
from myservice.wsgi import app as app_mod
from myservice.wsgi import health
from myservice.wsgi.context import CONTEXT_KEY, ServiceContext
from tests.api.conftest import envelope_of, mount

RID = "req-aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"


# -- versions ----------------------------------------------------------------------------


@pytest.fixture
def versions(global_conf):
    return webtest.TestApp(app_mod.versions_factory(global_conf))


def test_versions_document_is_public_and_absolute(versions):
    res = versions.get("/", status=200)
    assert res.content_type == "application/json"
    assert res.json == {
        "versions": [
            {
                "id": "v1.0",
                "status": "CURRENT",
                "links": [{"rel": "self", "href": "http://localhost/v1/"}],
            }
        ]
    }


def test_versions_href_follows_host_and_mount_point(global_conf):
    app = webtest.TestApp(mount("/api", app_mod.versions_factory(global_conf)))
    res = app.get(
        "/api/", extra_environ={"HTTP_HOST": "svc.example:8443", "wsgi.url_scheme": "https"}
    )
    assert res.json["versions"][0]["links"][0]["href"] == "https://svc.example:8443/api/v1/"


def test_versions_head(versions):
    res = versions.head("/", status=200)
    assert res.body == b""
    assert int(res.headers["Content-Length"]) == len(versions.get("/").body)


@pytest.mark.parametrize("path", ["/v2/", "/anything", "/v1/users"])
def test_other_paths_are_404_in_the_envelope(versions, path):
    res = versions.get(path, status=404, extra_environ={"openstack.request_id": RID})
    error = envelope_of(res)
    assert error["request_id"] == RID


def test_versions_wrong_method_is_405(versions):
    res = versions.post("/", status=405)
    assert res.headers["Allow"] == "GET, HEAD"
    envelope_of(res)


def test_versions_accept_excluding_json_is_406(versions):
    envelope_of(versions.get("/", headers={"Accept": "text/html"}, status=406))


def test_versions_takes_no_local_options(global_conf):
    with pytest.raises(conf_mod.ConfigError, match=r"\[app:versions\].*colour"):
        app_mod.versions_factory(global_conf, colour="blue")


# -- health ------------------------------------------------------------------------------


@pytest.fixture
def healthcheck(ctx, global_conf):
    return webtest.TestApp(health.healthcheck_factory(global_conf))


def test_get_is_200_ok_text(healthcheck):
    res = healthcheck.get("/", status=200)
    assert res.body == b"OK"
    assert res.content_type == "text/plain"


@pytest.mark.parametrize("accept", ["application/json", "text/plain;q=0.5, application/json"])
def test_get_json(healthcheck, accept):
    res = healthcheck.get("/", headers={"Accept": accept}, status=200)
    assert res.content_type == "application/json"
    assert res.json == {"status": "OK"}


@pytest.mark.parametrize("path", ["", "/"])
def test_the_mount_point_is_answered_without_authentication(healthcheck, path):
    res = healthcheck.get(path, extra_environ={"SCRIPT_NAME": "/healthcheck"}, status=200)
    assert res.body == b"OK"


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST"])
def test_a_path_below_the_mount_point_is_404_text(healthcheck, method):
    res = healthcheck.request(
        "/db", method=method, environ={"SCRIPT_NAME": "/healthcheck"}, status=404
    )
    assert res.content_type == "text/plain"
    assert "Allow" not in res.headers
    if method != "HEAD":
        assert res.text == (
            "Not Found: No resource at /healthcheck/db; did you mean /healthcheck?\n"
        )


def test_a_path_below_the_mount_point_is_404_envelope_for_json(healthcheck):
    res = healthcheck.get(
        "/deep/path",
        headers={"Accept": "application/json"},
        extra_environ={"SCRIPT_NAME": "/healthcheck", "openstack.request_id": RID},
        status=404,
    )
    error = envelope_of(res)
    assert error["detail"] == ("No resource at /healthcheck/deep/path; did you mean /healthcheck?")
    assert error["request_id"] == RID


def test_head_is_204(healthcheck):
    res = healthcheck.head("/", status=204)
    assert res.body == b""


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_other_methods_are_405_with_allow(healthcheck, method):
    res = healthcheck.request("/", method=method, status=405)
    assert res.headers["Allow"] == "GET, HEAD"
    res = healthcheck.request(
        "/", method=method, headers={"Accept": "application/json"}, status=405
    )
    assert res.headers["Allow"] == "GET, HEAD"
    envelope_of(res)


class DownDriver(storage.StorageDriver):
    def check(self):
        raise storage.Unavailable("connection refused to db.internal:5432")

    def _unused(self, *args, **kwargs):
        raise AssertionError("the health check only calls check()")

    create_user = get_user = list_users = update_user = delete_user = _unused
    get_metadata = set_metadata_item = delete_metadata_item = _unused


@pytest.fixture
def down(ctx, global_conf):
    ctx.storage = DownDriver(ctx.conf)
    return webtest.TestApp(health.healthcheck_factory(global_conf))


def test_storage_down_is_503_text(down):
    res = down.get("/", status=503)
    assert res.content_type == "text/plain"
    assert b"storage" in res.body
    assert b"db.internal" not in res.body


def test_storage_down_is_503_envelope_for_json(down):
    res = down.get(
        "/",
        headers={"Accept": "application/json"},
        status=503,
        extra_environ={"openstack.request_id": RID},
    )
    error = envelope_of(res)
    assert error["code"] == "myservice.service_unavailable"
    assert error["request_id"] == RID


def test_storage_down_head_is_503(down):
    assert down.head("/", status=503).body == b""


def test_disable_by_file(tmp_path, make_conf, ctx, global_conf):
    flag = tmp_path / "disabled"
    conf = make_conf(tmp_path, "memory", healthcheck={"disable_by_file_path": str(flag)})
    shared = ServiceContext(conf, MemoryDriver(conf))
    app = webtest.TestApp(health.healthcheck_factory({**global_conf, CONTEXT_KEY: shared}))
    app.get("/", status=200)
    flag.write_text("")
    res = app.get("/", status=503)
    assert b"disable" in res.body
    res = app.get("/", headers={"Accept": "application/json"}, status=503)
    assert "disable_by_file_path" in envelope_of(res)["detail"]
    flag.unlink()
    app.get("/", status=200)


def test_disable_file_from_the_paste_section(tmp_path, ctx, global_conf):
    flag = tmp_path / "off"
    flag.write_text("")
    app = webtest.TestApp(health.healthcheck_factory(global_conf, disable_by_file_path=str(flag)))
    app.get("/", status=503)


def test_unknown_paste_option_is_a_config_error(global_conf, ctx):
    with pytest.raises(conf_mod.ConfigError, match=r"\[app:healthcheck\].*disable_by_file"):
        health.healthcheck_factory(global_conf, disable_by_file="/x")
