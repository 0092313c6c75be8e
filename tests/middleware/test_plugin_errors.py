"""A broken third-party middleware plugin is one ConfigError line, never a traceback.

Every test builds the application from a real ini file in ``tmp_path`` with
``paste.deploy.loadapp`` (or ``myservice-api``), the plugins being real entry points of a
distribution ``acme-mw 1.2`` installed into a directory put on ``sys.path`` (and on
``PYTHONPATH`` for the subprocesses).  Also: ``[plugin:NAME]`` options of the service
configuration reach a middleware plugin as defaults, and ``myservice-api`` reports an
unexpected start-up exception in one line too.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from paste.deploy import loadapp
from webtest import TestApp

from myservice.cmd import api as api_cmd
from myservice.conf import ConfigError
from myservice.plugins import discovery
from myservice.wsgi.loader import load_app

BIN = Path(sys.executable).parent

PLUGIN_MODULE = """
from myservice.conf import ConfigError

SEEN = {}


def boom(global_conf, **local_conf):
    raise RuntimeError("boom")


def one_arg(app):
    return app


NOT_CALLABLE = 42


def returns_none(global_conf, **local_conf):
    return None


def filter_raises(global_conf, **local_conf):
    def wrap(app):
        raise RuntimeError("cannot wrap")

    return wrap


def filter_returns_none(global_conf, **local_conf):
    return lambda app: None


def filter_no_arg(global_conf, **local_conf):
    return lambda: None


def tag(global_conf, **local_conf):
    SEEN["global_conf"] = global_conf
    value = local_conf.get("tag")
    if value not in ("red", "green"):
        raise ConfigError(f"tag = {value}: expected red or green")
    return lambda app: Tagger(app, value)


def names_file(global_conf, **local_conf):
    raise ConfigError(f"{global_conf['__file__']} [filter:x]: tag: the plugin's own message")


class Tagger:
    def __init__(self, app, value):
        self.app = app
        self.value = value

    def __call__(self, environ, start_response):
        def tagged(status, headers, exc_info=None):
            return start_response(status, headers + [("X-Tag", self.value)], exc_info)

        return self.app(environ, tagged)


def broken_app(global_conf, **local_conf):
    raise RuntimeError("kaput")


def echo_app(global_conf, **local_conf):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"echo"]

    return app
"""

ENTRY_POINTS = """\
[myservice.middleware]
mw_boom = acme_mw:boom
mw_one_arg = acme_mw:one_arg
mw_int = acme_mw:NOT_CALLABLE
mw_none = acme_mw:returns_none
mw_filter_raises = acme_mw:filter_raises
mw_filter_none = acme_mw:filter_returns_none
mw_filter_no_arg = acme_mw:filter_no_arg
acme_tag = acme_mw:tag
mw_names_file = acme_mw:names_file
mw_nomod = acme_nosuchmod:factory
"""

#: the echo application behind the plugin filter [filter:x], in both ini files below
_ECHO_BEHIND_X = """\
[pipeline:{pipeline}]
pipeline = x echo

[app:echo]
paste.app_factory = acme_mw:echo_app

[filter:x]
use = egg:myservice#plugin
plugin = {{plugin}}
{{options}}
"""

PIPELINE_INI = "[DEFAULT]\n{defaults}\n\n" + _ECHO_BEHIND_X.format(pipeline="main")

URLMAP_INI = (
    "[DEFAULT]\nconfig_file = %(here)s/myservice.conf\n\n[composite:main]\n"
    "use = egg:myservice#urlmap\n/echo = echo_pipeline\n\n"
    + _ECHO_BEHIND_X.format(pipeline="echo_pipeline").replace("{plugin}", "acme_tag")
)

CONTRACT = (
    "expected a paste filter factory, factory(global_conf, **local_conf), returning a callable "
    "filter(app) that returns a WSGI application"
)


@pytest.fixture
def site(tmp_path, monkeypatch):
    """``acme-mw 1.2``, installed like pip would, on sys.path; returns its directory."""
    site = tmp_path / "site"
    (site / "acme_mw").mkdir(parents=True)
    (site / "acme_mw" / "__init__.py").write_text(PLUGIN_MODULE)
    dist = site / "acme_mw-1.2.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-mw\nVersion: 1.2\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.setenv(discovery._CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.syspath_prepend(str(site))
    discovery.clear_memo()
    yield site
    sys.modules.pop("acme_mw", None)
    discovery.clear_memo()


def write_ini(tmp_path, plugin, options="tag = red", defaults=""):
    ini = tmp_path / "api-paste.ini"
    ini.write_text(PIPELINE_INI.format(plugin=plugin, options=options, defaults=defaults))
    return ini


def build_error(ini) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        loadapp(f"config:{ini}")
    return err.value


# -- item 1: the factory, what it returns, the filter, what that returns -----------------------

#: plugin name, options of [filter:x], the message after "INI [filter:x]: plugin = NAME: ",
#: the type of the chained exception (None: nothing chained)
BROKEN = {
    "raises": (
        "mw_boom",
        "tag = red",
        "acme_mw:boom (from acme-mw 1.2) raised RuntimeError: boom; "
        f"{CONTRACT} (raising myservice.conf.ConfigError for a bad option)",
        RuntimeError,
    ),
    "wrong_signature": (
        "mw_one_arg",
        "tag = red",
        "acme_mw:one_arg (from acme-mw 1.2) cannot be called as "
        "factory(global_conf, **local_conf): got an unexpected keyword argument 'tag'; "
        f"{CONTRACT}",
        TypeError,
    ),
    "not_callable": (
        "mw_int",
        "tag = red",
        f"acme_mw:NOT_CALLABLE (from acme-mw 1.2) is 42 (type int), not callable; {CONTRACT}",
        None,
    ),
    "returns_none": (
        "mw_none",
        "",
        f"acme_mw:returns_none (from acme-mw 1.2) returned None, not a callable filter; {CONTRACT}",
        None,
    ),
    "filter_raises": (
        "mw_filter_raises",
        "",
        "the filter returned by acme_mw:filter_raises (from acme-mw 1.2) raised "
        f"RuntimeError: cannot wrap when applied to the next application; {CONTRACT} "
        "(raising myservice.conf.ConfigError for a bad option)",
        RuntimeError,
    ),
    "filter_returns_none": (
        "mw_filter_none",
        "",
        "the filter returned by acme_mw:filter_returns_none (from acme-mw 1.2) "
        f"returned None, not a WSGI application; {CONTRACT}",
        None,
    ),
    "filter_wrong_signature": (
        "mw_filter_no_arg",
        "",
        "the filter returned by acme_mw:filter_no_arg (from acme-mw 1.2) cannot be "
        f"called as filter(app): too many positional arguments; {CONTRACT}",
        TypeError,
    ),
    "own_config_error": (
        "acme_tag",
        "tag = blue",
        "tag = blue: expected red or green",
        ConfigError,
    ),
    "load_failure": (
        "mw_nomod",
        "",
        "the middleware plugin acme_nosuchmod:factory (from acme-mw 1.2) failed to "
        "load: ModuleNotFoundError: No module named 'acme_nosuchmod'",
        ModuleNotFoundError,
    ),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_plugin_is_one_config_error(site, tmp_path, case, caplog):
    plugin, options, detail, cause = BROKEN[case]
    ini = write_ini(tmp_path, plugin, options)
    with caplog.at_level(logging.DEBUG, logger="myservice.middleware"):
        error = build_error(ini)
    assert str(error) == f"{ini} [filter:x]: plugin = {plugin}: {detail}"
    if cause is None:
        assert error.__cause__ is None
    else:
        assert type(error.__cause__) is cause
    if cause not in (None, ConfigError):
        # its traceback is logged at DEBUG, by this module, with lazy arguments
        logged = [r for r in caplog.records if r.name == "myservice.middleware" and r.exc_info]
        assert logged and logged[-1].levelno == logging.DEBUG
        assert logged[-1].exc_info[1] is error.__cause__
        assert plugin in logged[-1].getMessage()


def test_plugin_config_error_that_names_the_file_is_kept_as_is(site, tmp_path):
    ini = write_ini(tmp_path, "mw_names_file")
    error = build_error(ini)
    assert str(error) == f"{ini} [filter:x]: tag: the plugin's own message"
    assert error.__cause__ is None  # the plugin's own exception, re-raised unchanged


def test_a_good_plugin_filter_is_the_plugin_s_own_app(site, tmp_path):
    """The check runs once at build time: the app in the pipeline is the plugin's object."""
    app = loadapp(f"config:{write_ini(tmp_path, 'acme_tag', 'tag = green')}")
    assert type(app).__name__ == "Tagger" and type(app).__module__ == "acme_mw"
    assert TestApp(app).get("/").headers["X-Tag"] == "green"


@pytest.mark.parametrize("case", ["raises", "wrong_signature", "not_callable", "returns_none"])
def test_myservice_api_prints_one_line_and_exits_2(site, tmp_path, case, capsys):
    plugin, options, detail, _ = BROKEN[case]
    ini = write_ini(tmp_path, plugin, options)
    assert api_cmd.main([str(ini), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err == f"myservice-api: error: {ini} [filter:x]: plugin = {plugin}: {detail}\n"


def _run_api(site: Path, tmp_path: Path, ini: Path, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    env[discovery._CACHE_DIR_ENV] = str(tmp_path / "cache")
    return subprocess.run(
        [str(BIN / "myservice-api"), *extra, "--port", "0", str(ini)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def test_myservice_api_subprocess_factory_raising(site, tmp_path):
    plugin, options, detail, _ = BROKEN["raises"]
    done = _run_api(site, tmp_path, write_ini(tmp_path, plugin, options))
    assert done.returncode == 2, done.stderr
    ini = (tmp_path / "api-paste.ini").resolve()
    assert done.stderr == f"myservice-api: error: {ini} [filter:x]: plugin = {plugin}: {detail}\n"


# -- item 3: [plugin:NAME] of the service configuration ---------------------------------------


def write_service_conf(tmp_path, plugin_section="[plugin:acme_tag]\ntag = green\n"):
    conf_file = tmp_path / "myservice.conf"
    conf_file.write_text(f"[storage]\ndriver = memory\n\n{plugin_section}")
    return conf_file


def _urlmap_app(tmp_path, options=""):
    ini = tmp_path / "api-paste.ini"
    ini.write_text(URLMAP_INI.format(options=options))
    return ini, load_app(ini)


def test_plugin_section_options_are_defaults_under_the_composite(site, tmp_path):
    write_service_conf(tmp_path)
    _, app = _urlmap_app(tmp_path)
    try:
        assert TestApp(app).get("/echo").headers["X-Tag"] == "green"
        import acme_mw

        from myservice.conf import Config

        seen = acme_mw.SEEN["global_conf"]  # the composite's shared objects reach the factory
        assert isinstance(seen["myservice.config"], Config)
        assert seen["myservice.context"] is app.context
    finally:
        app.close()


def test_filter_options_override_plugin_section_options(site, tmp_path):
    write_service_conf(tmp_path, "[plugin:acme_tag]\ntag = green\nshade = dark\n")
    _, app = _urlmap_app(tmp_path, "tag = red")
    try:
        assert TestApp(app).get("/echo").headers["X-Tag"] == "red"
    finally:
        app.close()


def test_plugin_section_options_from_config_file_without_composite(site, tmp_path):
    write_service_conf(tmp_path)
    ini = write_ini(tmp_path, "acme_tag", "", defaults="config_file = %(here)s/myservice.conf")
    assert TestApp(loadapp(f"config:{ini}")).get("/").headers["X-Tag"] == "green"


def test_plugin_error_says_which_options_came_from_the_plugin_section(site, tmp_path):
    conf_file = write_service_conf(tmp_path, "[plugin:acme_tag]\ntag = blue\n")
    ini = tmp_path / "api-paste.ini"
    ini.write_text(URLMAP_INI.format(options=""))
    with pytest.raises(ConfigError) as err:
        load_app(ini)
    assert str(err.value) == (
        f"{ini} [filter:x]: plugin = acme_tag: tag = blue: expected red or green "
        f"(options tag from {conf_file} [plugin:acme_tag])"
    )


def test_no_service_configuration_only_filter_options(site, tmp_path):
    error = build_error(write_ini(tmp_path, "acme_tag", ""))
    assert str(error) == (
        f"{tmp_path / 'api-paste.ini'} [filter:x]: plugin = acme_tag: tag = None: "
        "expected red or green"
    )


# -- item 4: any unexpected start-up exception -------------------------------------------------


def _broken_app_ini(tmp_path):
    ini = tmp_path / "api-paste.ini"
    ini.write_text("[app:main]\npaste.app_factory = acme_mw:broken_app\n")
    return ini


def test_unexpected_start_up_error_is_one_line(site, tmp_path, capsys):
    ini = _broken_app_ini(tmp_path)
    assert api_cmd.main([str(ini), "--port", "0"]) == 2
    assert capsys.readouterr().err == (
        f"myservice-api: error: {ini}: cannot build the application: RuntimeError: kaput "
        "(run with --debug for the traceback)\n"
    )


def test_unexpected_start_up_error_subprocess(site, tmp_path):
    ini = _broken_app_ini(tmp_path)
    done = _run_api(site, tmp_path, ini)
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        f"myservice-api: error: {ini}: cannot build the application: RuntimeError: kaput "
        "(run with --debug for the traceback)\n"
    )
    done = _run_api(site, tmp_path, ini, "--debug")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert "RuntimeError: kaput" in lines
    assert lines[-1] == (
        f"myservice-api: error: {ini}: cannot build the application: RuntimeError: kaput"
    )
