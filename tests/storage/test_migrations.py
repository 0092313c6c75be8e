"""Alembic migrations: fresh database -> upgrade -> head; refusing to start when behind."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command

from myservice.storage import migration
from myservice.storage.base import StartupError
from myservice.storage.sql import SQLiteDriver

from .servers import sql_servers

SERVERS = sql_servers("fresh_url")


@pytest.fixture
def fresh(request, tmp_path, make_conf):
    """(driver class, conf writer) over an empty schema of a real server."""
    cls, fixture = request.param
    url = request.getfixturevalue(fixture)

    def conf(**options):
        return make_conf(tmp_path, cls.name, url, **options)

    return cls, conf


def test_script_heads_are_one_linear_history():
    assert migration.script_heads() == ("0001",)


@pytest.mark.parametrize("fresh", SERVERS, indirect=True)
def test_server_driver_refuses_an_empty_schema_and_names_the_command(fresh):
    cls, conf = fresh
    config = conf()
    driver = cls(config)
    with pytest.raises(StartupError) as info:
        driver.start()
    driver.close()
    message = str(info.value)
    assert f"myservice-manage --config-file {config.path} db upgrade" in message
    assert "none (empty database; head is 0001)" in message


@pytest.mark.parametrize("fresh", SERVERS, indirect=True)
def test_upgrade_then_start(fresh):
    cls, conf = fresh
    driver = cls(conf())
    try:
        assert driver.schema_state().is_empty
        before, after = driver.upgrade()
        assert before.is_empty and after.is_head
        assert driver.schema_state().current == ("0001",)
        again_before, again_after = driver.upgrade()  # idempotent
        assert again_before.is_head and again_after.is_head
    finally:
        driver.close()
    started = cls(conf())
    started.start()
    started.check()
    started.close()


@pytest.mark.parametrize("fresh", SERVERS, indirect=True)
def test_auto_upgrade_starts_on_an_empty_schema(fresh):
    cls, conf = fresh
    driver = cls(conf(auto_upgrade=True))
    driver.start()
    try:
        assert driver.schema_state().is_head
    finally:
        driver.close()


@pytest.mark.parametrize("fresh", SERVERS, indirect=True)
def test_a_newer_schema_is_refused(fresh):
    cls, conf = fresh
    driver = cls(conf())
    driver.upgrade()
    with driver._engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'f00dcafe'"))
    driver.close()
    for options in ({}, {"auto_upgrade": True}):
        other = cls(conf(**options))
        with pytest.raises(StartupError) as info:
            other.start()
        other.close()
        assert "f00dcafe, newer than this version of myservice knows" in str(info.value)


@pytest.mark.parametrize("fresh", SERVERS, indirect=True)
def test_downgrade_to_base_and_back(fresh):
    cls, conf = fresh
    driver = cls(conf())
    try:
        driver.upgrade()
        with driver._engine.begin() as conn:
            command.downgrade(migration.alembic_config(conn), "base")
        with driver._engine.connect() as conn:
            assert set(sa.inspect(conn).get_table_names()) <= {"alembic_version"}
        driver.upgrade()
        assert driver.schema_state().is_head
    finally:
        driver.close()


def test_sqlite_upgrades_itself_on_start(tmp_path, make_conf):
    conf = make_conf(tmp_path, "sqlite")  # auto_upgrade is false: sqlite upgrades anyway
    database = conf.state_path / "myservice.sqlite"
    assert not database.exists()
    driver = SQLiteDriver(conf)
    driver.start()
    try:
        assert database.is_file()
        assert driver.schema_state().is_head
        with driver._engine.connect() as conn:
            assert {"users", "user_metadata", "alembic_version"} <= set(
                sa.inspect(conn).get_table_names()
            )
    finally:
        driver.close()


@pytest.mark.parametrize("fresh", SERVERS, indirect=True)
def test_processes_auto_upgrading_together_upgrade_once(fresh):
    import threading

    cls, conf = fresh
    config = conf(auto_upgrade=True)
    drivers = [cls(config) for _ in range(4)]
    barrier = threading.Barrier(len(drivers))
    errors: list[BaseException] = []

    def start(driver) -> None:
        barrier.wait()
        try:
            driver.start()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(d,)) for d in drivers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        assert drivers[0].schema_state().is_head
    finally:
        for driver in drivers:
            driver.close()


# -- a database that is not myservice's, or a failed migration, at start-up ---------------------

ALL = [pytest.param((SQLiteDriver, None), id="sqlite"), *SERVERS]


@pytest.fixture
def any_fresh(request, tmp_path, make_conf):
    """(driver class, conf writer, URL as shown, engine) over an empty database of each
    driver (sqlite: a file of tmp_path)."""
    cls, fixture = request.param
    if fixture is None:
        (tmp_path / "db").mkdir()
        url = f"sqlite:///{tmp_path / 'db' / 'myservice.sqlite'}"
    else:
        url = request.getfixturevalue(fixture)

    def conf(**options):
        return make_conf(tmp_path, cls.name, url, **options)

    shown = cls(conf())._parse_url(url).render_as_string(hide_password=True)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    yield cls, conf, shown, engine
    engine.dispose()


@pytest.mark.parametrize("any_fresh", ALL, indirect=True)
def test_start_refuses_foreign_tables_without_touching_them(any_fresh, caplog):
    cls, conf, shown, engine = any_fresh
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE users (a INTEGER)"))
    for options in ({"auto_upgrade": True}, {}):  # sqlite upgrades either way
        config = conf(**options)
        driver = cls(config)
        with caplog.at_level("INFO", logger="myservice.storage"):
            with pytest.raises(StartupError) as info:
                driver.start()
        driver.close()
        assert str(info.value) == (
            f"the database {shown} has tables (users) but no recorded myservice schema "
            f"revision: it is not a myservice database, or its first upgrade failed part-way; "
            f"use an empty database ([storage] connection in {config.path}) or drop those "
            f"tables, then run: myservice-manage --config-file {config.path} db upgrade"
        )
        assert "Upgrading" not in caplog.text and "empty database" not in caplog.text
    with engine.connect() as conn:
        assert set(sa.inspect(conn).get_table_names()) <= {"users", "alembic_version"}
        assert [c["name"] for c in sa.inspect(conn).get_columns("users")] == ["a"]


def test_an_empty_alembic_version_table_is_not_foreign(tmp_path, make_conf):
    conf = make_conf(tmp_path, "sqlite")
    database = conf.state_path / "myservice.sqlite"
    conf.state_path.mkdir()
    engine = sa.create_engine(f"sqlite:///{database}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32))"))
        state = migration.schema_state(conn)
    engine.dispose()
    assert (state.is_empty, state.is_foreign, state.tables) == (True, False, ())
    driver = SQLiteDriver(conf)
    driver.start()
    try:
        assert driver.schema_state().is_head
    finally:
        driver.close()


def test_many_foreign_tables_are_counted():
    state = migration.SchemaState((), ("0001",), frozenset({"0001"}), tuple("abcdefg"))
    assert state.describe() == (
        "none, but it has tables (a, b, c, d, e and 2 more): not a myservice database, "
        "or a failed first upgrade; head is 0001"
    )


@pytest.mark.parametrize("any_fresh", ALL, indirect=True)
def test_a_failed_migration_at_start_up_is_a_failure(any_fresh):
    cls, conf, shown, engine = any_fresh
    failures = {
        "sqlite": "table user_metadata already exists",
        "postgresql": 'relation "user_metadata" already exists',
        "mysql": "(1050, \"Table 'user_metadata' already exists\")",
    }

    def sneak_in(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("CREATE TABLE USER_METADATA"):
            cursor.execute("CREATE TABLE user_metadata (x INTEGER)")

    config = conf(auto_upgrade=True)
    driver = cls(config)
    sa.event.listen(sa.engine.Engine, "before_cursor_execute", sneak_in)
    try:
        with pytest.raises(StartupError) as info:
            driver.start()
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", sneak_in)
        driver.close()
    expected = f"upgrading {shown} failed: {failures[cls.name]}"
    if cls.name == "mysql":
        expected += (
            " (mysql cannot undo the schema changes made before the error; see "
            f"myservice-manage --config-file {config.path} db current)"
        )
    assert str(info.value) == expected
