"""Entry-point discovery: order, metadata, the on-disk cache and its invalidation."""

from __future__ import annotations

import json
import logging
import os
import sys

import importlib_metadata
import pytest

from myservice.plugins import discovery


def eps(namespace="t.ns"):
    return [
        (ep.name, ep.value.split(":")[-1], ep.dist.name, ep.dist.version)
        for ep in discovery.get_entry_points(namespace)
    ]


@pytest.fixture
def count_scans(monkeypatch):
    """Count full scans (the expensive path) without changing what they do."""
    calls = []
    real = discovery._scan

    def counting(paths):
        calls.append(paths)
        return real(paths)

    monkeypatch.setattr(discovery, "_scan", counting)
    return calls


@pytest.fixture
def settled(monkeypatch):
    """Treat files as settled immediately (they were all written a moment ago)."""
    monkeypatch.setattr(discovery, "RACY_WINDOW_NS", 0)


# -- what is discovered --------------------------------------------------------------


def test_entry_points_carry_name_value_group_module_attr_and_dist(plugins):
    (alpha,) = [ep for ep in discovery.get_entry_points("t.ns") if ep.name == "alpha"]
    assert alpha == importlib_metadata.EntryPoint("alpha", alpha.value, "t.ns")
    assert alpha.group == "t.ns"
    assert alpha.value == f"{plugins.mod('classes')}:Alpha"
    assert alpha.module == plugins.mod("classes")
    assert alpha.attr == "Alpha"
    assert (alpha.dist.name, alpha.dist.version) == ("dist-a", "1.0")
    assert alpha.load().__name__ == "Alpha"


VALUES = [
    "pkg.mod:Obj",
    "pkg.mod:Outer.Inner",
    "pkg.mod",
    "pkg.mod : Obj [extra1, extra2]",
    "pkg.mod:Obj[one]",
    "invalid-name",
    "pkg.mod:",
    "",
]


def _outcome(func):
    try:
        return ("ok", func())
    except Exception as err:  # noqa: BLE001 - the outcome is what is compared
        return ("raises", type(err), err.args)


@pytest.mark.parametrize("value", VALUES)
def test_entry_point_parses_like_importlib_metadata(value):
    ours = discovery.EntryPoint("n", value, "g")
    theirs = importlib_metadata.EntryPoint("n", value, "g")
    for attr in ("name", "value", "group", "module", "attr", "extras"):
        assert _outcome(lambda a=attr: getattr(ours, a)) == _outcome(
            lambda a=attr: getattr(theirs, a)
        ), attr
    assert repr(ours) == repr(theirs)
    assert ours.dist is None


def test_entry_point_equality_hash_order_and_matches_like_importlib_metadata():
    dist = discovery.DistributionInfo("d", "1.0", "/x")
    ours = discovery.EntryPoint("n", "pkg.mod:Obj [x]", "g", dist)
    theirs = importlib_metadata.EntryPoint("n", "pkg.mod:Obj [x]", "g")
    assert ours == theirs and theirs == ours
    assert hash(ours) == hash(theirs)
    assert ours != discovery.EntryPoint("n", "pkg.mod:Other", "g")
    assert ours != "n"
    assert sorted([discovery.EntryPoint("b", "m:X", "g"), ours]) == [
        discovery.EntryPoint("b", "m:X", "g"),
        ours,
    ]
    for params in [
        {},
        {"group": "g"},
        {"name": "n", "module": "pkg.mod"},
        {"attr": "Obj", "extras": ["x"]},
        {"name": "other"},
        {"value": "pkg.mod"},
    ]:
        assert ours.matches(**params) == theirs.matches(**params), params
    with pytest.raises(ValueError, match='"dist" is not suitable for matching'):
        ours.matches(dist=dist)
    with pytest.raises(AttributeError, match="immutable"):
        ours.name = "other"
    assert ours.dist is dist


def test_entry_point_load_imports_module_and_dotted_attribute():
    assert discovery.EntryPoint("n", "os.path:join", "g").load() is os.path.join
    assert discovery.EntryPoint("n", "os:path.join", "g").load() is os.path.join
    assert discovery.EntryPoint("n", "os.path", "g").load() is os.path
    with pytest.raises(ValueError, match="Invalid object reference"):
        discovery.EntryPoint("n", "not a target", "g").load()
    with pytest.raises(AttributeError, match="no_such_thing"):
        discovery.EntryPoint("n", "os:no_such_thing", "g").load()
    with pytest.raises(ModuleNotFoundError, match="no_such_module_xyz"):
        discovery.EntryPoint("n", "no_such_module_xyz:X", "g").load()


def test_entry_points_and_distributions_pickle_and_compare_by_value():
    import pickle

    dist = discovery.DistributionInfo("d", "1.0", "/x")
    ep = discovery.EntryPoint("n", "m:X", "g", dist)
    copy = pickle.loads(pickle.dumps(ep))
    assert copy == ep and copy.dist == dist and hash(copy.dist) == hash(dist)
    assert dist != discovery.DistributionInfo("d", "1.1", "/x")
    assert str(dist) == "d 1.0"
    assert repr(dist) == "DistributionInfo(name='d', version='1.0', path='/x')"
    with pytest.raises(AttributeError, match="immutable"):
        dist.version = "2"


def test_order_is_sys_path_then_distribution_then_name(plugins, later_site):
    # A second sys.path entry placed AFTER the first one, with a dist whose name sorts first.
    later_site.install("aaa", "1.0", "[t.ns]\nzeta = x:Y\naardvark = x:Y\n")
    assert [(n, d) for n, _, d, _ in eps()] == [
        ("alpha", "dist-a"),
        ("beta", "dist-a"),  # first sys.path entry, dist-a, by name
        ("gamma", "dist-b"),
        ("aardvark", "aaa"),
        ("zeta", "aaa"),  # second sys.path entry
    ]


def test_same_distribution_twice_on_sys_path_first_one_wins(plugins, later_site):
    later_site.install("dist_b", "9.0", "[t.ns]\nshadowed = x:Y\n")
    assert "shadowed" not in [name for name, *_ in eps()]
    assert ("gamma", "Gamma", "dist-b", "2.0") in eps()


def test_egg_info_distribution_reads_pkg_info(site):
    site.install("legacy", "3.1", {"t.egg": {"old": "m:C"}}, egg=True)
    assert eps("t.egg") == [("old", "C", "legacy", "3.1")]


def test_namespaces_lists_every_group(plugins):
    plugins.install("other", "1", {"t.other": {"x": "m:X"}, "t.ns2": {"y": "m:Y"}})
    found = discovery.namespaces()
    assert {"t.ns", "t.other", "t.ns2"} <= set(found)
    assert found == sorted(found)


def test_unknown_namespace_is_empty(plugins):
    assert discovery.get_entry_points("t.nothing.here") == []


def test_namespace_must_be_a_string(plugins):
    with pytest.raises(TypeError, match="namespace must be a string.*got int 42"):
        discovery.get_entry_points(42)


def test_malformed_entry_points_txt_skips_bad_lines_and_says_where(site, caplog):
    info = site.install(
        "broken",
        "1.0",
        """\
        orphan = outside:Section
        [t.bad]
        good = mod:Good
        this line has no equals sign
        = mod:NoName
        [unterminated
        lost = mod:Lost
        [t.bad2]
        fine = mod:Fine
        """,
    )
    site.install("healthy", "1.0", {"t.bad": {"other": "mod:Other"}})
    with caplog.at_level(logging.WARNING, logger="myservice.plugins.discovery"):
        assert [n for n, *_ in eps("t.bad")] == ["good", "other"]
        assert [n for n, *_ in eps("t.bad2")] == ["fine"]
    text = caplog.text
    ep_file = str(info / "entry_points.txt")
    assert f"{ep_file}:1: malformed entry point 'orphan = outside:Section' outside any" in text
    assert f"{ep_file}:4: malformed entry point 'this line has no equals sign' in [t.bad]" in text
    assert f"{ep_file}:5:" in text
    assert f"{ep_file}:6: malformed section header '[unterminated'" in text
    assert "expected 'name = module:attr'" in text


def test_unreadable_entry_points_txt_is_skipped(site, caplog):
    info = site.install("binary", "1.0")
    (info / "entry_points.txt").write_bytes(b"[t.bin]\nx = \xff\xfe:bad\n")
    site.install("healthy", "1.0", {"t.bin": {"ok": "m:Ok"}})
    with caplog.at_level(logging.WARNING, logger="myservice.plugins.discovery"):
        assert [n for n, *_ in eps("t.bin")] == ["ok"]
    assert "entry_points.txt" in caplog.text and "ignored" in caplog.text


# -- cache location ------------------------------------------------------------------


def test_cache_path_honours_env(monkeypatch, tmp_path, site):
    monkeypatch.setenv("MYSERVICE_PLUGIN_CACHE_DIR", str(tmp_path / "here"))
    path = discovery.cache_path()
    assert path.parent == tmp_path / "here" and path.suffix == ".json"

    monkeypatch.delenv("MYSERVICE_PLUGIN_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert discovery.cache_path().parent == tmp_path / "xdg" / "myservice-plugins"

    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert discovery.cache_path().parent == tmp_path / "home" / ".cache" / "myservice-plugins"

    monkeypatch.setenv("MYSERVICE_PLUGIN_CACHE", "off")
    assert discovery.cache_path() is None


def test_cache_path_depends_on_sys_path(site, monkeypatch, tmp_path):
    first = discovery.cache_path()
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    assert discovery.cache_path() != first


def test_cache_off_writes_nothing(plugins, monkeypatch, isolated_cache, settled):
    monkeypatch.setenv("MYSERVICE_PLUGIN_CACHE", "off")
    assert [n for n, *_ in eps()] == ["alpha", "beta", "gamma"]
    assert not isolated_cache.exists()


# -- cache hits ----------------------------------------------------------------------


def test_memo_hit_does_not_rescan(plugins, count_scans, settled):
    first = eps()
    assert eps() == first
    assert len(count_scans) == 1


def test_disk_cache_hit_in_a_fresh_process_does_not_rescan(plugins, count_scans, settled):
    first = eps()
    path = discovery.cache_path()
    assert path.is_file()
    discovery.clear_memo()  # what a new process sees
    second = discovery.get_entry_points("t.ns")
    assert [(n, v, d, ver) for n, v, d, ver in eps()] == first
    assert len(count_scans) == 1
    # Read from the cache, the dist is still there: name and version.
    assert {(ep.dist.name, ep.dist.version) for ep in second} == {
        ("dist-a", "1.0"),
        ("dist-b", "2.0"),
    }


def test_cache_write_is_atomic_leaves_no_temp_files(plugins, isolated_cache, settled):
    eps()
    assert sorted(p.suffix for p in isolated_cache.iterdir()) == [".json"]
    data = json.loads(discovery.cache_path().read_text())
    assert data["sys_path"] == sys.path


def test_racy_files_are_not_cached(plugins, isolated_cache, count_scans):
    # Default window: files written a moment ago cannot be trusted by stat alone.
    eps()
    eps()
    assert not isolated_cache.exists() or not list(isolated_cache.iterdir())
    assert len(count_scans) == 2


# -- invalidation --------------------------------------------------------------------


def test_install_is_seen_immediately(plugins):
    assert [n for n, *_ in eps()] == ["alpha", "beta", "gamma"]
    plugins.install("dist-c", "1.0", {"t.ns": {"delta": "m:D"}})
    assert [n for n, *_ in eps()] == ["alpha", "beta", "gamma", "delta"]


def test_upgrade_is_seen_immediately(plugins):
    assert ("gamma", "Gamma", "dist-b", "2.0") in eps()
    plugins.uninstall("dist-b", "2.0")
    plugins.install("dist-b", "2.1", {"t.ns": {"gamma2": "m:G"}})
    assert [(n, d, v) for n, _, d, v in eps() if d == "dist-b"] == [("gamma2", "dist-b", "2.1")]


def test_remove_is_seen_immediately(plugins):
    eps()
    plugins.uninstall("dist-a")
    assert [n for n, *_ in eps()] == ["gamma"]


def test_in_place_edit_same_size_same_mtime_is_seen(plugins):
    """An edit in the same clock tick (mtime restored, same size) is still detected."""
    ep_file = plugins.root / "dist-b-2.0.dist-info" / "entry_points.txt"
    assert [n for n, *_ in eps()] == ["alpha", "beta", "gamma"]
    before = os.stat(ep_file)
    ep_file.write_text(ep_file.read_text().replace("gamma", "omega"))
    os.utime(ep_file, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(ep_file).st_size == before.st_size
    assert [n for n, *_ in eps()] == ["alpha", "beta", "omega"]


@pytest.mark.parametrize("fresh_process", [False, True])
def test_settled_cache_detects_in_place_edit(plugins, settled, count_scans, fresh_process):
    ep_file = plugins.root / "dist-b-2.0.dist-info" / "entry_points.txt"
    assert [n for n, *_ in eps()] == ["alpha", "beta", "gamma"]
    ep_file.write_text(ep_file.read_text() + "epsilon = m:E\n")
    if fresh_process:
        discovery.clear_memo()
    assert [n for n, *_ in eps()] == ["alpha", "beta", "epsilon", "gamma"]
    assert len(count_scans) == 2


@pytest.mark.parametrize("fresh_process", [False, True])
def test_settled_cache_detects_upgrade_and_removal(plugins, settled, count_scans, fresh_process):
    eps()
    plugins.uninstall("dist-b", "2.0")
    plugins.install("dist-b", "2.1", {"t.ns": {"gamma": "m:G"}})
    if fresh_process:
        discovery.clear_memo()
    assert ("gamma", "G", "dist-b", "2.1") in eps()
    plugins.uninstall("dist-a")
    if fresh_process:
        discovery.clear_memo()
    assert [n for n, *_ in eps()] == ["gamma"]


def test_egg_info_version_bump_in_place_is_seen(site):
    info = site.install("devel", "0.1", {"t.egg": {"x": "m:X"}}, egg=True)
    assert eps("t.egg")[0][3] == "0.1"
    (info / "PKG-INFO").write_text("Name: devel\nVersion: 0.2\n")
    assert eps("t.egg")[0][3] == "0.2"


# -- broken cache --------------------------------------------------------------------


@pytest.mark.parametrize(
    "garbage", ["{not json", "[]", '{"format": 1}', "", '{"format": 1, "sys_path": null}']
)
def test_corrupt_cache_file_falls_back_to_scan_and_is_rewritten(plugins, settled, garbage, caplog):
    eps()
    path = discovery.cache_path()
    path.write_text(garbage)
    discovery.clear_memo()
    with caplog.at_level(logging.DEBUG, logger="myservice.plugins.discovery"):
        assert [n for n, *_ in eps()] == ["alpha", "beta", "gamma"]
    assert "plugin cache" in caplog.text
    assert json.loads(path.read_text())["format"] == discovery.CACHE_FORMAT


def test_cache_pointing_at_unknown_distribution_is_rejected(plugins, settled):
    eps()
    path = discovery.cache_path()
    data = json.loads(path.read_text())
    data["groups"]["t.ns"][0][2] = 99
    path.write_text(json.dumps(data))
    discovery.clear_memo()
    assert [n for n, *_ in eps()] == ["alpha", "beta", "gamma"]


def test_unusable_cache_dir_falls_back_silently(plugins, settled, monkeypatch, tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("MYSERVICE_PLUGIN_CACHE_DIR", str(blocker / "cache"))
    with caplog.at_level(logging.DEBUG, logger="myservice.plugins.discovery"):
        assert [n for n, *_ in eps()] == ["alpha", "beta", "gamma"]
    assert "cannot write plugin cache" in caplog.text
    assert not any(r.levelno >= logging.WARNING for r in caplog.records)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_cache_dir_falls_back(plugins, settled, isolated_cache):
    isolated_cache.mkdir()
    isolated_cache.chmod(0o500)
    try:
        assert [n for n, *_ in eps()] == ["alpha", "beta", "gamma"]
    finally:
        isolated_cache.chmod(0o700)


def test_old_cache_files_are_pruned(plugins, settled, isolated_cache, monkeypatch):
    monkeypatch.setattr(discovery, "MAX_CACHE_FILES", 3)
    isolated_cache.mkdir()
    for i in range(6):
        stale = isolated_cache / f"{i:032x}.json"
        stale.write_text("{}")
        os.utime(stale, ns=(i * 10**9, i * 10**9))
    eps()
    remaining = sorted(p.name for p in isolated_cache.iterdir())
    assert discovery.cache_path().name in remaining
    assert len(remaining) == 3
    # The oldest ones went first.
    assert f"{0:032x}.json" not in remaining and f"{5:032x}.json" in remaining


def test_get_entry_points_returns_a_copy(plugins):
    first = discovery.get_entry_points("t.ns")
    first.clear()
    assert len(discovery.get_entry_points("t.ns")) == 3


def test_distributions_lists_dists_with_entry_points(plugins):
    names = {(d.name, d.version) for d in discovery.distributions()}
    assert {("dist-a", "1.0"), ("dist-b", "2.0")} <= names


def test_entry_points_txt_added_to_existing_dist_is_seen(site):
    info = site.install("late", "1.0")  # no entry_points.txt yet
    assert eps("t.late") == []
    (info / "entry_points.txt").write_text("[t.late]\nnow = m:Now\n")
    assert eps("t.late") == [("now", "Now", "late", "1.0")]
