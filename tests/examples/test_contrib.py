"""``examples/myservice_contrib`` pip-installed next to myservice and enabled by configuration
only: one plugin per namespace, served over HTTP by ``myservice-api``.

It uses the session's examples virtual environment (``tests/examples/conftest.py``) and adds
myservice's runtime dependencies, pytest and ``myservice-contrib`` to it.  A copy of ``etc/``
is edited the way an operator would (``[storage] driver = jsonfile``, ``[plugin:...]``
sections, a ``[filter:server_timing]`` in the pipeline); the storage conformance suite is then
run inside that environment against ``jsonfile``.
"""

from __future__ import annotations

import configparser
import contextlib
import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.examples.conftest import REPO, Venv
from tests.serving import helpers

pytestmark = pytest.mark.slow

PLUGINS = {
    ("myservice.storage", "jsonfile", "myservice_contrib.jsonfile:JSONFileDriver"),
    ("myservice.middleware", "server_timing", "myservice_contrib.server_timing:filter_factory"),
    ("myservice.hooks", "user.create", "myservice_contrib.counter:ContribCounter"),
    ("myservice.api.extensions", "user_notes", "myservice_contrib.notes:UserNotesExtension"),
}


@pytest.fixture(scope="session")
def contrib_venv(venv: Venv) -> Venv:
    """The examples venv plus myservice's dependencies, pytest and myservice-contrib."""
    venv.pip("install", "--no-build-isolation", "-e", str(REPO), "pytest>=7.4")
    venv.pip("install", "--no-build-isolation", str(venv.src / "myservice_contrib"))
    return venv


def bin_of(venv: Venv, name: str) -> str:
    return str(venv.python.parent / name)


def _eventually_reads(path: Path, within: float = 30.0) -> str:
    """The text of ``path`` once it has any, polling up to ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        if path.exists() and path.read_text(encoding="utf-8"):
            return path.read_text(encoding="utf-8")
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} was not written within {within} s")
        time.sleep(0.05)


def configure(etc: Path, state: Path) -> dict[str, Path]:
    """Enable the four plugins in ``etc/myservice.conf`` and ``etc/api-paste.ini``."""
    paths = {"users": state / "contrib-users.json", "counter": state / "created.log"}
    conf = etc / "myservice.conf"
    text = conf.read_text(encoding="utf-8")
    assert re.search(r"(?m)^driver = sqlite$", text), "etc/myservice.conf changed shape"
    text = re.sub(r"(?m)^driver = sqlite$", "driver = jsonfile", text)
    text += (
        f"\n[plugin:jsonfile]\npath = {paths['users']}\n"
        f"\n[plugin:contrib_counter]\npath = {paths['counter']}\n"
    )
    conf.write_text(text, encoding="utf-8")

    ini = etc / "api-paste.ini"
    text = ini.read_text(encoding="utf-8")
    parser = configparser.RawConfigParser()
    parser.read_string(text)
    pipeline = parser.get("pipeline:api_v1_pipeline", "pipeline")
    line = f"pipeline = {pipeline}\n"
    assert text.count(line) == 1, "etc/api-paste.ini changed shape"
    text = text.replace(line, f"pipeline = server_timing {pipeline}\n")
    text += "\n[filter:server_timing]\nuse = egg:myservice#plugin\nplugin = server_timing\n"
    ini.write_text(text, encoding="utf-8")
    return paths


@contextlib.contextmanager
def serve(venv: Venv, ini: Path, cwd: Path) -> Iterator[helpers.Server]:
    port = helpers.free_port()
    command = [bin_of(venv, "myservice-api"), "--port", str(port), str(ini)]
    log = cwd / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            command,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=venv.env(MYSERVICE_PLUGIN_CACHE_DIR=str(cwd / "plugin-cache")),
            start_new_session=True,
        )
    try:
        helpers.wait_until(lambda: helpers.answers(port), proc, log, " ".join(command))
        yield helpers.Server(proc, port, log)
    finally:
        helpers.stop(proc)


def _contrib_rows(venv: Venv, tmp_path: Path, *extra: str) -> dict[tuple, dict]:
    out = venv.run(
        bin_of(venv, "myservice-plugins"),
        "list",
        "--json",
        *extra,
        MYSERVICE_PLUGIN_CACHE_DIR=str(tmp_path / "cache"),
    ).stdout
    return {
        (ns["namespace"], p["name"], p["target"]): p
        for ns in json.loads(out)["namespaces"]
        for p in ns["plugins"]
        if p["distribution"] == "myservice-contrib"
    }


def test_plugins_are_listed_with_their_distribution(contrib_venv, tmp_path):
    etc = helpers.copy_etc(tmp_path / "etc")
    configure(etc, tmp_path / "state")
    found = _contrib_rows(contrib_venv, tmp_path, "--config-file", str(etc / "myservice.conf"))
    assert set(found) == PLUGINS
    assert {(p["distribution"], p["version"], p["loads"]) for p in found.values()} == {
        ("myservice-contrib", "1.0.0", True)
    }


def test_a_hook_its_configuration_refuses_is_listed_as_failing(contrib_venv, tmp_path):
    # without [plugin:contrib_counter] path the hook refuses to start, and the service runs
    # without it: the listing says so, as for an extension
    found = _contrib_rows(contrib_venv, tmp_path)
    counter = found[("myservice.hooks", "user.create", "myservice_contrib.counter:ContribCounter")]
    assert counter["status"] == "failed"
    assert counter["error"].startswith("HookConfigError: ")
    assert "[plugin:contrib_counter] path: required" in counter["error"]


def test_every_plugin_works_when_enabled_by_configuration(contrib_venv, tmp_path):
    etc = helpers.copy_etc(tmp_path / "etc")
    paths = configure(etc, tmp_path / "state")
    token = contrib_venv.run(
        bin_of(contrib_venv, "myservice-manage"),
        "--config-file",
        str(etc / "myservice.conf"),
        "token",
        "create",
        "--user-id",
        "contrib-admin",
        "--project-id",
        "contrib",
        "--role",
        "admin",
    ).stdout.splitlines()[0]
    with serve(contrib_venv, etc / "api-paste.ini", tmp_path) as server:
        client = server.client(token)
        created = client.request("POST", "/v1/users", {"user": {"name": "contrib-alice"}})
        assert created.status == 201, created.body
        user = created.json["user"]
        # middleware: the filter named only in api-paste.ini timed the request
        assert re.fullmatch(r"app;dur=\d+\.\d{3}", created.headers["server-timing"])
        # storage driver: the user is in the JSON file named by [plugin:jsonfile] path
        stored = json.loads(paths["users"].read_text(encoding="utf-8"))
        assert [u["name"] for u in stored["users"]] == ["contrib-alice"]
        assert stored["users"][0]["id"] == user["id"]
        # hook: one line for the create; hooks run after the response (asynchronously), so
        # wait for it with a generous bound
        assert _eventually_reads(paths["counter"]) == f"user.create {user['id']}\n"
        # API extension: listed, and its resource works (stored through the driver)
        listed = client.request("GET", "/v1/extensions")
        assert [e["alias"] for e in listed.json["extensions"]] == ["user_metadata", "user_notes"]
        notes = f"/v1/users/{user['id']}/notes"
        assert client.request("GET", notes).status == 404
        put = client.request("PUT", notes, {"note": {"text": "likes tea"}})
        assert put.status == 200, put.body
        got = client.request("GET", notes)
        assert got.json == {"note": {"user_id": user["id"], "text": "likes tea"}}
        bad = client.request("PUT", notes, {"note": {"text": ""}})
        assert bad.status == 400 and "/note/text" in bad.json["errors"][0]["detail"]
        stored = json.loads(paths["users"].read_text(encoding="utf-8"))
        assert stored["users"][0]["metadata"] == {"contrib.note": "likes tea"}
        # the built-in extension over the same driver
        meta = client.request("PUT", f"/v1/users/{user['id']}/metadata/k", {"meta": {"k": "v"}})
        assert meta.status == 200, meta.body
        assert client.request("GET", f"/v1/users/{user['id']}/metadata").json == {
            "metadata": {"contrib.note": "likes tea", "k": "v"}
        }
        assert client.request("DELETE", notes).status == 204
        assert client.request("GET", "/healthcheck").status == 200
        # a driver that vouches a failed write changed nothing (jsonfile: its file could not be
        # read) gets the plain 503, not "outcome unknown"
        paths["users"].write_text("not a jsonfile document", encoding="utf-8")
        down = client.request("POST", "/v1/users", {"user": {"name": "contrib-bob"}})
        assert down.status == 503, down.body
        assert down.json["errors"][0]["code"] == "myservice.service_unavailable"
        assert paths["users"].read_text(encoding="utf-8") == "not a jsonfile document"
        client.close()


def test_jsonfile_passes_the_storage_conformance_suite(contrib_venv, tmp_path):
    done = subprocess.run(
        [
            str(contrib_venv.python),
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-v",
            "-k",
            "jsonfile",
            str(REPO / "tests" / "storage" / "test_conformance.py"),
        ],
        cwd=REPO,
        env=contrib_venv.env(MYSERVICE_PLUGIN_CACHE_DIR=str(tmp_path / "cache")),
        capture_output=True,
        text=True,
    )
    report = f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    assert done.returncode == 0, report
    ran = re.findall(r"::(\w+)\[jsonfile\] (\w+)", done.stdout)
    assert len(ran) >= 20, report
    assert {outcome for _name, outcome in ran} == {"PASSED"}, report
