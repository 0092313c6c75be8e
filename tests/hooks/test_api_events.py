"""End to end: the real v1 API fires the hooks after each committed change (audit on)."""

from __future__ import annotations

import json
from pathlib import Path

import webtest

from myservice.hooks import HookDispatcher
from myservice.wsgi import context as context_mod
from myservice.wsgi.app import api_v1_factory

from ..api.conftest import ADMIN, mount

REQUEST_ID = "openstack.request_id"  # the environ key the request_id filter sets


def _rid(n: int) -> dict[str, str]:
    return {REQUEST_ID: f"req-00000000-0000-4000-8000-00000000000{n}"}


def test_create_update_delete_are_audited_with_the_request_id(tmp_path: Path, make_conf):
    audit = tmp_path / "log" / "audit.jsonl"
    conf = make_conf(tmp_path, "memory", hooks={"disabled": "notify"}, audit={"path": str(audit)})
    ini = tmp_path / "api-paste.ini"
    ini.write_text("[DEFAULT]\n")
    global_conf = {"here": str(tmp_path), "__file__": str(ini), "config_file": str(conf.path)}
    ctx = context_mod.from_global_conf(global_conf)
    assert isinstance(ctx.hooks, HookDispatcher)
    # the application uses this context (as the urlmap composite shares one), so closing it
    # delivers what the API fired: hooks run after the response, in the dispatcher's threads
    global_conf[context_mod.CONTEXT_KEY] = ctx
    try:
        app = webtest.TestApp(mount("/v1", api_v1_factory(global_conf)))
        created = app.post_json(
            "/v1/users", {"user": {"name": "alice"}}, headers=ADMIN, extra_environ=_rid(1)
        )
        user_id = created.json["user"]["id"]
        app.patch_json(
            f"/v1/users/{user_id}",
            {"user": {"description": "hi"}},
            headers=ADMIN,
            extra_environ=_rid(2),
        )
        app.delete(f"/v1/users/{user_id}", headers=ADMIN, extra_environ=_rid(3))
        assert ctx.hooks.flush(30)
        flushed = audit.read_text(encoding="utf-8").count("\n")
    finally:
        ctx.close()  # closes the dispatcher, which delivers anything still queued
    assert flushed == 3
    lines = [json.loads(line) for line in audit.read_text(encoding="utf-8").splitlines()]
    assert [line["event"] for line in lines] == ["user.create", "user.update", "user.delete"]
    assert [line["request_id"] for line in lines] == [_rid(i)[REQUEST_ID] for i in (1, 2, 3)]
    for line in lines:
        assert (line["user_id"], line["project_id"]) == ("user-admin", "project-1")
        assert line["resource"]["id"] == user_id
    assert lines[0]["resource"] == created.json["user"]
    assert lines[1]["resource"]["description"] == "hi"
    assert lines[2]["resource"]["name"] == "alice"  # as it was before the delete
