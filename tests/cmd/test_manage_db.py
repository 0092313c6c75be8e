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
    database = conf.state_path / "myservice.sqlite"
    status, out, err = run("--config-file", str(conf.path), "db", "current")
    assert (status, out) == (2, "")
    assert _one_line_error(err) == (
        f"myservice-manage: error: no database at {database}: check [DEFAULT] state_path / "
        f"[storage] connection in {conf.path}; it is created by `myservice-manage db upgrade` "
        f"or the service's first start"
    )
    assert not conf.state_path.exists()  # read-only: created nothing
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


# -- read-only commands create nothing ------------------------------------------------------


def test_current_with_a_mistyped_state_path_creates_nothing(run, tmp_path, make_conf):
    typo = tmp_path / "var" / "lib" / "myservcie"
    conf = make_conf(tmp_path, "sqlite", state_path=str(typo))
    status, out, err = run("--config-file", str(conf.path), "db", "current")
    assert (status, out) == (2, "")
    assert _one_line_error(err) == (
        f"myservice-manage: error: no database at {typo / 'myservice.sqlite'}: check "
        f"[DEFAULT] state_path / [storage] connection in {conf.path}; it is created by "
        f"`myservice-manage db upgrade` or the service's first start"
    )
    assert not (tmp_path / "var").exists()
    # an explicit URL naming a missing file: the same, and its directory is not made either
    missing = tmp_path / "nowhere" / "db.sqlite"
    conf = make_conf(tmp_path, "sqlite", f"sqlite:///{missing}")
    status, _, err = run("--config-file", str(conf.path), "db", "current")
    assert status == 2
    assert f"error: no database at {missing}: check [DEFAULT] state_path" in _one_line_error(err)
    assert not missing.parent.exists()


# -- databases that are not (yet) myservice's ------------------------------------------------

DATABASES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", marks=pytest.mark.postgresql, id="postgresql"),
    pytest.param("mysql", marks=pytest.mark.mysql, id="mysql"),
]


@pytest.fixture
def database(request, tmp_path, make_conf):
    """(conf, URL as shown in messages, engine on the same database) of an empty database."""
    import sqlalchemy as sa

    from myservice.storage.sql import SQLDriver

    name = request.param
    if name == "sqlite":
        url = f"sqlite:///{tmp_path / 'db' / 'myservice.sqlite'}"
        (tmp_path / "db").mkdir()
    else:
        url = request.getfixturevalue(f"{name}_fresh_url")
    conf = make_conf(tmp_path, name, url)
    driver_cls = next(c for c in SQLDriver.__subclasses__() if c.name == name)
    shown = driver_cls(conf)._parse_url(url).render_as_string(hide_password=True)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    yield conf, shown, engine
    engine.dispose()


def _tables(engine) -> set[str]:
    import sqlalchemy as sa

    with engine.connect() as conn:
        return set(sa.inspect(conn).get_table_names())


def _foreign_error(shown: str, tables: str, conf) -> str:
    return (
        f"myservice-manage: error: the database {shown} has tables ({tables}) but no recorded "
        f"myservice schema revision: it is not a myservice database, or its first upgrade "
        f"failed part-way; use an empty database ([storage] connection in {conf.path}) or "
        f"drop those tables, then run: myservice-manage --config-file {conf.path} db upgrade"
    )


@pytest.mark.parametrize("database", DATABASES, indirect=True)
def test_upgrade_refuses_a_database_with_foreign_tables(run, database):
    import sqlalchemy as sa

    conf, shown, engine = database
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE user_metadata (x INTEGER)"))
    status, out, err = run("--config-file", str(conf.path), "db", "upgrade")
    assert (status, out) == (2, "")
    assert _one_line_error(err) == _foreign_error(shown, "user_metadata", conf)
    assert "unavailable" not in err
    # nothing was created (MySQL cannot roll a CREATE TABLE back: it must not start)
    assert _tables(engine) <= {"user_metadata", "alembic_version"}
    status, out, err = run("--config-file", str(conf.path), "db", "current")
    assert (status, err) == (0, "")
    assert out == (
        f"{shown}: none, but it has tables (user_metadata): not a myservice database, "
        f"or a failed first upgrade; head is 0001\n"
    )
    assert "empty" not in out
    # doing what the message says mends it
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE user_metadata"))
    status, out, err = run("--config-file", str(conf.path), "db", "upgrade")
    assert (status, err) == (0, "")
    assert out == f"{shown}: upgraded from none to 0001 (head)\n"


@pytest.fixture
def failing_migration():
    """Makes the migration's ``CREATE TABLE user_metadata`` fail the way a foreign table
    would, by creating one just before it on the migration's own connection (as when a
    table appears after the check); yields ``stop()``, which ends that."""
    import sqlalchemy as sa

    def sneak_in(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("CREATE TABLE USER_METADATA"):
            cursor.execute("CREATE TABLE user_metadata (x INTEGER)")

    def stop():
        if sa.event.contains(sa.engine.Engine, "before_cursor_execute", sneak_in):
            sa.event.remove(sa.engine.Engine, "before_cursor_execute", sneak_in)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", sneak_in)
    try:
        yield stop
    finally:
        stop()


FAILURES = {
    "sqlite": "table user_metadata already exists",
    "postgresql": 'relation "user_metadata" already exists',
    "mysql": "(1050, \"Table 'user_metadata' already exists\")",
}


@pytest.mark.parametrize("database", DATABASES, indirect=True)
def test_a_failed_migration_is_a_failure_not_unavailable(run, database, failing_migration):
    import sqlalchemy as sa

    conf, shown, engine = database
    name = conf.storage.driver
    status, out, err = run("--config-file", str(conf.path), "db", "upgrade")
    assert (status, out) == (2, "")
    expected = f"myservice-manage: error: upgrading {shown} failed: {FAILURES[name]}"
    if name == "mysql":
        expected += (
            " (mysql cannot undo the schema changes made before the error; see "
            f"myservice-manage --config-file {conf.path} db current)"
        )
    assert _one_line_error(err) == expected
    failing_migration()  # stop
    status, out, err = run("--config-file", str(conf.path), "db", "current")
    assert (status, err) == (0, "")
    if name != "mysql":  # rolled back: still empty
        assert out == f"{shown}: none (empty database; head is 0001)\n"
        assert _tables(engine) == set()
        return
    # MySQL/MariaDB: users (and the table that broke it) stay; they are named, not "empty"
    assert out == (
        f"{shown}: none, but it has tables (user_metadata, users): not a myservice database, "
        f"or a failed first upgrade; head is 0001\n"
    )
    status, out, err = run("--config-file", str(conf.path), "db", "upgrade")
    assert (status, out) == (2, "")
    assert _one_line_error(err) == _foreign_error(shown, "user_metadata, users", conf)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE user_metadata, users"))
    status, out, err = run("--config-file", str(conf.path), "db", "upgrade")
    assert (status, err) == (0, "")
    assert out == f"{shown}: upgraded from none to 0001 (head)\n"


# -- no downgrades ------------------------------------------------------------------------------


def test_a_revision_behind_the_current_one_is_refused(run, tmp_path, make_conf):
    conf = make_conf(tmp_path, "sqlite")
    database = conf.state_path / "myservice.sqlite"
    shown = f"sqlite:///{database}"
    status, _, _ = run("--config-file", str(conf.path), "db", "upgrade")
    assert status == 0
    for target in ("base", "-1", "head-1"):
        status, out, err = run("--config-file", str(conf.path), "db", "upgrade", "--", target)
        assert (status, out) == (2, ""), target
        assert _one_line_error(err) == (
            f"myservice-manage: error: the database schema of {shown} is at revision "
            f"0001 (head); {target!r} is behind it and downgrades are not supported: restore "
            f"a backup of the database taken before the upgrade instead"
        )
    status, out, _ = run("--config-file", str(conf.path), "db", "current")
    assert (status, out) == (0, f"{shown}: 0001 (head)\n")
    # the current revision itself, or head, is the no-op it always was
    for target in ("0001", "head"):
        status, out, err = run("--config-file", str(conf.path), "db", "upgrade", target)
        assert (status, err, out) == (0, "", f"{shown}: already at 0001 (head)\n")


def test_downgrade_command_says_there_are_none(run, tmp_path, make_conf):
    conf = make_conf(tmp_path, "sqlite")
    for extra in ((), ("base",), ("-1",)):
        status, out, err = run("--config-file", str(conf.path), "db", "downgrade", *extra)
        assert (status, out) == (2, "")
        assert _one_line_error(err) == (
            "myservice-manage: error: db downgrade: downgrades are not supported; restore a "
            "backup of the database taken before the upgrade instead (and run the myservice "
            "version that matches it)"
        )
    assert not conf.state_path.exists()  # it touched nothing


def test_downgrade_is_not_listed_in_help(run, capsys):
    with pytest.raises(SystemExit):
        run("db", "--help")
    out = capsys.readouterr().out
    assert "current" in out and "upgrade" in out
    assert "downgrade" not in out
