"""Fixtures of the filter tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def paste_conf(tmp_path: Path) -> dict:
    """A global_conf like Paste Deploy passes it, for an ini file in ``tmp_path``."""
    ini = tmp_path / "api-paste.ini"
    ini.write_text("[DEFAULT]\n")
    return {"here": str(tmp_path), "__file__": str(ini)}
