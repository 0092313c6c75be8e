"""``myservice.wsgi.context``: building the service context, and its start-up errors."""

from __future__ import annotations

import importlib
import itertools
import logging
import os
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from myservice import conf as conf_mod
from myservice.storage import base as storage
from myservice.storage.memory import MemoryDriver
from myservice.wsgi import context as context_mod
from tests.conftest import write_conf


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


def test_driver_message_naming_the_config_file_names_it_once(tmp_path, make_conf):
    conf = make_conf(tmp_path, "sqlite", "notaurl")
    with pytest.raises(context_mod.StartupFailure) as info:
        context_mod.build(conf)
    assert str(info.value) == (
        f"{conf.path}: [storage] driver = sqlite: the driver cannot start: [storage] "
        "connection: not a valid database URL; expected the form "
        "sqlite:////var/lib/myservice/myservice.sqlite"
    )


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


# -- third-party storage drivers: the contract is checked once, at start-up ------------------
#
# Each test "installs" a distribution acme-storage 1.2.3 registering ``[storage] driver = acme``
# in ``myservice.storage``: a ``*.dist-info`` directory (METADATA, entry_points.txt) and a
# module on a temporary ``sys.path`` entry, found by the real entry-point discovery.

_sites = itertools.count()

#: one line per method of a complete driver: ``DRIVER_METHODS`` order
DUCK_METHODS = {
    "start": "def start(self): pass",
    "close": "def close(self): CLOSED.append(self)",
    "check": "def check(self): pass",
    "create_user": "def create_user(self, values): return values",
    "get_user": "def get_user(self, user_id): raise NotFound(user_id)",
    "list_users": "def list_users(self, limit, marker=None, name=None): return []",
    "update_user": "def update_user(self, user_id, values): raise NotFound(user_id)",
    "delete_user": "def delete_user(self, user_id): raise NotFound(user_id)",
    "get_metadata": "def get_metadata(self, user_id): raise NotFound(user_id)",
    "set_metadata_item": "def set_metadata_item(self, user_id, key, value): raise NotFound(key)",
    "delete_metadata_item": "def delete_metadata_item(self, user_id, key): raise NotFound(key)",
}

ALL_METHODS = (
    "start, close, check, create_user, get_user, list_users, update_user, delete_user, "
    "get_metadata, set_metadata_item, delete_metadata_item"
)


def driver_class(
    name: str,
    base: str = "",
    init: str = "def __init__(self, conf): self.conf = conf",
    omit: tuple[str, ...] = (),
    **replace: str,
) -> str:
    """The source of class ``name(base)`` with ``init`` and every :data:`DUCK_METHODS` line
    except ``omit``, ``replace[method]`` replacing a method's line."""
    lines = [f"class {name}({base}):", f"    {init}"]
    for method, line in DUCK_METHODS.items():
        if method not in omit:
            lines.append("    " + replace.get(method, line))
    return "\n".join(lines) + "\n"


class DriverSite:
    """A temporary ``sys.path`` entry where a test installs the ``acme`` storage driver."""

    def __init__(self, root: Path, tmp_path: Path) -> None:
        self.root = root
        self.module = f"fakestorage{next(_sites)}_acme"  # unique: sys.modules never leaks
        self.conf = write_conf(tmp_path, "acme")
        self.prefix = f"{self.conf.path}: [storage] driver = acme"

    def install(self, source: str, target: str) -> str:
        """Write the module (``CLOSED``, ``CONSTRUCTED`` lists and the storage exceptions are
        predefined in it) and register ``acme = <module>:<target>``; return
        ``<module>:<target> (from acme-storage 1.2.3)``."""
        header = (
            "from myservice.storage.base import NotFound, StartupError, StorageDriver, "
            "Unavailable\nCLOSED = []\nCONSTRUCTED = []\n"
        )
        (self.root / f"{self.module}.py").write_text(header + textwrap.dedent(source))
        info = self.root / "acme_storage-1.2.3.dist-info"
        info.mkdir(exist_ok=True)
        metadata = "Metadata-Version: 2.1\nName: acme-storage\nVersion: 1.2.3\n"
        (info / "METADATA").write_text(metadata)
        (info / "entry_points.txt").write_text(
            f"[myservice.storage]\nacme = {self.module}:{target}\n"
        )
        importlib.invalidate_caches()
        return f"{self.module}:{target} (from acme-storage 1.2.3)"

    def imported(self) -> Any:
        return importlib.import_module(self.module)

    def contract_error(self, origin: str, detail: str) -> str:
        return (
            f"{self.prefix}: {origin} does not implement the storage driver contract "
            f"(myservice.storage.base.StorageDriver): {detail}"
        )


@pytest.fixture
def acme(tmp_path, monkeypatch) -> Iterator[DriverSite]:
    from myservice.plugins import discovery

    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.setenv("MYSERVICE_PLUGIN_CACHE_DIR", str(tmp_path / "plugin-cache"))
    monkeypatch.syspath_prepend(str(root))
    discovery.clear_memo()
    yield DriverSite(root, tmp_path)
    discovery.clear_memo()


def _refused(conf: conf_mod.Config) -> str:
    with pytest.raises(context_mod.StartupFailure) as info:
        context_mod.build(conf)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_class_not_subclassing_storage_driver_is_refused_naming_every_method(acme):
    origin = acme.install(
        """
        class WrongBase:
            def __init__(self, conf):
                CONSTRUCTED.append(conf)
        """,
        "WrongBase",
    )
    assert _refused(acme.conf) == acme.contract_error(origin, f"missing methods {ALL_METHODS}")
    assert acme.imported().CONSTRUCTED == [acme.conf]


def test_partial_duck_typed_driver_is_refused_at_start_up_and_closed(acme):
    origin = acme.install(
        """
        class Partial:
            def __init__(self, conf): pass
            def start(self): raise AssertionError("a refused driver is not started")
            def close(self): CLOSED.append(self)
            def check(self): pass
            def create_user(self, values): return values
        """,
        "Partial",
    )
    assert _refused(acme.conf) == acme.contract_error(
        origin,
        "missing methods get_user, list_users, update_user, delete_user, get_metadata, "
        "set_metadata_item, delete_metadata_item",
    )
    assert len(acme.imported().CLOSED) == 1


def test_contract_method_that_is_not_callable_is_refused(acme):
    source = driver_class(
        "NotCallable", init="def __init__(self, conf): self.list_users = 42", omit=("list_users",)
    )
    origin = acme.install(source, "NotCallable")
    assert _refused(acme.conf) == acme.contract_error(origin, "not callable: list_users (int)")


def test_misspelt_method_is_named_with_the_closest_one_the_driver_has(acme):
    source = driver_class(
        "Misspelt",
        "StorageDriver",
        omit=("list_users",),
        delete_metadata_item="def delete_metadata_itme(self, user_id, key): pass",
    )
    source += "    def list_user(self, limit, marker=None, name=None): return []\n"
    origin = acme.install(source, "Misspelt")
    assert _refused(acme.conf) == acme.contract_error(
        origin,
        "missing methods list_users (it has list_user), "
        "delete_metadata_item (it has delete_metadata_itme)",
    )


def test_entry_point_naming_something_not_callable_is_refused(acme):
    origin = acme.install("DRIVER = 42\n", "DRIVER")
    assert _refused(acme.conf) == (
        f"{acme.prefix}: {origin} is not callable (int): expected a subclass of "
        "myservice.storage.base.StorageDriver or a factory returning a driver"
    )


def test_complete_duck_typed_driver_is_accepted(acme):
    acme.install(driver_class("Duck"), "Duck")
    ctx = context_mod.build(acme.conf)
    try:
        assert type(ctx.storage).__name__ == "Duck"
        assert ctx.storage.conf is acme.conf
    finally:
        ctx.close()
    assert acme.imported().CLOSED == [ctx.storage]


def test_subclass_with_abstract_methods_left_is_refused_without_pythons_message(acme):
    origin = acme.install(
        """
        class MissingMethod(StorageDriver):
            def __init__(self, conf):
                CONSTRUCTED.append(conf)
            def check(self): pass
            def create_user(self, values): return values
            def get_user(self, user_id): raise NotFound(user_id)
            def update_user(self, user_id, values): raise NotFound(user_id)
            def delete_user(self, user_id): raise NotFound(user_id)
            def get_metadata(self, user_id): raise NotFound(user_id)
        """,
        "MissingMethod",
    )
    message = _refused(acme.conf)
    assert message == acme.contract_error(
        origin, "missing methods list_users, set_metadata_item, delete_metadata_item"
    )
    assert "Can't instantiate" not in message
    assert acme.imported().CONSTRUCTED == []  # refused before being constructed


def test_unexpected_exception_from_start_names_driver_target_dist_and_is_logged(acme, caplog):
    source = driver_class(
        "Burning", "StorageDriver", start='def start(self): raise OSError("disk on fire")'
    )
    origin = acme.install(source, "Burning")
    with caplog.at_level(logging.DEBUG, logger="myservice.wsgi.context"):
        message = _refused(acme.conf)
    assert message == f"{acme.prefix}: {origin} failed in start(): OSError: disk on fire"
    assert len(acme.imported().CLOSED) == 1
    (record,) = [r for r in caplog.records if r.exc_info and r.levelno == logging.DEBUG]
    assert isinstance(record.exc_info[1], OSError)
    assert "acme" in record.getMessage()


def test_failing_close_does_not_mask_the_start_error(acme, caplog):
    source = driver_class(
        "BurningTwice",
        "StorageDriver",
        start='def start(self): raise OSError("disk on fire")',
        close="def close(self): 1 / 0",
    )
    origin = acme.install(source, "BurningTwice")
    with caplog.at_level(logging.DEBUG, logger="myservice.wsgi.context"):
        message = _refused(acme.conf)
    assert message == f"{acme.prefix}: {origin} failed in start(): OSError: disk on fire"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "storage driver acme: close() after the failed start-up also failed: "
        "ZeroDivisionError: division by zero"
    ]


def test_unexpected_exception_from_constructor_is_a_startup_failure(acme):
    init = 'def __init__(self, conf): raise BackendError("cannot reach\\n  the backend")'
    source = "class BackendError(Exception): pass\n"
    source += driver_class("Fragile", "StorageDriver", init=init)
    origin = acme.install(source, "Fragile")
    assert _refused(acme.conf) == (
        f"{acme.prefix}: {origin} failed while being constructed: "
        f"{acme.module}.BackendError: cannot reach the backend"
    )


@pytest.mark.parametrize("error", ["StartupError", "Unavailable"])
@pytest.mark.parametrize("where", ["__init__", "start"])
def test_driver_startup_error_and_unavailable_messages_are_kept(acme, error, where):
    refuse = f'raise {error}("schema is at revision 1, expected 3: run myservice-manage")'
    if where == "start":
        source = driver_class("Refusing", "StorageDriver", start=f"def start(self): {refuse}")
    else:
        source = driver_class(
            "Refusing", "StorageDriver", init=f"def __init__(self, conf): {refuse}"
        )
    acme.install(source, "Refusing")
    assert _refused(acme.conf) == (
        f"{acme.prefix}: the driver cannot start: "
        "schema is at revision 1, expected 3: run myservice-manage"
    )
    # closed when it was constructed
    assert len(acme.imported().CLOSED) == (0 if where == "__init__" else 1)


def test_driver_that_fails_to_import_names_target_and_distribution(acme):
    origin = acme.install("import acme_client_library_not_installed\n", "Driver")
    with pytest.raises(conf_mod.ConfigError) as info:
        context_mod.build(acme.conf)
    assert str(info.value) == (
        f"{acme.prefix}: cannot load the driver {origin}: "
        "ModuleNotFoundError: No module named 'acme_client_library_not_installed'"
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("target", "source", "error"),
    [
        ("WrongBase", "class WrongBase:\n    def __init__(self, conf): pass\n", "contract"),
        (
            "Burning",
            driver_class(
                "Burning", "StorageDriver", start='def start(self): raise OSError("disk on fire")'
            ),
            "start",
        ),
    ],
    ids=["wrong-base", "start-raises"],
)
def test_myservice_api_prints_one_line_and_exits_2(acme, tmp_path, target, source, error):
    from tests.serving.helpers import BIN, child_env, copy_etc, free_port

    origin = acme.install(source, target)
    etc = copy_etc(tmp_path / "etc")
    conf_file = etc / "myservice.conf"
    text = conf_file.read_text(encoding="utf-8")
    assert "driver = sqlite" in text
    conf_file.write_text(text.replace("driver = sqlite", "driver = acme", 1), encoding="utf-8")
    env = child_env(tmp_path)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(acme.root), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [str(BIN / "myservice-api"), "--port", str(free_port()), "api-paste.ini"],
        cwd=etc,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    prefix = f"myservice-api: error: {conf_file.resolve()}: [storage] driver = acme"
    if error == "contract":
        expected = (
            f"{prefix}: {origin} does not implement the storage driver contract "
            f"(myservice.storage.base.StorageDriver): missing methods {ALL_METHODS}"
        )
    else:
        expected = f"{prefix}: {origin} failed in start(): OSError: disk on fire"
    assert (done.returncode, done.stderr.splitlines()) == (2, [expected]), done.stderr
