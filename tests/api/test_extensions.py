"""Loading API extensions: ``[api] extensions`` (``*``, a list, empty), names filtered before
import, unknown aliases at start-up, extensions that fail to import, initialise or add routes.

Third-party extensions are "installed" as fake distributions on a temporary ``sys.path``
entry (:class:`tests.plugins.conftest.FakeSite`).
"""

from __future__ import annotations

import importlib.metadata
import logging
import sys

import pytest
import webtest

from myservice import conf as conf_mod
from myservice.api.extensions import APIExtension, LoadedExtensions, load_extensions
from myservice.api.extensions.metadata import UserMetadataExtension
from myservice.plugins import discovery
from myservice.wsgi import context as context_mod
from myservice.wsgi.app import api_v1_factory
from tests.api.conftest import ADMIN, READER, envelope_of, mount
from tests.plugins.conftest import FakeSite

NS = "myservice.api.extensions"

GOOD = """
from myservice.api import policy
from myservice.api.extensions import APIExtension
from myservice.wsgi.reply import Reply

def hello(req, ctx, who):
    return Reply(200, {"hello": who, "greeting": ctx.conf.plugin_options("hello").get("word")})

class Hello(APIExtension):
    alias = "hello"
    name = "Hello"
    description = "Says hello."
    updated = "2024-06-01T00:00:00Z"

    def add_routes(self, router):
        router.add_route("GET", "/hello/{who}", hello, policy.READ)
"""


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A fake site-packages on sys.path, with an isolated plugin cache."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.setenv("MYSERVICE_PLUGIN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.syspath_prepend(str(root))
    discovery.clear_memo()
    yield FakeSite(root)
    discovery.clear_memo()


def app_for(conf: conf_mod.Config) -> tuple[webtest.TestApp, context_mod.ServiceContext]:
    global_conf = {"config_file": str(conf.path), "here": str(conf.path.parent)}
    ctx = context_mod.build(conf)
    global_conf[context_mod.CONTEXT_KEY] = ctx
    return webtest.TestApp(mount("/v1", api_v1_factory(global_conf))), ctx


def listed(app: webtest.TestApp) -> list[str]:
    return [e["alias"] for e in app.get("/v1/extensions", headers=READER).json["extensions"]]


def test_base_class_defaults(make_conf, tmp_path):
    conf = make_conf(tmp_path, "memory")
    ext = APIExtension(conf)
    assert ext.conf is conf
    assert ext.add_routes(object()) is None
    assert repr(UserMetadataExtension(conf)) == "<UserMetadataExtension alias='user_metadata'>"


def test_default_star_loads_user_metadata(make_conf, tmp_path):
    app, ctx = app_for(make_conf(tmp_path, "memory"))
    try:
        assert app.get("/v1/extensions", headers=READER).json == {
            "extensions": [
                {
                    "alias": "user_metadata",
                    "name": "User metadata",
                    "description": UserMetadataExtension.description,
                    "updated": "2024-05-01T00:00:00Z",
                }
            ]
        }
        shown = app.get("/v1/extensions/user_metadata", headers=READER).json["extension"]
        assert shown["name"] == "User metadata"
        assert isinstance(ctx.extensions[0].obj, UserMetadataExtension)
    finally:
        ctx.close()


def test_empty_list_loads_nothing_and_the_routes_are_gone(make_conf, tmp_path):
    app, ctx = app_for(make_conf(tmp_path, "memory", api={"extensions": ""}))
    try:
        assert listed(app) == []
        user = app.post_json("/v1/users", {"user": {"name": "a"}}, headers=ADMIN).json["user"]
        app.get(f"/v1/users/{user['id']}/metadata", headers=READER, status=404)
    finally:
        ctx.close()


def test_unknown_alias_is_a_config_error_with_file_option_names_and_closest(make_conf, tmp_path):
    conf = make_conf(tmp_path, "memory", api={"extensions": "user_metdata"})
    with pytest.raises(conf_mod.ConfigError) as info:
        context_mod.build(conf)
    message = str(info.value)
    assert str(conf.path) in message
    assert "[api] extensions" in message
    assert "'user_metdata' (did you mean 'user_metadata'?)" in message
    assert "installed in 'myservice.api.extensions': user_metadata" in message


def test_listed_order_is_kept_and_unlisted_extensions_are_not_imported(site, make_conf, tmp_path):
    good = site.module("good", GOOD)
    # importing this module would record it: it must never be imported
    trap = site.module("trap", "raise RuntimeError('the trap was imported')\n")
    site.install(
        "good-ext",
        "2.0",
        {NS: {"hello": f"{good}:Hello", "trap": f"{trap}:Nothing"}},
    )
    conf = make_conf(
        tmp_path,
        "memory",
        api={"extensions": "hello, user_metadata"},
        **{"plugin:hello": {"word": "hi"}},
    )
    app, ctx = app_for(conf)
    try:
        assert trap not in sys.modules
        assert listed(app) == ["hello", "user_metadata"]
        body = app.get("/v1/hello/ann", headers=READER).json
        assert body == {"hello": "ann", "greeting": "hi"}
    finally:
        ctx.close()


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ("raise ImportError('no module named shiny')\n", "ImportError: no module named shiny"),
        (
            GOOD.replace(
                "def add_routes",
                "def __init__(self, conf):\n"
                "        raise ValueError('[plugin:hello] word is required')\n\n"
                "    def add_routes",
            ),
            "ValueError: [plugin:hello] word is required",
        ),
        (
            GOOD.replace(
                'router.add_route("GET", "/hello/{who}", hello, policy.READ)',
                'router.add_route("GET", "/hello/{who}", hello, policy.READ)\n'
                '        raise RuntimeError("half-way")',
            ),
            "RuntimeError: half-way",
        ),
        (
            GOOD.replace('"/hello/{who}"', '"/users"'),
            "declared twice",
        ),
    ],
    ids=["import", "init", "add_routes", "route-clash"],
)
def test_a_failing_extension_is_logged_and_left_out(
    site, make_conf, tmp_path, caplog, source, words
):
    module = site.module("bad", source)
    site.install("shiny-ext", "3.1", {NS: {"hello": f"{module}:Hello"}})
    caplog.set_level(logging.DEBUG)
    app, ctx = app_for(make_conf(tmp_path, "memory"))
    try:
        assert listed(app) == ["user_metadata"]
        app.get("/v1/hello/ann", headers=READER, status=404)
        app.get("/v1/extensions/hello", headers=READER, status=404)
        # the core API and the other extensions still work
        app.get("/v1/users", headers=READER, status=200)
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert any("hello" in m and words in m and "shiny-ext" in m for m in errors), errors
    finally:
        ctx.close()


def test_load_failures_are_recorded(site, make_conf, tmp_path):
    module = site.module("bad", "raise ImportError('gone')\n")
    site.install("broken-ext", "1.0", {NS: {"broken": f"{module}:X"}})
    loaded = load_extensions(make_conf(tmp_path, "memory", api={"extensions": "broken"}))
    assert isinstance(loaded, LoadedExtensions)
    assert loaded.names() == []
    assert loaded.failed == {"broken": "ImportError: gone"}


def test_alias_comes_from_the_entry_point_name(site, make_conf, tmp_path, caplog):
    module = site.module("renamed", GOOD.replace('alias = "hello"', 'alias = "other"'))
    site.install("renamed-ext", "1.0", {NS: {"hello": f"{module}:Hello"}})
    app, ctx = app_for(make_conf(tmp_path, "memory", api={"extensions": "hello"}))
    try:
        assert listed(app) == ["hello"]
        assert any("declares alias 'other'" in r.getMessage() for r in caplog.records)
    finally:
        ctx.close()


def test_unknown_extension_answer_names_the_loaded_ones(make_conf, tmp_path):
    app, ctx = app_for(make_conf(tmp_path, "memory"))
    try:
        res = app.get("/v1/extensions/nope", headers=READER, status=404)
        assert "user_metadata" in envelope_of(res)["detail"]
    finally:
        ctx.close()


def _install_clash(site):
    module = site.module("clash", GOOD)
    site.install("acme-clash", "1.0", {NS: {"user_metadata": f"{module}:Hello"}})
    site.install("acme-hello", "1.0", {NS: {"hello": f"{module}:Hello"}})
    return module


@pytest.mark.parametrize("enabled", ["*", "user_metadata"])
def test_an_alias_provided_twice_refuses_to_start(site, make_conf, tmp_path, enabled):
    module = _install_clash(site)
    conf = make_conf(tmp_path, "memory", api={"extensions": enabled})
    with pytest.raises(conf_mod.ConfigError) as info:
        context_mod.build(conf)
    version = importlib.metadata.version("myservice")
    assert str(info.value) == (
        f"{conf.path}: [api] extensions: API extension 'user_metadata' is provided by more "
        f"than one installed package: user_metadata = {module}:Hello (from acme-clash 1.0); "
        "user_metadata = myservice.api.extensions.metadata:UserMetadataExtension (from "
        f"myservice {version}) (uninstall all but one of them, or leave the alias out of "
        "[api] extensions)"
    )
    # nothing was imported: the check reads entry points only
    assert module not in sys.modules


def test_a_clash_in_an_alias_not_enabled_is_no_error(site, make_conf, tmp_path):
    _install_clash(site)
    app, ctx = app_for(make_conf(tmp_path, "memory", api={"extensions": "hello"}))
    try:
        assert listed(app) == ["hello"]
    finally:
        ctx.close()


def _description_warnings(caplog):
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "myservice.api.extensions.loading" and r.levelno == logging.WARNING
    ]


def test_a_bad_description_is_warned_and_the_extension_still_loads(
    site, make_conf, tmp_path, caplog
):
    module = site.module(
        "sloppy",
        GOOD.replace('name = "Hello"', 'name = ""').replace(
            'updated = "2024-06-01T00:00:00Z"', 'updated = "last tuesday"'
        ),
    )
    site.install("sloppy-ext", "0.1", {NS: {"hello": f"{module}:Hello"}})
    caplog.set_level(logging.WARNING, logger="myservice.api.extensions")
    app, ctx = app_for(make_conf(tmp_path, "memory", api={"extensions": "hello"}))
    try:
        assert listed(app) == ["hello"]
        app.get("/v1/hello/ann", headers=READER, status=200)
    finally:
        ctx.close()
    origin = f"hello = {module}:Hello (from sloppy-ext 0.1)"
    assert _description_warnings(caplog) == [
        f"API extension {origin}: name is ''; expected a non-empty string (GET /v1/extensions "
        "shows it)",
        f"API extension {origin}: updated is 'last tuesday'; expected an ISO 8601 date or "
        "date-time such as '2024-05-01T00:00:00Z' (GET /v1/extensions shows it)",
    ]


def test_the_built_in_extension_describes_itself_well(make_conf, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="myservice.api.extensions")
    load_extensions(make_conf(tmp_path, "memory"))
    assert _description_warnings(caplog) == []
