"""plugin_filter_factory: filters by name from the myservice.middleware namespace."""

from __future__ import annotations

import sys
import textwrap

import pytest
from paste.deploy import loadapp
from webtest import TestApp

from myservice.conf import ConfigError
from myservice.middleware import plugin_filter_factory
from myservice.plugins import discovery
from tests.middleware.util import build, echo_app

PIPELINE_INI = """\
[DEFAULT]

[pipeline:main]
pipeline = {filters} echo

[app:echo]
paste.app_factory = tests.middleware.test_plugin:echo_factory

[filter:rid]
use = egg:myservice#plugin
plugin = request_id

[filter:limit]
use = egg:myservice#plugin
plugin = {limit_plugin}
max_request_body_size = 10
"""


def echo_factory(global_conf, **local_conf):
    return echo_app


def write_ini(tmp_path, filters="rid limit", limit_plugin="sizelimit"):
    ini = tmp_path / "api-paste.ini"
    ini.write_text(PIPELINE_INI.format(filters=filters, limit_plugin=limit_plugin))
    return ini


def test_builtin_filters_by_name_through_paste(tmp_path):
    app = TestApp(loadapp(f"config:{write_ini(tmp_path)}"))
    resp = app.post("/", b"0123456789")
    assert resp.json["openstack.request_id"] == resp.headers["X-OpenStack-Request-ID"]
    resp = app.post("/", b"0123456789x", status=413)
    assert "10 bytes" in resp.json["errors"][0]["detail"]


def test_unknown_name_names_file_section_existing_and_closest(tmp_path):
    ini = write_ini(tmp_path, limit_plugin="sizelimits")
    with pytest.raises(ConfigError) as err:
        loadapp(f"config:{ini}")
    message = str(err.value)
    assert str(ini) in message
    assert "[filter:limit]" in message
    assert "did you mean 'sizelimit'" in message
    for name in ("request_id", "catch_errors", "auth", "cors", "access_log"):
        assert name in message


def test_missing_plugin_option(paste_conf):
    with pytest.raises(ConfigError, match="plugin = NAME"):
        plugin_filter_factory(paste_conf)


def test_local_options_reach_the_plugin(paste_conf):
    with pytest.raises(ConfigError, match=r"max_request_body_size: expected an integer"):
        plugin_filter_factory(paste_conf, plugin="sizelimit", max_request_body_size="big")


@pytest.fixture
def third_party(tmp_path, monkeypatch):
    """A pip-installed-like distribution with a filter in our namespace, on sys.path."""
    site = tmp_path / "site"
    pkg = site / "thirdparty_filter"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(
        textwrap.dedent(
            """
            def filter_factory(global_conf, **local_conf):
                greeting = local_conf.get("greeting", "hi")

                def wrap(app):
                    def filtered(environ, start_response):
                        def sr(status, headers, exc_info=None):
                            headers.append(("X-Greeting", greeting))
                            return start_response(status, headers, exc_info)

                        return app(environ, sr)

                    return filtered

                return wrap
            """
        )
    )
    dist = site / "thirdparty_filter-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-filter\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[myservice.middleware]\ngreeter = thirdparty_filter:filter_factory\n"
    )
    monkeypatch.setenv(discovery._CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.syspath_prepend(str(site))
    discovery.clear_memo()
    yield
    sys.modules.pop("thirdparty_filter", None)
    discovery.clear_memo()


def test_third_party_filter_with_no_new_code(third_party, paste_conf):
    wrapped = plugin_filter_factory(paste_conf, plugin="greeter", greeting="hello")(echo_app)
    resp = TestApp(wrapped).get("/")
    assert resp.headers["X-Greeting"] == "hello"


def test_plugin_name_request_id_is_the_same_filter(paste_conf):
    from myservice.middleware import request_id

    wrapped = plugin_filter_factory(paste_conf, plugin="request_id")(echo_app)
    assert type(wrapped) is type(build(request_id, echo_app, paste_conf))
