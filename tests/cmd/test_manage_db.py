"""``myservice-manage db upgrade|current`` through the real command entry point."""

from __future__ import annotations

import importlib.util

import pytest

from myservice.cmd import manage


@pytest.fixture
def run(monkeypatch, capsys):
    """Run ``myservice-manage ARGS``; returns (exit status, stdout, stderr)."""
    # only the command groups that exist yet (another room may still be adding its own)
    present = tuple(g for g in manage._GROUPS if importlib.util.find_spec(g) is not None)
    monkeypatch.setattr(manage, "_GROUPS", present)

    def run(*args: str) -> tuple[int, str, str]:
        status = manage.main(list(args))
        out, err = capsys.readouterr()
        return status, out, err

    return run


def _one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("myservice-manage: error: ")
    assert "Traceback" not in err
    return lines[0]


def test_sqlite_upgrade_then_current(run, tmp_path, make_conf):
    conf = make_conf(tmp_path, "sqlite")
    status, out, err = run("--config-file", str(conf.path), "db", "current")
    assert (status, err) == (0, "")
    assert "none (empty database; head is 0001)" in out
    status, out, err = run("--config-file", str(conf.path), "db", "upgrade")
    assert (status, err) == (0, "")
    assert "upgraded from none to 0001 (head)" in out
    assert (conf.state_path / "myservice.sqlite").is_file()
    status, out, _ = run("--config-file", str(conf.path), "db", "current")
    assert status == 0 and out.strip().endswith(": 0001 (head)")
    status, out, _ = run("--config-file", str(conf.path), "db", "upgrade")
    assert status == 0 and "already at 0001 (head)" in out


@pytest.mark.parametrize(
    ("server", "fixture"),
    [
        pytest.param("postgresql", "postgresql_fresh_url", marks=pytest.mark.postgresql),
        pytest.param("mysql", "mysql_fresh_url", marks=pytest.mark.mysql),
    ],
)
def test_server_upgrade_lets_the_driver_start(run, request, server, fixture, tmp_path, make_conf):
    from myservice.storage.base import StartupError
    from myservice.storage.sql import MySQLDriver, PostgreSQLDriver

    cls = {"postgresql": PostgreSQLDriver, "mysql": MySQLDriver}[server]
    conf = make_conf(tmp_path, server, request.getfixturevalue(fixture))
    driver = cls(conf)
    with pytest.raises(StartupError) as info:
        driver.start()
    driver.close()
    command = f"myservice-manage --config-file {conf.path} db upgrade"
    assert command in str(info.value)
    # the operator runs exactly the command named
    status, out, err = run(*command.split()[1:])
    assert (status, err) == (0, "")
    assert "0001 (head)" in out
    status, out, _ = run("--config-file", str(conf.path), "db", "current")
    assert status == 0 and out.strip().endswith("0001 (head)")
    driver = cls(conf)
    driver.start()
    driver.close()


def test_missing_config_file(run, tmp_path):
    status, out, err = run("--config-file", str(tmp_path / "nope.conf"), "db", "upgrade")
    assert status == 2 and out == ""
    line = _one_line_error(err)
    assert "nope.conf: configuration file not found" in line


def test_unknown_driver_lists_the_names(run, tmp_path, make_conf):
    (tmp_path / "myservice.conf").write_text("[storage]\ndriver = sqlit\n")
    status, _, err = run("--config-file", str(tmp_path / "myservice.conf"), "db", "current")
    assert status == 2
    line = _one_line_error(err)
    assert "[storage] driver" in line and "'sqlite'" in line


def test_memory_driver_has_no_schema(run, tmp_path, make_conf):
    conf = make_conf(tmp_path, "memory")
    status, _, err = run("--config-file", str(conf.path), "db", "upgrade")
    assert status == 2
    assert "driver = memory has no SQL schema" in _one_line_error(err)


def test_empty_server_connection(run, tmp_path, make_conf):
    conf = make_conf(tmp_path, "postgresql")
    status, _, err = run("--config-file", str(conf.path), "db", "upgrade")
    assert status == 2
    assert "[storage] connection: empty" in _one_line_error(err)


def test_unreachable_server_is_one_line_without_the_password(run, tmp_path, make_conf):
    import socket

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    url = f"postgresql+psycopg://user:s3cr3t-pw@127.0.0.1:{port}/db"
    conf = make_conf(tmp_path, "postgresql", url, connect_timeout=1)
    for sub in ("upgrade", "current"):
        status, _, err = run("--config-file", str(conf.path), "db", sub)
        assert status == 2
        line = _one_line_error(err)
        assert "unavailable" in line and str(port) in line
        assert "s3cr3t-pw" not in err


def test_unknown_revision(run, tmp_path, make_conf):
    conf = make_conf(tmp_path, "sqlite")
    status, _, err = run("--config-file", str(conf.path), "db", "upgrade", "nosuchrev")
    assert status == 2
    assert "nosuchrev" in _one_line_error(err)


def test_console_error_is_exactly_one_line(tmp_path, make_conf):
    """In a real process (no pytest log capture) stderr holds the error line only."""
    import subprocess
    import sys

    conf = make_conf(tmp_path, "postgresql", "postgresql+psycopg://u:s3cr3t-pw@127.0.0.1:1/db")
    code = (
        "import importlib.util, sys\n"
        "from myservice.cmd import manage\n"
        "manage._GROUPS = tuple(g for g in manage._GROUPS if importlib.util.find_spec(g))\n"
        "sys.exit(manage.main(sys.argv[1:]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "--config-file", str(conf.path), "db", "upgrade"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "unavailable" in _one_line_error(proc.stderr)
    assert "s3cr3t-pw" not in proc.stderr
