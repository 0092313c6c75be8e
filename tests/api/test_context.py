"""``myservice.wsgi.context``: building the service context, and its start-up errors."""

from __future__ import annotations

import pytest

from myservice import conf as conf_mod
from myservice.storage import base as storage
from myservice.storage.memory import MemoryDriver
from myservice.wsgi import context as context_mod


def test_build_loads_and_starts_the_configured_driver(tmp_path, make_conf, monkeypatch):
    started = []
    monkeypatch.setattr(MemoryDriver, "start", lambda self: started.append(self))
    conf = make_conf(tmp_path, "memory")
    ctx = context_mod.build(conf)
    try:
        assert isinstance(ctx.storage, MemoryDriver)
        assert ctx.storage.conf is conf
        assert started == [ctx.storage]
        assert ctx.conf is conf
        assert callable(ctx.hooks.fire)
        # the default "[api] extensions = *" loads the built-in user_metadata extension
        assert [e.name for e in ctx.extensions] == ["user_metadata"]
    finally:
        ctx.close()


def test_unknown_driver_names_file_option_names_and_closest(tmp_path, make_conf):
    conf = make_conf(tmp_path, "memroy")
    with pytest.raises(conf_mod.ConfigError) as info:
        context_mod.build(conf)
    message = str(info.value)
    assert str(conf.path) in message
    assert "[storage] driver = memroy" in message
    assert "did you mean 'memory'?" in message
    for name in ("memory", "sqlite", "postgresql", "mysql"):
        assert name in message


def test_startup_error_becomes_a_config_error(tmp_path, make_conf, monkeypatch):
    def refuse(self):
        raise storage.StartupError("schema is at revision 1, expected 3: run myservice-manage")

    monkeypatch.setattr(MemoryDriver, "start", refuse)
    conf = make_conf(tmp_path, "memory")
    with pytest.raises(context_mod.StartupFailure) as info:
        context_mod.build(conf)
    assert isinstance(info.value, conf_mod.ConfigError)
    assert "run myservice-manage" in str(info.value)
    assert "[storage] driver = memory" in str(info.value)


def test_driver_that_fails_to_construct_is_a_config_error(tmp_path, make_conf, monkeypatch):
    def broken(self, conf):
        raise RuntimeError("client library missing")

    monkeypatch.setattr(MemoryDriver, "__init__", broken)
    with pytest.raises(conf_mod.ConfigError, match="client library missing"):
        context_mod.build(make_conf(tmp_path, "memory"))


def test_unknown_extension_stops_start_up_and_closes_the_driver(tmp_path, make_conf, monkeypatch):
    closed = []
    monkeypatch.setattr(MemoryDriver, "close", lambda self: closed.append(self))
    conf = make_conf(tmp_path, "memory", api={"extensions": "no_such_extension"})
    with pytest.raises(conf_mod.ConfigError, match="no_such_extension"):
        context_mod.build(conf)
    assert len(closed) == 1


def test_from_global_conf_reuses_a_shared_context(tmp_path, make_conf):
    conf = make_conf(tmp_path, "memory")
    shared = context_mod.ServiceContext(conf, MemoryDriver(conf))
    assert context_mod.from_global_conf({context_mod.CONTEXT_KEY: shared}) is shared


def test_from_global_conf_builds_from_config_file(tmp_path, make_conf):
    conf = make_conf(tmp_path, "memory", api={"default_limit": 7})
    ctx = context_mod.from_global_conf({"config_file": str(conf.path), "here": str(tmp_path)})
    try:
        assert isinstance(ctx.storage, MemoryDriver)
        assert ctx.conf.api.default_limit == 7
    finally:
        ctx.close()


def test_from_global_conf_uses_the_shared_config(tmp_path, make_conf):
    conf = make_conf(tmp_path, "memory")
    ctx = context_mod.from_global_conf({conf_mod.GLOBAL_CONF_KEY: conf})
    try:
        assert ctx.conf is conf
    finally:
        ctx.close()


URL_ENVIRONS = [
    {"wsgi.url_scheme": "http", "HTTP_HOST": "api.example:80", "SCRIPT_NAME": "/v1"},
    {"wsgi.url_scheme": "https", "HTTP_HOST": "api.example:443", "SCRIPT_NAME": "/v1"},
    {"wsgi.url_scheme": "https", "HTTP_HOST": "api.example:8443", "SCRIPT_NAME": "/a b/v1"},
    {"wsgi.url_scheme": "http", "HTTP_HOST": "[::1]:8790", "SCRIPT_NAME": "/v1"},
    {"wsgi.url_scheme": "http", "HTTP_HOST": "[::1]", "SCRIPT_NAME": ""},
    {"wsgi.url_scheme": "http", "SERVER_NAME": "node1", "SERVER_PORT": "8790"},
    {"wsgi.url_scheme": "http", "SERVER_NAME": "node1", "SERVER_PORT": "80", "SCRIPT_NAME": "/x"},
    {"wsgi.url_scheme": "https", "SERVER_NAME": "node1", "SERVER_PORT": "443"},
]


def _context(tmp_path):
    conf = conf_mod.defaults(str(tmp_path))
    return context_mod.ServiceContext(conf=conf, storage=MemoryDriver(conf))


@pytest.mark.parametrize("environ", URL_ENVIRONS)
def test_application_url_is_webobs_every_time(tmp_path, environ):
    import webob

    ctx = _context(tmp_path)
    environ = {"REQUEST_METHOD": "GET", "SERVER_NAME": "s", "SERVER_PORT": "1", **environ}
    expected = webob.Request(environ).application_url
    assert ctx.application_url(environ) == expected
    assert ctx.application_url(dict(environ)) == expected  # remembered: same answer


def test_application_url_memo_is_per_input_and_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(context_mod, "URL_MEMO_SIZE", 3)
    ctx = _context(tmp_path)
    base = {"REQUEST_METHOD": "GET", "wsgi.url_scheme": "http", "SERVER_NAME": "s"}
    seen = [
        ctx.application_url({**base, "HTTP_HOST": f"h{i}", "SERVER_PORT": "80"}) for i in range(7)
    ]
    assert seen == [f"http://h{i}" for i in range(7)]
    assert len(ctx._urls) <= 3
    # another SCRIPT_NAME or scheme is another answer, not a stale one
    assert ctx.application_url({**base, "HTTP_HOST": "h1", "SCRIPT_NAME": "/v1"}) == "http://h1/v1"
    assert ctx.application_url({**base, "HTTP_HOST": "h1", "wsgi.url_scheme": "https"}) == (
        "https://h1"
    )
    # a second context (a second app in the process) keeps its own memo
    assert _context(tmp_path)._urls == {}
