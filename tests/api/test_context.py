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
