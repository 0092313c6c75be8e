"""What a fresh process imports: a warm plugin look-up must not pay for heavy modules.

Each test runs a small script in a new interpreter (``sys.modules`` of this one is
already full), with the fake site of ``conftest`` on ``PYTHONPATH``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from myservice.plugins import discovery

#: Modules the warm path must not import (each costs a fresh process 1-6 ms).
HEAVY = [
    "importlib_metadata",
    "importlib.metadata",
    "tempfile",
    "hashlib",
    "pathlib",
    "dataclasses",
    "email",
    "zipfile",
    "csv",
    "inspect",
    "difflib",
    "typing",
    "logging",
]

SCRIPT = """
import json, sys
# pathlib is imported by site.py when the project is installed editable; forget it (and
# anything else already there) so the check below sees only what discovery imports.
before = set(sys.modules)
from myservice.plugins import discovery
discovery.RACY_WINDOW_NS = 0  # the fake site was written a moment ago
if {forbid_scan}:
    def _no_scan(paths):
        raise AssertionError("scanned although the cache is warm")
    discovery._scan = _no_scan
from myservice.plugins.driver import DriverManager
from myservice.plugins.extension import ExtensionManager
driver = DriverManager("t.ns", "alpha", invoke_on_load=True).driver
names = ExtensionManager("t.ns").names()
ep = discovery.get_entry_points("t.ns")[0]
print(json.dumps({{
    "new": sorted(set(sys.modules) - before),
    "driver": type(driver).__name__,
    "names": names,
    "dist": [ep.dist.name, ep.dist.version],
}}))
"""


def fresh_python(
    code: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a new interpreter, without this process's ``PYTHON*`` variables but
    with ``env`` added; output captured as text."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", code],
        env=full_env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def run(site, cache, code: str) -> subprocess.CompletedProcess[str]:
    """:func:`fresh_python` with the fake ``site`` on ``PYTHONPATH`` and the plugin ``cache``."""
    workdir = site.root.parent / "cwd"  # '' on sys.path: a directory nobody modifies
    workdir.mkdir(exist_ok=True)
    env = {
        "PYTHONPATH": str(site.root),
        "PYTHONDONTWRITEBYTECODE": "1",  # a __pycache__ in the site would change it
        "MYSERVICE_PLUGIN_CACHE_DIR": str(cache),
    }
    return fresh_python(code, env, workdir)


def look_up(site, cache, forbid_scan: bool) -> dict:
    proc = run(site, cache, SCRIPT.format(forbid_scan=forbid_scan))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_warm_look_up_in_a_fresh_process_imports_nothing_heavy(plugins, isolated_cache):
    cold = look_up(plugins, isolated_cache, forbid_scan=False)
    assert list(isolated_cache.glob("*.json")), "the cold run wrote no cache"
    warm = look_up(plugins, isolated_cache, forbid_scan=True)
    for result in (cold, warm):
        assert result["driver"] == "Alpha"
        assert result["names"] == ["alpha", "beta", "gamma"]
        assert result["dist"] == ["dist-a", "1.0"]
    assert [m for m in HEAVY if m in warm["new"]] == []
    # A scan needs none of them either (tempfile is for writing the cache).
    assert [m for m in HEAVY if m in cold["new"] and m != "tempfile"] == []


def test_warm_cache_is_still_never_stale_across_processes(plugins, isolated_cache):
    look_up(plugins, isolated_cache, forbid_scan=False)
    plugins.install("dist-c", "1.0", {"t.ns": {"delta": "{mod}classes:Gamma"}})
    proc = run(plugins, isolated_cache, SCRIPT.format(forbid_scan=True))
    assert "scanned although the cache is warm" in proc.stderr  # the install was seen
    assert look_up(plugins, isolated_cache, forbid_scan=False)["names"] == [
        "alpha",
        "beta",
        "gamma",
        "delta",
    ]


def test_package_import_is_lazy_and_still_exports_everything():
    code = (
        "import sys, myservice.plugins as p\n"
        "assert 'myservice.plugins.discovery' not in sys.modules, sorted(sys.modules)\n"
        "from myservice.plugins import DriverManager, HookManager, NoMatches, driver\n"
        "assert DriverManager is driver.DriverManager\n"
        "assert set(p.__all__) <= set(dir(p))\n"
        "for name in p.__all__: getattr(p, name)\n"
        "try:\n    p.NoSuchThing\nexcept AttributeError as e:\n    print(e)\n"
    )
    proc = fresh_python(code)
    assert proc.returncode == 0, proc.stderr
    assert "module 'myservice.plugins' has no attribute 'NoSuchThing'" in proc.stdout


def test_lazy_logger_debug_needs_no_logging_but_warnings_reach_stderr():
    code = (
        "import sys\n"
        "from myservice.plugins import _log\n"
        "log = _log.getLogger('myservice.plugins.x')\n"
        "log.debug('quiet %s', 1)\n"
        "assert 'logging' not in sys.modules\n"
        "log.warning('loud %s', 2)\n"
        "assert 'logging' in sys.modules\n"
    )
    proc = fresh_python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "loud 2"  # logging's lastResort handler, as before


def test_lazy_logger_forwards_records_with_the_callers_location(caplog):
    from myservice.plugins import _log

    log = _log.getLogger("myservice.plugins.test")
    with caplog.at_level("DEBUG", logger="myservice.plugins.test"):
        log.debug("d %s", 1)
        log.info("i %s", 2)
        log.warning("w %s", 3)
        log.error("e %s", 4)
        log.log(30, "l %s", 5)
        assert log.isEnabledFor(10)
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("DEBUG", "d 1"),
        ("INFO", "i 2"),
        ("WARNING", "w 3"),
        ("ERROR", "e 4"),
        ("WARNING", "l 5"),
    ]
    assert {r.funcName for r in caplog.records} == {
        "test_lazy_logger_forwards_records_with_the_callers_location"
    }
    assert {r.filename for r in caplog.records} == {os.path.basename(__file__)}


def test_cache_with_a_corrupt_group_entry_is_rescanned_on_use(plugins, monkeypatch):
    monkeypatch.setattr(discovery, "RACY_WINDOW_NS", 0)
    discovery.get_entry_points("t.ns")
    path = discovery.cache_path()
    data = json.loads(path.read_text())
    data["groups"]["t.ns"][1] = ["beta", 42, 0]
    path.write_text(json.dumps(data))
    discovery.clear_memo()
    assert [ep.name for ep in discovery.get_entry_points("t.ns")] == ["alpha", "beta", "gamma"]
    assert json.loads(path.read_text())["groups"]["t.ns"][1][1].endswith(":Beta")


@pytest.mark.parametrize("value", ["x", 3])
def test_typing_stand_in_keeps_managers_subscriptable(value):
    from myservice.plugins.driver import DriverManager
    from myservice.plugins.extension import Extension, ExtensionManager

    assert ExtensionManager[value].__origin__ is ExtensionManager
    assert DriverManager[value].__origin__ is DriverManager
    assert issubclass(DriverManager, ExtensionManager)
    assert Extension[value]("n", None, None, None).name == "n"
