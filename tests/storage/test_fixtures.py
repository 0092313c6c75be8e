"""The shared database fixtures skip with a reason - and fail under CI=true."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TARGET = "tests/storage/test_conformance.py::test_check_passes_on_a_healthy_backend[postgresql]"


def _run_pytest(env_overrides: dict[str, str | None]) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    for key, value in env_overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rsf", "-p", "no:cacheprovider", TARGET],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (None, "MYSERVICE_TEST_POSTGRESQL_URL is not set"),
        ("postgresql+psycopg://u:s3cr3t-pw@127.0.0.1:1/db", "unreachable"),
    ],
    ids=["unset", "unreachable"],
)
def test_skip_locally_fail_in_ci(url, reason):
    local = _run_pytest({"MYSERVICE_TEST_POSTGRESQL_URL": url, "CI": None})
    assert local.returncode == 0, local.stdout
    assert "1 skipped" in local.stdout and reason in local.stdout

    ci = _run_pytest({"MYSERVICE_TEST_POSTGRESQL_URL": url, "CI": "true"})
    assert ci.returncode == 1, ci.stdout
    assert "CI=true: this must not be skipped" in ci.stdout and reason in ci.stdout
    assert "s3cr3t-pw" not in local.stdout + ci.stdout
