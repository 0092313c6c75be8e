"""Fixtures of the hook tests: fake hook distributions on ``sys.path`` and configurations.

``site``: a temporary ``sys.path`` entry where a test "installs" a hook distribution by
writing ``<name>-<version>.dist-info/`` (METADATA, entry_points.txt) and its module; module
names get a unique prefix per test so ``sys.modules`` never leaks between tests.

``hook_conf(tmp_path, disabled=..., timeout=..., **sections)``: a
:class:`myservice.conf.Config` with ``state_path`` under ``tmp_path``.
"""

from __future__ import annotations

import importlib
import itertools
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from myservice import conf as config

_counter = itertools.count()


class FakeSite:
    """A directory on ``sys.path`` holding fake distributions."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.prefix = f"fakehook{next(_counter)}_"

    def module(self, name: str, source: str) -> str:
        """Write module ``<prefix><name>`` and return its real name."""
        full = self.prefix + name
        (self.root / f"{full}.py").write_text(textwrap.dedent(source))
        return full

    def install(self, dist: str, version: str, entry_points: list[tuple[str, str]]) -> None:
        """Write ``dist-version.dist-info`` registering ``(event, "{mod}module:Class")`` in
        ``myservice.hooks`` (``{mod}`` expands to the module prefix)."""
        info = self.root / f"{dist}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        lines = ["[myservice.hooks]"]
        lines += [
            f"{event} = {target.replace('{mod}', self.prefix)}" for event, target in entry_points
        ]
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
        importlib.invalidate_caches()

    def imported(self, name: str) -> Any:
        """The imported module ``<prefix><name>``."""
        return importlib.import_module(self.prefix + name)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSite]:
    from myservice.plugins import discovery

    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.setenv("MYSERVICE_PLUGIN_CACHE_DIR", str(tmp_path / "plugin-cache"))
    monkeypatch.syspath_prepend(str(root))
    discovery.clear_memo()
    yield FakeSite(root)
    discovery.clear_memo()


def make_hook_conf(
    tmp_path: Path,
    disabled: str = "",
    timeout: float = 5.0,
    **sections: dict[str, str],
) -> config.Config:
    conf = config.defaults(str(tmp_path))
    conf = conf.with_overrides(
        "hooks", {"disabled": disabled, "timeout": str(timeout)}, "test [hooks]"
    )
    for section, values in sections.items():
        conf = conf.with_overrides(section, values, f"test [{section}]")
    return conf


@pytest.fixture
def hook_conf() -> Callable[..., config.Config]:
    return make_hook_conf
