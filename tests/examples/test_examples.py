"""The example plugin packages, pip-installed into a fresh virtual environment.

One virtual environment is built per test session (``python -m venv``): myservice is
installed into it (editable, no dependencies but importlib-metadata), then the packages
of ``examples/`` from a copy of that directory (so no build output lands in the work
tree).  Snippets run in that environment in fresh processes and print their results,
which are compared here with the seed scenarios' exact expected values.

setuptools < 82 and ``wheel`` are installed first, and the packages are then built with
``--no-build-isolation``: a fresh Python 3.11 venv has setuptools 65 and no ``wheel``,
and building once against them is much cheaper than one isolated build env per package.
"""

from __future__ import annotations

import ast
import json
import time
from pathlib import Path

import pytest

from tests.examples.conftest import Venv

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


@pytest.fixture
def cache_dir(tmp_path) -> str:
    return str(tmp_path / "plugin-cache")


SCENARIOS = """
import db_driver_base
from myservice.plugins import driver, extension, hook

results = {}
for name in ("mysql", "oracle"):
    mgr = driver.DriverManager(
        namespace="my_system.db_driver", name=name, invoke_on_load=True, invoke_args=()
    )
    results[name] = mgr.driver.create_user("Tom")
    results[name + "_is_base"] = isinstance(mgr.driver, db_driver_base.Base)
try:
    db_driver_base.Base()
except TypeError:
    results["base_is_abstract"] = True

run = lambda hook: (hook.name, hook.obj())
for event in ("CLOSE_WINDOW", "COMMIT"):
    mgr = hook.HookManager(namespace="ide.hooks", name=event, invoke_on_load=True, invoke_args=())
    results[event] = mgr.map(run)

mgr = extension.ExtensionManager(namespace="my_namespace", invoke_on_load=True, invoke_args=())
results["extensions"] = mgr.names()
results["described"] = mgr.map(lambda ext: ext.obj.describe())
print(repr(results))
"""


def test_seed_scenarios(venv, cache_dir):
    results = ast.literal_eval(venv.snippet(SCENARIOS, MYSERVICE_PLUGIN_CACHE_DIR=cache_dir))
    assert results == {
        "mysql": "create user Tom in mysql",
        "mysql_is_base": True,
        "oracle": "create user Tom in oracle",
        "oracle_is_base": True,
        "base_is_abstract": True,
        "CLOSE_WINDOW": [("CLOSE_WINDOW", "content are saved")],
        "COMMIT": [("COMMIT", "content are saved"), ("COMMIT", "content are uploaded")],
        "extensions": ["ext1", "ext2", "ext3"],
        "described": ["ext1 is loaded", "ext2 is loaded", "ext3 is loaded"],
    }


DISCOVER = """
import json
from myservice.plugins import discovery

path = discovery.cache_path()
names = [(ep.name, ep.dist.name) for ep in discovery.get_entry_points("my_system.db_driver")]
print(json.dumps({"names": names, "cache": str(path), "cached": path.is_file()}))
"""


def discover(venv: Venv, cache_dir: str) -> dict:
    return json.loads(venv.snippet(DISCOVER, MYSERVICE_PLUGIN_CACHE_DIR=cache_dir))


def test_plugin_installed_after_the_cache_was_written_is_seen(venv, cache_dir):
    before = [["mysql", "mysql-driver"], ["oracle", "oracle-driver"]]
    # Discovery does not write a cache while the site-packages directory is too recently
    # modified to be trusted (timestamps are coarse); the session's installs may just
    # have happened, so run it until the cache file exists.
    for _attempt in range(20):
        first = discover(venv, cache_dir)
        assert first["names"] == before
        if first["cached"]:
            break
        time.sleep(0.5)
    assert first["cached"], f"discovery never wrote its cache file {first['cache']}"
    assert Path(first["cache"]).parent == Path(cache_dir)
    assert discover(venv, cache_dir)["names"] == before  # served from the warm cache

    venv.pip("install", "--no-build-isolation", "--no-deps", str(venv.src / "postgresql_driver"))
    try:
        after_install = discover(venv, cache_dir)
        assert Path(after_install["cache"]).is_file()  # the stale cache was there, not used
        assert after_install["names"] == [*before, ["postgresql", "postgresql-driver"]]
        created = venv.snippet(
            """
            from myservice.plugins.driver import DriverManager
            mgr = DriverManager("my_system.db_driver", "postgresql", invoke_on_load=True)
            print(mgr.driver.create_user("Tom"))
            """,
            MYSERVICE_PLUGIN_CACHE_DIR=cache_dir,
        )
        assert created.strip() == "create user Tom in postgresql"
    finally:
        venv.pip("uninstall", "--yes", "postgresql-driver")
    assert discover(venv, cache_dir)["names"] == before


def test_cli_lists_the_example_plugins(venv, cache_dir):
    out = venv.run(
        "-m",
        "myservice.cmd.plugins",
        "list",
        "my_system.db_driver",
        "ide.hooks",
        "--json",
        MYSERVICE_PLUGIN_CACHE_DIR=cache_dir,
    ).stdout
    found = {
        (ns["namespace"], p["name"], p["distribution"], p["version"], p["loads"])
        for ns in json.loads(out)["namespaces"]
        for p in ns["plugins"]
    }
    assert found == {
        ("my_system.db_driver", "mysql", "mysql-driver", "1.0.0", True),
        ("my_system.db_driver", "oracle", "oracle-driver", "1.0.0", True),
        ("ide.hooks", "CLOSE_WINDOW", "ide-save-content", "1.0.0", True),
        ("ide.hooks", "COMMIT", "ide-save-content", "1.0.0", True),
        ("ide.hooks", "COMMIT", "ide-upload-content", "1.0.0", True),
    }
