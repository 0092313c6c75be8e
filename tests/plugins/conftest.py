"""Fake distributions on a temporary sys.path entry, and an isolated plugin cache."""

from __future__ import annotations

import itertools
import shutil
import sys
import textwrap
from pathlib import Path

import pytest

from myservice.plugins import discovery

_counter = itertools.count()


class FakeSite:
    """A directory on sys.path where tests "install" distributions by writing files."""

    def __init__(self, root: Path) -> None:
        self.root = root
        # Module names are unique per test so sys.modules never leaks between tests.
        self.prefix = f"fakeplug{next(_counter)}_"

    def mod(self, name: str) -> str:
        """The real (unique) module name for the short name ``name``."""
        return self.prefix + name

    def module(self, name: str, source: str) -> str:
        full = self.mod(name)
        (self.root / f"{full}.py").write_text(textwrap.dedent(source))
        return full

    def install(
        self,
        dist: str,
        version: str = "1.0",
        entry_points: dict[str, dict[str, str]] | str | None = None,
        egg: bool = False,
    ) -> Path:
        """Write ``<dist>-<version>.dist-info`` (or egg-info) with METADATA and entry points.

        In ``entry_points`` values, ``{mod}`` expands to this site's module prefix.
        """
        info = self.root / (f"{dist}.egg-info" if egg else f"{dist}-{version}.dist-info")
        info.mkdir()
        (info / ("PKG-INFO" if egg else "METADATA")).write_text(
            f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n\nLong description\n"
        )
        if entry_points is not None:
            (info / "entry_points.txt").write_text(self.render(entry_points))
        return info

    def render(self, entry_points: dict[str, dict[str, str]] | str) -> str:
        if isinstance(entry_points, str):
            return textwrap.dedent(entry_points).replace("{mod}", self.prefix)
        lines = []
        for group, eps in entry_points.items():
            lines.append(f"[{group}]")
            lines += [f"{n} = {v.replace('{mod}', self.prefix)}" for n, v in eps.items()]
            lines.append("")
        return "\n".join(lines)

    def uninstall(self, dist: str, version: str = "1.0") -> None:
        shutil.rmtree(self.root / f"{dist}-{version}.dist-info")


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own cache dir and an empty in-process memo."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("MYSERVICE_PLUGIN_CACHE_DIR", str(cache))
    monkeypatch.delenv("MYSERVICE_PLUGIN_CACHE", raising=False)
    discovery.clear_memo()
    yield cache
    discovery.clear_memo()


@pytest.fixture
def site(tmp_path, monkeypatch) -> FakeSite:
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.setattr(sys, "path", [str(root), *sys.path])
    return FakeSite(root)


@pytest.fixture
def later_site(site, tmp_path, monkeypatch) -> FakeSite:
    """A second, empty fake site on ``sys.path`` right after ``site``."""
    root = tmp_path / "later-site"
    root.mkdir()
    monkeypatch.setattr(sys, "path", [str(site.root), str(root), *sys.path[1:]])
    return FakeSite(root)


@pytest.fixture
def plugins(site) -> FakeSite:
    """A namespace ``t.ns`` with plugins from three distributions, and a classes module."""
    site.module(
        "classes",
        '''
        class Base:
            """A plugin base.

            Longer description of the base.
            """

            def __init__(self, *args, **kwds):
                self.args = args
                self.kwds = kwds

            def hello(self, who="world"):
                return f"{type(self).__name__} says hello to {who}"


        class Alpha(Base):
            """The alpha plugin."""


        class Beta(Base):
            """The beta plugin."""


        class Gamma(Base):
            """The gamma plugin."""
        ''',
    )
    site.install(
        "dist-a", "1.0", {"t.ns": {"beta": "{mod}classes:Beta", "alpha": "{mod}classes:Alpha"}}
    )
    site.install("dist-b", "2.0", {"t.ns": {"gamma": "{mod}classes:Gamma"}})
    return site
