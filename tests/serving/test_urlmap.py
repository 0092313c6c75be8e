"""The urlmap composite and the loader, with stub applications (no storage, no API).

Stub apps are referenced from a test ini with ``use = call:tests.serving.test_urlmap:...``;
the filters are the real ``egg:myservice#...`` ones.
"""

from __future__ import annotations

import json
import logging
import sys
import textwrap
import types

import pytest
import webtest

from myservice import conf
from myservice.middleware.request_id import is_request_id
from myservice.wsgi import loader, urlmap
from myservice.wsgi.context import StartupFailure
from myservice.wsgi.faults import REQUEST_ID_HEADER

SEEN: list[dict] = []  # filled by the stub factory, cleared by the fixture


def echo_factory(global_conf, **local_conf):
    """A stub app answering where it was mounted; records what its factory was given."""
    SEEN.append({"name": local_conf["name"], "global_conf": dict(global_conf)})

    def app(environ, start_response):
        body = json.dumps(
            {
                "app": local_conf["name"],
                "script_name": environ.get("SCRIPT_NAME", ""),
                "path_info": environ.get("PATH_INFO", ""),
            }
        ).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]

    return app


def _stub_section(section: str, name: str) -> str:
    """An ``[app:<section>]`` ini section served by :func:`echo_factory` as ``name``."""
    return f"[app:{section}]\nuse = call:tests.serving.test_urlmap:echo_factory\nname = {name}\n"


INI = (
    """\
[DEFAULT]
config_file = %(here)s/myservice.conf

[composite:main]
use = egg:myservice#urlmap
/ = root
/v1 = v1
/v1/special/ = special
/healthcheck = health

[pipeline:v1]
pipeline = request_id v1_app

"""
    + "\n".join(
        _stub_section(section, name)
        for section, name in (
            ("root", "root"),
            ("v1_app", "v1"),
            ("special", "special"),
            ("health", "health"),
        )
    )
    + """
[filter:request_id]
use = egg:myservice#request_id
"""
)

CONF = "[storage]\ndriver = memory\n"


@pytest.fixture(autouse=True)
def _clear_seen():
    SEEN.clear()
    yield
    SEEN.clear()


@pytest.fixture
def site(tmp_path):
    (tmp_path / "api-paste.ini").write_text(INI, encoding="utf-8")
    (tmp_path / "myservice.conf").write_text(CONF, encoding="utf-8")
    return tmp_path


def _app(site, ini_text=None, conf_text=None):
    if ini_text is not None:
        (site / "api-paste.ini").write_text(ini_text, encoding="utf-8")
    if conf_text is not None:
        (site / "myservice.conf").write_text(conf_text, encoding="utf-8")
    return loader.load_app(site / "api-paste.ini")


def test_prefixes_adjust_script_name_and_path_info(site):
    app = webtest.TestApp(_app(site))
    assert app.get("/").json == {"app": "root", "script_name": "", "path_info": "/"}
    assert app.get("/v1/users/42").json == {
        "app": "v1",
        "script_name": "/v1",
        "path_info": "/users/42",
    }
    assert app.get("/v1").json["path_info"] == ""
    # longest prefix first, a trailing slash in the key is ignored
    assert app.get("/v1/special/x").json == {
        "app": "special",
        "script_name": "/v1/special",
        "path_info": "/x",
    }
    assert app.get("/healthcheck").json["app"] == "health"


def test_script_name_of_a_mounted_application_is_kept(site):
    app = webtest.TestApp(_app(site), extra_environ={"SCRIPT_NAME": "/myservice"})
    got = app.get("/myservice/v1/users").json
    assert got["script_name"] == "/myservice/v1"
    assert got["path_info"] == "/users"


@pytest.mark.parametrize("path", ["/v10", "/nothing", "/healthcheckx/a", "/x/v1"])
def test_unknown_top_level_path_is_404_envelope_with_request_id(site, path):
    app = webtest.TestApp(_app(site))
    res = app.get(path, status=404)
    rid = res.headers[REQUEST_ID_HEADER]
    assert is_request_id(rid)
    error = res.json["errors"][0]
    assert error["status"] == 404
    assert error["code"] == "myservice.not_found"
    assert error["request_id"] == rid
    assert path in error["detail"]


@pytest.mark.parametrize(
    ("path", "suggestion"),
    [("/vl/users/42", "/v1/users/42"), ("/v10", "/v1"), ("/healthchek", "/healthcheck")],
)
def test_404_of_a_mistyped_prefix_names_the_closest(site, path, suggestion):
    detail = webtest.TestApp(_app(site)).get(path, status=404).json["errors"][0]["detail"]
    assert detail == (
        f"No resource at {path}; did you mean {suggestion}? See / for the API versions."
    )


def test_404_of_an_unrelated_path_only_points_to_the_versions(site):
    detail = webtest.TestApp(_app(site)).get("/x/v1", status=404).json["errors"][0]["detail"]
    assert detail == "No resource at /x/v1. See / for the API versions."


def test_404_ids_are_fresh_per_request(site):
    app = webtest.TestApp(_app(site))
    first = app.get("/nope", status=404).headers[REQUEST_ID_HEADER]
    second = app.get("/nope", status=404).headers[REQUEST_ID_HEADER]
    assert first != second


def test_head_404_has_no_body(site):
    res = webtest.TestApp(_app(site)).head("/nope", status=404)
    assert res.body == b""
    assert int(res.headers["Content-Length"]) > 0


def test_config_and_context_are_built_once_and_shared(site, monkeypatch):
    from myservice.wsgi import context

    real_build = context.build
    calls = []

    def counting_build(cfg):
        calls.append(cfg)
        return real_build(cfg)

    monkeypatch.setattr(context, "build", counting_build)
    app = _app(site)
    assert len(calls) == 1
    assert sorted(s["name"] for s in SEEN) == ["health", "root", "special", "v1"]
    configs = {id(s["global_conf"][conf.GLOBAL_CONF_KEY]) for s in SEEN}
    contexts = {id(s["global_conf"][urlmap.CONTEXT_KEY]) for s in SEEN}
    assert configs == {id(calls[0])}
    assert contexts == {id(app.context)}
    assert calls[0].storage.driver == "memory"
    app.close()


def test_two_applications_share_nothing(site):
    first = _app(site)
    seen_first = list(SEEN)
    SEEN.clear()
    second = _app(site)
    assert first.context is not second.context
    assert first.context.storage is not second.context.storage
    a = {id(s["global_conf"][conf.GLOBAL_CONF_KEY]) for s in seen_first}
    b = {id(s["global_conf"][conf.GLOBAL_CONF_KEY]) for s in SEEN}
    assert a.isdisjoint(b)


class _FakeLoader:
    """What the composite needs of Paste Deploy's loader: get_app(name, global_conf)."""

    def __init__(self):
        self.calls = []

    def get_app(self, name, global_conf):
        self.calls.append((name, global_conf))
        return echo_factory(global_conf, name=name)


def test_injected_config_and_context_are_used_as_given(site):
    cfg = conf.load(site / "myservice.conf")
    marker = object()
    fake = _FakeLoader()
    global_conf = {
        "__file__": str(site / "api-paste.ini"),
        conf.GLOBAL_CONF_KEY: cfg,
        urlmap.CONTEXT_KEY: marker,
    }
    app = urlmap.urlmap_factory(fake, global_conf, **{"/": "a", "/b": "b"})
    assert app.context is marker
    assert sorted(name for name, _ in fake.calls) == ["a", "b"]
    for _, passed in fake.calls:
        assert passed[urlmap.CONTEXT_KEY] is marker
        assert passed[conf.GLOBAL_CONF_KEY] is cfg


def test_load_app_refuses_non_string_global_conf(site):
    with pytest.raises(TypeError, match="must be strings"):
        loader.load_app(site / "api-paste.ini", global_conf={"x": object()})


def test_global_conf_config_file_overrides_the_ini_default(site, tmp_path_factory):
    other = tmp_path_factory.mktemp("other") / "other.conf"
    other.write_text("[DEFAULT]\nstate_path = /tmp/elsewhere\n[storage]\ndriver = memory\n")
    loader.load_app(site / "api-paste.ini", global_conf={"config_file": str(other)})
    cfg = SEEN[0]["global_conf"][conf.GLOBAL_CONF_KEY]
    assert cfg.path == other
    assert str(cfg.state_path) == "/tmp/elsewhere"


# -- start-up errors ------------------------------------------------------------------------


def _error(site, ini_text=None, conf_text=None) -> str:
    with pytest.raises(conf.ConfigError) as info:
        _app(site, ini_text, conf_text)
    message = str(info.value)
    assert "\n" not in message
    assert "Traceback" not in message
    return message


def test_misspelled_filter_names_file_section_known_names_and_closest(site):
    ini = INI.replace("use = egg:myservice#request_id", "use = egg:myservice#requst_id")
    message = _error(site, ini)
    ini_path = str((site / "api-paste.ini").resolve())
    assert message.startswith(f"{ini_path} [filter:request_id]: use = egg:myservice#requst_id:")
    assert "did you mean 'request_id'?" in message
    assert "namespace myservice.middleware" in message
    for name in ("auth", "catch_errors", "cors", "sizelimit", "request_id"):
        assert name in message.split("known: ", 1)[1]


def test_pipeline_naming_a_missing_filter_section(site):
    ini = INI.replace("pipeline = request_id v1_app", "pipeline = requestid v1_app")
    message = _error(site, ini)
    assert "[pipeline:v1]" in message
    assert "filter 'requestid' has no [filter:requestid] section" in message
    assert "did you mean 'request_id'?" in message


def test_composite_naming_a_missing_application(site):
    ini = INI.replace("/healthcheck = health", "/healthcheck = healt")
    message = _error(site, ini)
    assert "[composite:main]" in message
    assert "application 'healt'" in message
    assert "did you mean 'health'?" in message


def test_unknown_application_entry_point(site):
    ini = INI + "\n[app:versions]\nuse = egg:myservice#versionz\n"
    ini = ini.replace("/ = root", "/ = versions")
    message = _error(site, ini)
    assert "[app:versions]: use = egg:myservice#versionz: no application 'versionz'" in message
    assert "did you mean 'versions'?" in message


def test_uninstalled_distribution(site):
    ini = INI.replace("use = egg:myservice#request_id", "use = egg:nosuchdist_xyz#request_id")
    message = _error(site, ini)
    assert "[filter:request_id]" in message
    assert "distribution 'nosuchdist_xyz' is not installed" in message


def test_bad_prefix(site):
    message = _error(site, INI.replace("/v1 = v1", "v1 = v1"))
    assert "[composite:main]" in message
    assert "option 'v1': expected a path prefix" in message


def test_unknown_storage_driver(site):
    message = _error(site, conf_text="[storage]\ndriver = sqlit\n")
    assert str((site / "myservice.conf").resolve()) in message
    assert "[storage] driver = sqlit: no such storage driver; did you mean 'sqlite'?" in message


def test_bad_config_value(site):
    message = _error(site, conf_text="[storage]\ndriver = memory\npool_size = lots\n")
    assert "[storage] pool_size: expected an integer, got 'lots'" in message


def test_unknown_config_option(site):
    message = _error(site, conf_text="[storage]\ndriver = memory\npoolsize = 3\n")
    assert "did you mean 'pool_size'?" in message


def test_missing_config_file(site):
    (site / "myservice.conf").unlink()
    message = _error(site)
    assert message == f"{(site / 'myservice.conf').resolve()}: configuration file not found"


def test_missing_ini_file(tmp_path):
    with pytest.raises(conf.ConfigError) as info:
        loader.load_app(tmp_path / "nope.ini")
    assert str(info.value) == f"{tmp_path / 'nope.ini'}: paste deploy file not found"


def test_explain_leaves_unknown_errors_on_one_line(tmp_path):
    err = loader.explain(LookupError("something\n  odd"), str(tmp_path / "x.ini"))
    assert str(err) == f"{tmp_path / 'x.ini'}: cannot build the application: something odd"


def test_misspelled_composite_is_explained_by_load_app(site):
    message = _error(site, INI.replace("egg:myservice#urlmap", "egg:myservice#urlmapp"))
    assert "[composite:main]: use = egg:myservice#urlmapp: no application 'urlmapp'" in message
    assert "did you mean 'urlmap'?" in message


def test_ini_text_is_valid_for_dedent():
    # guard: the ini above must start with [DEFAULT] (Paste Deploy reads it as is)
    assert textwrap.dedent(INI) == INI


class _FakeBadCommand(Exception):
    """Stands for PasteScript's BadCommand: __init__(message, exit_code=2)."""

    def __init__(self, message, exit_code=2):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def test_for_runner_is_a_no_op_without_a_runner(monkeypatch):
    monkeypatch.delitem(sys.modules, "paste.script.command", raising=False)
    monkeypatch.delitem(sys.modules, "gunicorn.errors", raising=False)
    exc = conf.ConfigError("etc/myservice.conf: bad")
    assert loader.for_runner(exc) is exc


def test_for_runner_copies_into_the_runners_classes(monkeypatch):
    paste_cmd = types.ModuleType("paste.script.command")
    paste_cmd.BadCommand = _FakeBadCommand
    gunicorn_errors = types.ModuleType("gunicorn.errors")
    gunicorn_errors.AppImportError = type("AppImportError", (Exception,), {})
    monkeypatch.setitem(sys.modules, "paste.script.command", paste_cmd)
    monkeypatch.setitem(sys.modules, "gunicorn.errors", gunicorn_errors)
    cause = OSError("disk")
    exc = StartupFailure("etc/myservice.conf: [storage] driver = sqlite: cannot start")
    exc.__cause__ = cause
    copy = loader.for_runner(exc)
    assert isinstance(copy, StartupFailure)  # except ConfigError / StartupFailure still work
    assert isinstance(copy, _FakeBadCommand)
    assert isinstance(copy, gunicorn_errors.AppImportError)
    assert type(copy).__name__ == "StartupFailure"
    assert str(copy) == copy.message == str(exc)
    assert copy.exit_code == 2
    assert copy.__cause__ is cause
    assert loader.for_runner(copy) is copy  # already one: kept


# -- a name of the wrong kind, and ini syntax errors ------------------------------------------


def test_pipeline_ending_in_a_filter_says_the_last_name_must_be_an_application(site):
    message = _error(site, INI.replace("pipeline = request_id v1_app", "pipeline = request_id"))
    ini_path = (site / "api-paste.ini").resolve()
    assert message == (
        f"{ini_path} [pipeline:v1]: pipeline = request_id: the last name of a pipeline must "
        "be an application, but 'request_id' is a filter ([filter:request_id]); end the "
        "pipeline with an application (defined: health, main, root, special, v1, v1_app)"
    )


def test_application_before_the_end_of_a_pipeline_is_named_as_such(site):
    ini = INI.replace("pipeline = request_id v1_app", "pipeline = root request_id v1_app")
    message = _error(site, ini)
    ini_path = (site / "api-paste.ini").resolve()
    assert message == (
        f"{ini_path} [pipeline:v1]: pipeline = root request_id v1_app: 'root' is an "
        "application ([app:root]): only the last name of a pipeline may be an application, "
        "every name before it must be a filter (defined filters: request_id)"
    )


def test_composite_naming_a_filter(site):
    message = _error(site, INI.replace("/healthcheck = health", "/healthcheck = request_id"))
    ini_path = (site / "api-paste.ini").resolve()
    assert message == (
        f"{ini_path} [composite:main]: 'request_id' is a filter ([filter:request_id]), not an "
        "application; name an application or a pipeline "
        "(defined: health, main, root, special, v1, v1_app)"
    )


def test_ini_line_without_equals_names_the_file_as_text_line_and_section(site):
    ini = INI.replace("[pipeline:v1]\n", "[pipeline:v1]\nbogus line\n")
    lineno = ini.splitlines().index("bogus line") + 1
    message = _error(site, ini)
    ini_path = (site / "api-paste.ini").resolve()
    assert message == (
        f"{ini_path}: line {lineno} [pipeline:v1]: 'bogus line' is neither a [section] "
        "header nor a 'name = value' line (a value continued from the line above is indented)"
    )
    assert "PosixPath" not in message


def test_ini_header_without_closing_bracket_is_named_with_the_fix(site):
    # '[filter:request_id' reads as the option '[filter' of [app:health], so its 'use'
    # line is a duplicate: the message must point at the broken header, not at 'use'
    ini = INI.replace("[filter:request_id]", "[filter:request_id")
    broken = ini.splitlines().index("[filter:request_id") + 1
    message = _error(site, ini)
    ini_path = (site / "api-paste.ini").resolve()
    assert message == (
        f"{ini_path}: line {broken}: '[filter:request_id' is not a section header; did you "
        f"mean [filter:request_id]? (the lines after it are read as part of [app:health], "
        f"where line {broken + 1} sets 'use' a second time)"
    )


def test_ini_text_before_the_first_section(site):
    message = _error(site, "oops\n" + INI)
    ini_path = (site / "api-paste.ini").resolve()
    assert message == (
        f"{ini_path}: line 1: 'oops' comes before the first [section] header; "
        "expected a [section] line first"
    )


def test_config_file_syntax_error_names_file_once_with_line(site):
    message = _error(site, conf_text="[storage]\ndriver = memory\nbogus\n")
    conf_path = (site / "myservice.conf").resolve()
    assert message == (
        f"{conf_path}: line 3 [storage]: 'bogus' is neither a [section] header nor a "
        "'name = value' line (a value continued from the line above is indented)"
    )


def test_default_limit_above_max_limit_is_refused(site):
    message = _error(site, conf_text=CONF + "[api]\nmax_limit = 10\ndefault_limit = 100\n")
    conf_path = (site / "myservice.conf").resolve()
    assert message == (
        f"{conf_path}: [api] default_limit = 100 is larger than max_limit = 10: default_limit "
        "must be at most max_limit; set default_limit to 10 or less, or raise max_limit"
    )


def test_default_default_limit_above_max_limit_says_it_is_the_default(site):
    message = _error(site, conf_text=CONF + "[api]\nmax_limit = 10\n")
    conf_path = (site / "myservice.conf").resolve()
    assert message == (
        f"{conf_path}: [api] default_limit = 100 (the default) is larger than max_limit = 10: "
        "default_limit must be at most max_limit; set default_limit to 10 or less, or raise "
        "max_limit"
    )


def test_default_limit_equal_to_max_limit_is_accepted(site):
    app = _app(site, conf_text=CONF + "[api]\nmax_limit = 10\ndefault_limit = 10\n")
    try:
        api = app.context.conf.api
        assert (api.default_limit, api.max_limit) == (10, 10)
    finally:
        app.close()


def test_a_plugin_section_no_plugin_is_called_is_warned(site, caplog):
    caplog.set_level(logging.WARNING, logger="myservice.wsgi.plugin_sections")
    conf_text = (
        CONF + "\n[plugin:notfy]\nx = 1\n\n[plugin:audit]\nx = 1\n\n[plugin:sqlite]\nx = 1\n"
        "\n[plugin:user_metadata]\nx = 1\n\n[plugin:request_id]\nx = 1\n"
    )
    app = _app(site, conf_text=conf_text)
    app.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    # a hook (by its name), a driver, an extension and a filter (by their entry-point names)
    # are plugins; only the typo is warned
    assert warnings == [
        f"{site / 'myservice.conf'} [plugin:notfy]: no installed plugin is called 'notfy', so "
        "no plugin reads this section; did you mean 'notify'?"
    ]


@pytest.mark.parametrize(
    ("path", "shown"), [("/caf%C3%A9", "/café"), ("/%FF", "/%FF"), ("/a%0Ab", "/a%0Ab")]
)
def test_404_of_a_non_ascii_top_level_path_shows_it_as_sent(site, path, shown):
    res = webtest.TestApp(_app(site)).get(path, status=404)
    assert json.loads(res.body)["errors"][0]["detail"] == (
        f"No resource at {shown}. See / for the API versions."
    )
