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
