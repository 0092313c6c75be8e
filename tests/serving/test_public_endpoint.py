"""``[api] public_endpoint``: the links the API returns start with it, not the client's Host."""

from __future__ import annotations

from pathlib import Path

import pytest
import webtest
from paste.deploy import loadapp

from myservice import conf
from myservice.tokens import TokenStore

from .helpers import ETC

INI = ETC / "api-paste.ini"
HOSTILE = {"Host": "evil.example"}


def _app(tmp_path: Path, api_section: str) -> tuple[webtest.TestApp, object, str]:
    conf_file = tmp_path / "myservice.conf"
    conf_file.write_text(
        f"[DEFAULT]\nstate_path = {tmp_path / 'state'}\n\n[storage]\ndriver = memory\n\n"
        f"[api]\n{api_section}\n",
        encoding="utf-8",
    )
    token, _ = TokenStore(tmp_path / "state" / "tokens.json").create("u1", "p1", ["admin"])
    app = loadapp(f"config:{INI}", global_conf={"config_file": str(conf_file)})
    return webtest.TestApp(app), app, token


@pytest.fixture
def public(tmp_path):
    client, app, token = _app(tmp_path, "public_endpoint = https://api.example.com/compute/")
    yield client, token
    app.close()


def test_links_start_with_the_public_endpoint_whatever_the_host(public):
    client, token = public
    auth = {"X-Auth-Token": token, **HOSTILE}
    versions = client.get("/", headers=HOSTILE).json
    assert versions["versions"][0]["links"][0]["href"] == "https://api.example.com/compute/v1/"
    for name in ("a", "b"):
        res = client.post_json("/v1/users", {"user": {"name": name}}, headers=auth, status=201)
    assert res.headers["Location"] == (
        f"https://api.example.com/compute/v1/users/{res.json['user']['id']}"
    )
    page = client.get("/v1/users?limit=1", headers=auth).json
    assert page["links"][0]["href"].startswith("https://api.example.com/compute/v1/users?")


def test_without_it_links_follow_the_request(tmp_path):
    client, app, _ = _app(tmp_path, "")
    try:
        href = client.get("/", headers=HOSTILE).json["versions"][0]["links"][0]["href"]
        assert href == "http://evil.example/v1/"
    finally:
        app.close()


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("api.example.com", "expected an http:// or https:// URL with a host"),
        ("ftp://api.example.com", "expected an http:// or https:// URL with a host"),
        ("https://", "expected an http:// or https:// URL with a host"),
        ("https://api.example.com:https", "expected an http:// or https:// URL with a host"),
        ("https://api.example.com/?x=1", "and no user, query or fragment"),
        ("https://u:pw@api.example.com", "and no user, query or fragment"),
    ],
)
def test_a_bad_value_is_refused_naming_the_file_and_option(tmp_path, value, why):
    path = tmp_path / "myservice.conf"
    path.write_text(f"[api]\npublic_endpoint = {value}\n", encoding="utf-8")
    with pytest.raises(conf.ConfigError) as info:
        conf.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: [api] public_endpoint: expected an http:// or https://")
    assert why in message
    assert message.endswith(f"got {value!r}")


def test_with_it_the_client_host_does_not_fill_the_link_memo(public, tmp_path):
    client, token = public
    app = client.app
    for n in range(5):
        client.post_json(
            "/v1/users",
            {"user": {"name": f"memo-{n}"}},
            headers={"X-Auth-Token": token, "Host": f"h{n}.example"},
            status=201,
        )
    assert list(app.context._urls) == [("/v1",)]  # one entry, whatever the Host
