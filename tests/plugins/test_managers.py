"""The managers: stevedore-compatible behaviour, callbacks and error messages."""

from __future__ import annotations

import logging
import warnings

import pytest

import myservice.plugins as plugins_pkg
from myservice.plugins import (
    DispatchExtensionManager,
    DriverManager,
    EnabledExtensionManager,
    Extension,
    ExtensionManager,
    HookManager,
    MultipleMatches,
    NamedExtensionManager,
    NameDispatchExtensionManager,
    NoMatches,
    NoUniqueMatch,
    driver,
    error_on_conflict,
)


@pytest.fixture
def bomb(plugins):
    """Add a plugin whose module raises on import; returns the file its import creates.

    (A failed import leaves nothing in sys.modules, so the module leaves a mark on disk.)
    """
    marker = plugins.root / "bomb-was-imported"
    plugins.module(
        "bomb",
        f"""
        open({str(marker)!r}, "a").close()
        raise RuntimeError("bomb module imported")
        """,
    )
    plugins.install("dist-bomb", "0.1", {"t.ns": {"bomb": "{mod}bomb:Thing"}})
    return marker


def test_bomb_tripwire_works(bomb):
    ExtensionManager("t.ns")
    assert bomb.exists()


def test_package_reexports_like_stevedore():
    from myservice.plugins import driver as driver_module

    assert driver_module.DriverManager is DriverManager
    assert plugins_pkg.HookManager.__module__ == "myservice.plugins.hook"
    assert issubclass(NoMatches, NoUniqueMatch) and issubclass(MultipleMatches, NoUniqueMatch)
    assert issubclass(NoUniqueMatch, RuntimeError)
    assert driver.error_on_conflict is error_on_conflict


# -- ExtensionManager ------------------------------------------------------------------


def test_extension_manager_loads_everything_in_order(plugins):
    mgr = ExtensionManager("t.ns")
    assert mgr.names() == ["alpha", "beta", "gamma"]
    assert len(mgr) == 3
    assert [e.name for e in mgr] == mgr.names()
    assert "beta" in mgr and "nope" not in mgr
    assert mgr["beta"].plugin.__name__ == "Beta"
    assert mgr["beta"].obj is None
    assert [name for name, _ in mgr.items()] == ["alpha", "beta", "gamma"]
    assert mgr.entry_points_names() == ["alpha", "beta", "gamma"]
    assert [ep.name for ep in mgr.list_entry_points()] == ["alpha", "beta", "gamma"]
    assert repr(mgr) == "<ExtensionManager namespace='t.ns' names=['alpha', 'beta', 'gamma']>"


def test_extension_record(plugins):
    ext = ExtensionManager("t.ns")["gamma"]
    assert ext.name == "gamma"
    assert ext.module_name == plugins.mod("classes")
    assert ext.attr == "Gamma"
    assert ext.entry_point_target == f"{plugins.mod('classes')}:Gamma"
    assert (ext.entry_point.dist.name, ext.entry_point.dist.version) == ("dist-b", "2.0")
    assert ext.distribution is ext.entry_point.dist
    assert "dist-b 2.0" in repr(ext)


def test_invoke_on_load_with_args(plugins):
    mgr = ExtensionManager("t.ns", invoke_on_load=True, invoke_args=(1, 2), invoke_kwds={"k": "v"})
    assert [e.obj.args for e in mgr] == [(1, 2)] * 3
    assert mgr["alpha"].obj.kwds == {"k": "v"}
    assert mgr.map_method("hello", who="you") == [
        "Alpha says hello to you",
        "Beta says hello to you",
        "Gamma says hello to you",
    ]


def test_map_passes_extension_and_args(plugins):
    mgr = ExtensionManager("t.ns")
    assert mgr.map(lambda ext, a, b=0: (ext.name, a, b), 1, b=2) == [
        ("alpha", 1, 2),
        ("beta", 1, 2),
        ("gamma", 1, 2),
    ]


def test_map_on_empty_manager_raises_no_matches(site):
    with pytest.raises(NoMatches, match="No t.empty extensions found"):
        ExtensionManager("t.empty").map(lambda e: e)


def test_map_exceptions_logged_or_propagated(plugins, caplog):
    def boom(ext):
        if ext.name == "beta":
            raise ValueError("beta exploded")
        return ext.name

    with caplog.at_level(logging.DEBUG, logger="myservice.plugins.extension"):
        assert ExtensionManager("t.ns").map(boom) == ["alpha", "gamma"]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    msg = errors[0].getMessage()
    assert "beta" in msg and "dist-a 1.0" in msg and "ValueError: beta exploded" in msg
    assert any(r.exc_info for r in caplog.records if r.levelno == logging.DEBUG)
    with pytest.raises(ValueError, match="beta exploded"):
        ExtensionManager("t.ns", propagate_map_exceptions=True).map(boom)


def test_getitem_unknown_name_lists_names_and_closest(plugins):
    with pytest.raises(KeyError) as info:
        ExtensionManager("t.ns")["gama"]
    assert "loaded: alpha, beta, gamma" in str(info.value)
    assert "did you mean 'gamma'?" in str(info.value)


def test_getitem_non_string_name_is_type_error(plugins):
    with pytest.raises(TypeError, match="plugin name must be a string, got int 3"):
        ExtensionManager("t.ns")[3]


def test_namespace_must_be_a_string(plugins):
    with pytest.raises(TypeError, match="plugin namespace must be a string, got NoneType"):
        ExtensionManager(None)


def test_empty_namespace_warns_only_when_asked(site, caplog):
    with caplog.at_level(logging.DEBUG, logger="myservice.plugins.extension"):
        ExtensionManager("t.void")
        ExtensionManager("t.void", warn_on_missing_entrypoint=True)
        ExtensionManager("t.void", warn_on_missing_entrypoint=False)
    levels = [r.levelno for r in caplog.records if "no plugins installed" in r.getMessage()]
    assert levels == [logging.DEBUG, logging.WARNING]


def test_bool_stays_true_like_stevedore(site):
    mgr = ExtensionManager("t.void")
    assert len(mgr) == 0 and bool(mgr) is True


# -- load failures -----------------------------------------------------------------------


@pytest.fixture
def broken(plugins):
    plugins.module(
        "broken",
        """
        class Explodes:
            def __init__(self):
                raise OSError("cannot open device")

        class Fine:
            pass
        """,
    )
    plugins.install(
        "dist-broken",
        "0.3",
        {
            "t.broken": {
                "explodes": "{mod}broken:Explodes",
                "fine": "{mod}broken:Fine",
                "missing_attr": "{mod}broken:DoesNotExist",
                "missing_module": "{mod}no_such_module:Thing",
                "malformed": "not a valid target!",
            }
        },
    )
    return plugins


def test_failing_plugins_are_logged_and_skipped(broken, caplog):
    with caplog.at_level(logging.DEBUG, logger="myservice.plugins.extension"):
        mgr = ExtensionManager("t.broken", invoke_on_load=True)
    assert mgr.names() == ["fine"]
    errors = {
        r.getMessage().split(" = ")[0].split()[-1]: r.getMessage()
        for r in caplog.records
        if r.levelno == logging.ERROR
    }
    assert sorted(errors) == ["explodes", "malformed", "missing_attr", "missing_module"]
    assert "from dist-broken 0.3" in errors["explodes"]
    assert f"{broken.mod('broken')}:Explodes" in errors["explodes"]
    assert "OSError: cannot open device" in errors["explodes"]
    assert "AttributeError" in errors["missing_attr"] and "DoesNotExist" in errors["missing_attr"]
    assert "ModuleNotFoundError" in errors["missing_module"]
    assert "is not of the form 'module:attr'" in errors["malformed"]
    assert any(r.exc_info for r in caplog.records if r.levelno == logging.DEBUG)


def test_on_load_failure_callback_receives_manager_entrypoint_exception(broken, caplog):
    calls = []
    mgr = ExtensionManager(
        "t.broken", invoke_on_load=True, on_load_failure_callback=lambda *a: calls.append(a)
    )
    assert mgr.names() == ["fine"]
    assert sorted(ep.name for _, ep, _ in calls) == [
        "explodes",
        "malformed",
        "missing_attr",
        "missing_module",
    ]
    assert all(m is mgr for m, _, _ in calls)
    by_name = {ep.name: err for _, ep, err in calls}
    assert isinstance(by_name["explodes"], OSError)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_broken_namespace_does_not_affect_another(broken):
    ExtensionManager("t.broken")
    assert ExtensionManager("t.ns").names() == ["alpha", "beta", "gamma"]


# -- NamedExtensionManager ---------------------------------------------------------------


def test_named_loads_only_names_and_never_imports_others(bomb):
    mgr = NamedExtensionManager("t.ns", ["gamma", "alpha"])
    assert mgr.names() == ["alpha", "gamma"]
    assert not bomb.exists()


def test_named_name_order(plugins):
    mgr = NamedExtensionManager("t.ns", ["gamma", "alpha"], name_order=True)
    assert mgr.names() == ["gamma", "alpha"]


def test_named_missing_default_warning_lists_existing_and_closest(plugins, caplog):
    with caplog.at_level(logging.WARNING, logger="myservice.plugins.named"):
        NamedExtensionManager("t.ns", ["alpah", "zzz", "beta"])
    (record,) = caplog.records
    msg = record.getMessage()
    assert "Could not load 'alpah' (did you mean 'alpha'?), 'zzz'" in msg
    assert "available: alpha, beta, gamma" in msg


def test_named_missing_callback(plugins, caplog):
    seen = []
    NamedExtensionManager(
        "t.ns", ["alpha", "nope", "nada"], on_missing_entrypoints_callback=seen.append
    )
    assert seen == [{"nope", "nada"}]
    quiet = NamedExtensionManager("t.ns", ["nope"], on_missing_entrypoints_callback=None)
    assert quiet.names() == []
    assert not caplog.records


def test_named_failed_plugin_is_reported_as_failed_not_unknown(bomb, caplog):
    with caplog.at_level(logging.WARNING):
        NamedExtensionManager("t.ns", ["bomb"])
    text = caplog.text
    assert "bomb module imported" in text
    assert "'bomb' (installed, but it failed to load" in text


def test_named_warn_on_missing_entrypoint_false_is_deprecated_and_silences(plugins, caplog):
    with pytest.warns(DeprecationWarning, match="warn_on_missing_entrypoint") as record:
        NamedExtensionManager("t.ns", ["nope"], warn_on_missing_entrypoint=False)
    assert record[0].filename == __file__  # stacklevel points at the caller
    assert not caplog.records


def test_verify_requirements_is_deprecated_with_caller_stacklevel(plugins):
    with pytest.warns(DeprecationWarning, match="verify_requirements") as record:
        DriverManager("t.ns", "alpha", verify_requirements=True)
    assert record[0].filename == __file__


@pytest.mark.parametrize(
    "names, message",
    [
        ("alpha", "got the string 'alpha'; did you mean \\['alpha'\\]"),
        (["alpha", 7], "each plugin name in names must be a string, got int 7"),
        (5, "names must be a list of plugin names, got int 5"),
    ],
)
def test_named_bad_names(plugins, names, message):
    with pytest.raises(TypeError, match=message):
        NamedExtensionManager("t.ns", names)


# -- EnabledExtensionManager / dispatch --------------------------------------------------


def test_enabled_check_func(plugins):
    mgr = EnabledExtensionManager("t.ns", lambda ext: ext.name != "beta")
    assert mgr.names() == ["alpha", "gamma"]
    with pytest.raises(TypeError, match="check_func must be a callable"):
        EnabledExtensionManager("t.ns", "alpha")


def test_dispatch_map_filters_per_call(plugins):
    mgr = DispatchExtensionManager("t.ns", lambda ext: True, invoke_on_load=True)
    assert mgr.map(lambda ext, x: ext.name.startswith(x), lambda ext, x: ext.name, "g") == ["gamma"]
    assert mgr.map_method(lambda ext, *a, **k: ext.name != "gamma", "hello", who="x") == [
        "Alpha says hello to x",
        "Beta says hello to x",
    ]
    empty = DispatchExtensionManager("t.void", lambda ext: True)
    with pytest.raises(NoMatches):
        empty.map(lambda e: True, lambda e: e)


def test_name_dispatch(plugins, caplog):
    mgr = NameDispatchExtensionManager("t.ns", lambda ext: True, invoke_on_load=True)
    assert set(mgr.by_name) == {"alpha", "beta", "gamma"}
    assert mgr.map(["gamma", "missing", "alpha"], lambda ext: ext.name) == ["gamma", "alpha"]
    assert mgr.map_method(["beta"], "hello") == ["Beta says hello to world"]
    with pytest.raises(TypeError, match="did you mean \\['beta'\\]"):
        mgr.map("beta", lambda ext: ext)


# -- HookManager -------------------------------------------------------------------------


@pytest.fixture
def hooks(plugins):
    plugins.module(
        "hooks",
        """
        def first(*a, **k):
            return "first"

        def second(*a, **k):
            return "second"

        def third(*a, **k):
            return "third"
        """,
    )
    plugins.install(
        "hook-a",
        "1",
        {"t.hooks": {"user.create": "{mod}hooks:first", "user.delete": "{mod}hooks:third"}},
    )
    plugins.install("hook-b", "1", {"t.hooks": {"user.create": "{mod}hooks:second"}})
    return plugins


def test_hook_manager_gets_all_hooks_for_a_name(hooks):
    mgr = HookManager("t.hooks", "user.create")
    assert [e.plugin.__name__ for e in mgr["user.create"]] == ["first", "second"]
    assert mgr.map(lambda ext: ext.plugin()) == ["first", "second"]
    assert len(mgr) == 2
    with pytest.raises(KeyError, match="loads hooks named 'user.create'.*not 'user.delete'"):
        mgr["user.delete"]


def test_hook_manager_imports_only_its_name(bomb, hooks):
    HookManager("t.ns", "alpha")
    assert not bomb.exists()


def test_hook_manager_honours_conflict_resolver(hooks):
    seen = []

    def pick_last(namespace, name, exts):
        seen.append((namespace, name, [e.plugin.__name__ for e in exts]))
        return exts[-1]

    mgr = HookManager("t.hooks", "user.create", conflict_resolver=pick_last)
    assert seen == [("t.hooks", "user.create", ["first", "second"])]
    assert [e.plugin.__name__ for e in mgr["user.create"]] == ["second"]
    keep_reversed = HookManager(
        "t.hooks", "user.create", conflict_resolver=lambda ns, n, exts: exts[::-1]
    )
    assert keep_reversed.map(lambda ext: ext.plugin()) == ["second", "first"]


def test_hook_manager_no_hooks_is_quiet(hooks, caplog):
    mgr = HookManager("t.hooks", "user.update")
    assert mgr["user.update"] == []
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    with pytest.raises(NoMatches):
        mgr.map(lambda ext: ext)


def test_hook_name_must_be_a_string(hooks):
    with pytest.raises(TypeError, match="hook name must be a string, got list"):
        HookManager("t.hooks", ["user.create"])


# -- DriverManager -----------------------------------------------------------------------


def test_driver_manager(plugins):
    mgr = DriverManager("t.ns", "beta", invoke_on_load=True, invoke_args=("x",))
    assert mgr.driver.args == ("x",)
    assert type(mgr.driver).__name__ == "Beta"
    assert mgr(lambda ext, who: ext.obj.hello(who), "me") == "Beta says hello to me"
    assert DriverManager("t.ns", "beta").driver.__name__ == "Beta"


def test_driver_imports_only_the_requested_plugin(bomb):
    DriverManager("t.ns", "alpha")
    assert not bomb.exists()


def test_driver_unknown_name_lists_existing_and_closest(plugins):
    with pytest.raises(NoMatches) as info:
        DriverManager("t.ns", "betta")
    msg = str(info.value)
    assert "No 't.ns' driver found, looking for 'betta'" in msg
    assert "available drivers: alpha, beta, gamma" in msg
    assert "did you mean 'beta'?" in msg


def test_driver_empty_namespace_says_so(site):
    with pytest.raises(NoMatches, match="namespace 't.void' has no plugins installed"):
        DriverManager("t.void", "anything")


def test_driver_honours_on_missing_entrypoints_callback(plugins):
    seen = []
    with pytest.raises(NoMatches):
        DriverManager("t.ns", "nope", on_missing_entrypoints_callback=seen.append)
    assert seen == [{"nope"}]


def test_driver_load_error_propagates_with_context(bomb):
    with pytest.raises(RuntimeError, match="bomb module imported") as info:
        DriverManager("t.ns", "bomb")
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "bomb = " in notes and "dist-bomb 0.1" in notes and "'t.ns'" in notes


def test_driver_load_error_to_callback_then_no_matches(bomb):
    calls = []
    with pytest.raises(NoMatches, match="installed but failed to load"):
        DriverManager("t.ns", "bomb", on_load_failure_callback=lambda *a: calls.append(a))
    assert [ep.name for _, ep, _ in calls] == ["bomb"]


def test_driver_instantiation_error_propagates(plugins):
    plugins.module(
        "bad_init",
        """
        class Driver:
            def __init__(self):
                raise ValueError("bad config")
        """,
    )
    plugins.install("dist-bad", "1", {"t.drv": {"bad": "{mod}bad_init:Driver"}})
    with pytest.raises(ValueError, match="bad config"):
        DriverManager("t.drv", "bad", invoke_on_load=True)


def test_driver_map_exceptions_propagate(plugins):
    mgr = DriverManager("t.ns", "alpha")
    with pytest.raises(ZeroDivisionError):
        mgr(lambda ext: 1 / 0)


@pytest.fixture
def duplicates(plugins):
    # Same name from two distributions, NOT adjacent in discovery order.
    plugins.install("aaa-first", "1.5", {"t.ns": {"zeta": "{mod}classes:Alpha"}})
    plugins.install("zzz-last", "3.0", {"t.ns": {"zeta": "{mod}classes:Gamma"}})
    return plugins


def test_driver_duplicate_name_raises_multiple_matches_naming_dists(duplicates):
    assert ExtensionManager("t.ns").names() == ["zeta", "alpha", "beta", "gamma", "zeta"]
    with pytest.raises(MultipleMatches) as info:
        DriverManager("t.ns", "zeta")
    msg = str(info.value)
    assert "2 plugins are named 'zeta' in namespace 't.ns'" in msg
    assert "aaa-first 1.5" in msg and "zzz-last 3.0" in msg
    assert "classes:Alpha" in msg and "classes:Gamma" in msg


def test_driver_conflict_resolver_can_pick(duplicates):
    mgr = DriverManager(
        "t.ns",
        "zeta",
        conflict_resolver=lambda ns, name, exts: max(exts, key=lambda e: e.distribution.version),
    )
    assert mgr.driver.__name__ == "Gamma"


def test_extension_manager_resolves_non_adjacent_duplicates_on_lookup(duplicates, caplog):
    with caplog.at_level(logging.WARNING, logger="myservice.plugins.extension"):
        ext = ExtensionManager("t.ns")["zeta"]
    assert ext.distribution.name == "aaa-first"
    assert "2 plugins named 'zeta'" in caplog.text and "zzz-last 3.0" in caplog.text
    with pytest.raises(MultipleMatches):
        ExtensionManager("t.ns", conflict_resolver=error_on_conflict)["zeta"]
    named = NamedExtensionManager(
        "t.ns", ["zeta"], name_order=True, conflict_resolver=lambda ns, n, exts: exts[-1]
    )
    assert [e.distribution.name for e in named] == ["zzz-last"]


def test_driver_name_must_be_a_string(plugins):
    with pytest.raises(TypeError, match="driver name must be a string, got NoneType"):
        DriverManager("t.ns", None)


# -- make_test_instance ------------------------------------------------------------------


class _Plugin:
    def hello(self):
        return "hi"


def _ext(name):
    return Extension(name, None, _Plugin, _Plugin())


def test_make_test_instance_for_every_manager():
    exts = [_ext("one"), _ext("two")]
    mgr = ExtensionManager.make_test_instance(exts)
    assert mgr.namespace == "TESTING" and mgr.names() == ["one", "two"]
    assert mgr.map_method("hello") == ["hi", "hi"]
    assert mgr["two"] is exts[1] and exts[0].distribution is None

    named = NamedExtensionManager.make_test_instance(exts, namespace="x.y")
    assert named.names() == ["one", "two"] and named.namespace == "x.y"

    enabled = EnabledExtensionManager.make_test_instance(exts)
    assert len(enabled) == 2

    hook = HookManager.make_test_instance([_ext("ev"), _ext("ev")])
    assert len(hook["ev"]) == 2

    drv = DriverManager.make_test_instance(_ext("only"))
    assert drv.driver.hello() == "hi"
    assert drv(lambda ext: ext.name) == "only"

    disp = NameDispatchExtensionManager.make_test_instance(exts)
    assert disp.map(["two"], lambda ext: ext.name) == ["two"]


def test_make_test_instance_propagate_flag():
    mgr = ExtensionManager.make_test_instance([_ext("a")], propagate_map_exceptions=True)
    with pytest.raises(ZeroDivisionError):
        mgr.map(lambda ext: 1 / 0)


def test_no_deprecation_warnings_by_default(plugins):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DriverManager("t.ns", "alpha")
        HookManager("t.ns", "alpha")
        NamedExtensionManager("t.ns", ["alpha"])


# -- API parity with stevedore (signatures only; stevedore is a bench extra) ------------


@pytest.mark.parametrize(
    "module, cls",
    [
        ("extension", "ExtensionManager"),
        ("named", "NamedExtensionManager"),
        ("enabled", "EnabledExtensionManager"),
        ("dispatch", "DispatchExtensionManager"),
        ("dispatch", "NameDispatchExtensionManager"),
        ("hook", "HookManager"),
        ("driver", "DriverManager"),
        ("extension", "Extension"),
    ],
)
def test_constructor_and_methods_accept_stevedore_parameters(module, cls):
    import importlib
    import inspect

    stevedore = pytest.importorskip(f"stevedore.{module}")
    ours = getattr(importlib.import_module(f"myservice.plugins.{module}"), cls)
    theirs = getattr(stevedore, cls)
    for attr in [
        "__init__",
        "make_test_instance",
        "map",
        "map_method",
        "names",
        "items",
        "list_entry_points",
        "entry_points_names",
        "__getitem__",
        "__call__",
    ]:
        if not hasattr(theirs, attr):
            continue
        kw_only = inspect.Parameter.KEYWORD_ONLY
        their = inspect.signature(getattr(theirs, attr)).parameters.values()
        our = inspect.signature(getattr(ours, attr)).parameters
        their_positional = [p.name for p in their if p.kind != kw_only]
        our_positional = [p.name for p in our.values() if p.kind != kw_only]
        # Same positional order (so positional calls bind the same way) ...
        assert our_positional[: len(their_positional)] == their_positional, (cls, attr)
        # ... and every keyword-only parameter of theirs is accepted by ours.
        assert {p.name for p in their if p.kind == kw_only} <= set(our), (cls, attr)
