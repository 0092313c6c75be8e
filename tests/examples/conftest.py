"""The session's virtual environment for the example plugin packages (``tests/examples/``).

One virtual environment is built per test session (``python -m venv``): myservice is
installed into it (editable, no dependencies but importlib-metadata), then the packages
of ``examples/`` from a copy of that directory (so no build output lands in the work
tree).  Test modules that need more (``test_contrib.py`` installs myservice's dependencies and
``myservice-contrib``) add it to this one environment rather than building a second.

setuptools < 82 and ``wheel`` are installed first, and the packages are then built with
``--no-build-isolation``: a fresh Python 3.11 venv has setuptools 65 and no ``wheel``,
and building once against them is much cheaper than one isolated build env per package.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
#: installed by the session fixture; postgresql_driver is installed by a test
BASE_PACKAGES = (
    "db_driver_base",
    "mysql_driver",
    "oracle_driver",
    "ide_save_content",
    "ide_upload_content",
    "my_extensions",
)


class Venv:
    """A virtual environment and the commands the tests run in it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.python = root / "venv" / "bin" / "python"
        self.src = root / "src"
        self.workdir = root / "work"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_"))}
        env.update(PYTHONNOUSERSITE="1", PIP_DISABLE_PIP_VERSION_CHECK="1", **extra)
        return env

    def run(self, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.python), *args],
            cwd=self.workdir,
            env=self.env(**extra_env),
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            pytest.fail(
                f"{' '.join(args[:4])} ... exited {proc.returncode}\n"
                f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
            )
        return proc

    def pip(self, *args: str) -> None:
        self.run("-m", "pip", "--quiet", *args)

    def snippet(self, code: str, **extra_env: str) -> str:
        return self.run("-c", textwrap.dedent(code), **extra_env).stdout


@pytest.fixture(scope="session")
def venv(tmp_path_factory) -> Venv:
    env = Venv(tmp_path_factory.mktemp("examples-venv"))
    env.workdir.mkdir()
    subprocess.run([sys.executable, "-m", "venv", str(env.root / "venv")], check=True)
    env.pip("install", "setuptools>=65,<82", "wheel", "importlib-metadata>=6.0")
    env.pip("install", "--no-deps", "--no-build-isolation", "-e", str(REPO))
    shutil.copytree(
        EXAMPLES, env.src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    env.pip("install", "--no-build-isolation", *(str(env.src / p) for p in BASE_PACKAGES))
    return env
