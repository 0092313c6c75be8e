"""SQL-driver specifics: configuration errors, secrets, SQLite set-up, schema details."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
import textwrap
import uuid

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from myservice.storage import migration, schema
from myservice.storage.base import StartupError, Unavailable
from myservice.storage.sql import MySQLDriver, PostgreSQLDriver, SQLiteDriver

from .forwarder import Forwarder
from .servers import sql_servers

SERVER_DRIVERS = [
    pytest.param(PostgreSQLDriver, id="postgresql"),
    pytest.param(MySQLDriver, id="mysql"),
]
ALL_SQL = [pytest.param((SQLiteDriver, None), id="sqlite"), *sql_servers()]


def _user(name: str) -> dict:
    return {"name": name, "email": None, "enabled": True, "description": None}


@pytest.fixture
def sql_driver(request, tmp_path, make_conf):
    cls, fixture = request.param
    connection = request.getfixturevalue(fixture) if fixture else ""
    driver = cls(make_conf(tmp_path, cls.name, connection, auto_upgrade=True))
    driver.start()
    yield driver
    driver.close()


# -- configuration errors -------------------------------------------------------------------


@pytest.mark.parametrize("cls", SERVER_DRIVERS)
def test_empty_connection_names_the_option(cls, tmp_path, make_conf):
    conf = make_conf(tmp_path, cls.name)
    with pytest.raises(StartupError) as info:
        cls(conf).start()
    message = str(info.value)
    assert f"{conf.path}: [storage] connection: empty" in message
    assert cls.default_drivername + "://" in message


@pytest.mark.parametrize(
    ("cls", "module", "extra"),
    [
        (PostgreSQLDriver, "psycopg", "postgresql"),
        (MySQLDriver, "pymysql", "mysql"),
    ],
)
def test_missing_client_library_names_the_extra(
    cls, module, extra, tmp_path, make_conf, monkeypatch
):
    monkeypatch.setitem(sys.modules, module, None)  # makes 'import module' fail
    conf = make_conf(tmp_path, cls.name, f"{cls.default_drivername}://u@127.0.0.1/db")
    with pytest.raises(StartupError) as info:
        cls(conf).start()
    assert f"pip install 'myservice[{extra}]'" in str(info.value)
    assert repr(module) in str(info.value)


@pytest.mark.parametrize(
    ("cls", "url", "expected"),
    [
        (PostgreSQLDriver, "mysql+pymysql://u@h/db", "driver = postgresql"),
        (PostgreSQLDriver, "postgresql+psycopg2://u@h/db", "'postgresql+psycopg://'"),
        (MySQLDriver, "mysql+mysqldb://u@h/db", "'mysql+pymysql://'"),
        (MySQLDriver, "mysql+pymysql://u@h/db?charset=latin1", "charset=utf8mb4"),
        (SQLiteDriver, "sqlite://", "driver = memory"),
        (SQLiteDriver, "sqlite:///:memory:", "driver = memory"),
        (SQLiteDriver, "postgresql://u@h/db", "driver = sqlite"),
        (PostgreSQLDriver, "not a url", "not a valid database URL"),
    ],
)
def test_wrong_urls_are_explained(cls, url, expected, tmp_path, make_conf):
    conf = make_conf(tmp_path, cls.name, url)
    with pytest.raises(StartupError) as info:
        cls(conf).start()
    assert expected in str(info.value)
    assert str(conf.path) in str(info.value)


@pytest.mark.parametrize("cls", [PostgreSQLDriver, MySQLDriver])
def test_a_raw_at_sign_in_the_password_is_refused_without_showing_any_of_it(
    cls, tmp_path, make_conf
):
    # the URL parser splits at the first '@': 'PWb@127.0.0.1' would be taken for the host
    # and shown in every connection error
    url = f"{cls.default_drivername}://root:PWa@PWb@127.0.0.1/db"
    conf = make_conf(tmp_path, cls.name, url)
    with pytest.raises(StartupError) as info:
        cls(conf).start()
    message = str(info.value)
    assert "PWa" not in message and "PWb" not in message
    assert message == (
        f"{conf.path}: [storage] connection: the part before the host contains an '@' that is "
        "not percent-encoded (in the password or user name, probably); write it as %40 (e.g. "
        f"{cls.example_url})"
    )


@pytest.mark.parametrize(
    "cls_url",
    [
        (PostgreSQLDriver, "postgresql+psycopg://u@127.0.0.1:5432/"),
        (MySQLDriver, "mysql+pymysql://root@127.0.0.1:3306/"),
        (MySQLDriver, "mysql+pymysql://root@127.0.0.1"),
    ],
)
def test_a_server_url_without_a_database_name_is_refused(cls_url, tmp_path, make_conf):
    # PostgreSQL would quietly use the database named after the user; PyMySQL asserted
    cls, url = cls_url
    conf = make_conf(tmp_path, cls.name, url)
    with pytest.raises(StartupError) as info:
        cls(conf).start()
    assert str(info.value) == (
        f"{conf.path}: [storage] connection: no database name; expected the form {cls.example_url}"
    )


def test_passwords_never_shown_for_bad_urls(tmp_path, make_conf):
    conf = make_conf(tmp_path, "postgresql", "postgresql+psycopg://u:s3cr3t-pw@h:notaport/db")
    with pytest.raises(StartupError) as info:
        PostgreSQLDriver(conf).start()
    assert "s3cr3t-pw" not in str(info.value)


@pytest.mark.postgresql
def test_postgresql_password_never_in_messages_or_logs(postgresql_url, tmp_path, make_conf, caplog):
    caplog.set_level(logging.DEBUG)
    real = sa.make_url(postgresql_url)
    forwarder = Forwarder(real.port)
    forwarder.start()
    # trust authentication accepts any password: the driver really runs with this URL
    url = real.set(password="s3cr3t-pw", port=forwarder.port).render_as_string(False)
    driver = PostgreSQLDriver(make_conf(tmp_path, "postgresql", url, auto_upgrade=True))
    try:
        driver.start()
        assert "***" in driver.url_for_display
        driver.create_user(_user(f"pw-{uuid.uuid4().hex}"))
        forwarder.stop()
        with pytest.raises(Unavailable) as info:
            driver.list_users(1)
        assert "s3cr3t-pw" not in str(info.value)
        fresh = PostgreSQLDriver(driver.conf)
        with pytest.raises(StartupError) as start_info:
            fresh.start()
        assert "s3cr3t-pw" not in str(start_info.value)
    finally:
        driver.close()
        forwarder.stop()
    assert "s3cr3t-pw" not in caplog.text
    assert "***" in caplog.text


@pytest.mark.mysql
def test_mysql_wrong_password_is_a_startup_error_without_it(mysql_url, tmp_path, make_conf, caplog):
    caplog.set_level(logging.DEBUG)
    url = sa.make_url(mysql_url).set(password="s3cr3t-pw").render_as_string(False)
    driver = MySQLDriver(make_conf(tmp_path, "mysql", url))
    with pytest.raises(StartupError) as info:
        driver.start()
    assert "Access denied" in str(info.value)
    assert "s3cr3t-pw" not in str(info.value)
    assert "s3cr3t-pw" not in caplog.text
    driver.close()


def test_bare_scheme_uses_our_client_library(tmp_path, make_conf):
    conf = make_conf(tmp_path, "postgresql", "postgresql://u@127.0.0.1/db")
    assert PostgreSQLDriver(conf)._parse_url("postgres://u@h/db").drivername == (
        "postgresql+psycopg"
    )
    conf = make_conf(tmp_path, "mysql", "mysql://u@h/db")
    url = MySQLDriver(conf)._parse_url("mysql://u@h/db")
    assert (url.drivername, url.query["charset"]) == ("mysql+pymysql", "utf8mb4")


# -- SQLite --------------------------------------------------------------------------------


def test_sqlite_default_file_under_the_state_path(tmp_path, make_conf):
    conf = make_conf(tmp_path, "sqlite", state_path=str(tmp_path / "deep" / "state"))
    driver = SQLiteDriver(conf)
    driver.start()
    try:
        database = tmp_path / "deep" / "state" / "myservice.sqlite"
        assert database.is_file()
        assert (tmp_path / "deep" / "state" / "myservice.sqlite.lock").is_file()
        with driver._engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
            assert migration.schema_state(conn).is_head
    finally:
        driver.close()


def test_sqlite_directory_and_files_it_creates_are_private(tmp_path, make_conf):
    state = tmp_path / "fresh" / "state"
    conf = make_conf(tmp_path, "sqlite", state_path=str(state))
    old_umask = os.umask(0o022)  # the usual umask, which would make them world-readable
    try:
        driver = SQLiteDriver(conf)
        driver.start()
        try:
            driver.create_user(_user("private"))
            with driver._engine.connect() as conn:  # the WAL and its index exist while open
                conn.exec_driver_sql("SELECT 1")
                modes = {
                    path.name: stat.S_IMODE(path.stat().st_mode)
                    for path in (state, *state.glob("myservice.sqlite*"))
                    if not path.name.endswith(".lock")
                }
        finally:
            driver.close()
    finally:
        os.umask(old_umask)
    assert modes == {
        "state": 0o700,
        "myservice.sqlite": 0o600,
        "myservice.sqlite-wal": 0o600,
        "myservice.sqlite-shm": 0o600,
    }


def test_sqlite_keeps_the_mode_of_an_existing_directory_and_database(tmp_path, make_conf):
    state = tmp_path / "shared"
    state.mkdir(mode=0o750)
    state.chmod(0o750)
    (state / "myservice.sqlite").touch()
    (state / "myservice.sqlite").chmod(0o640)
    driver = SQLiteDriver(make_conf(tmp_path, "sqlite", state_path=str(state)))
    driver.start()
    driver.close()
    assert stat.S_IMODE(state.stat().st_mode) == 0o750
    assert stat.S_IMODE((state / "myservice.sqlite").stat().st_mode) == 0o640


def test_sqlite_state_path_that_cannot_be_created(tmp_path, make_conf):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    conf = make_conf(tmp_path, "sqlite", state_path=str(blocker / "state"))
    with pytest.raises(StartupError) as info:
        SQLiteDriver(conf).start()
    assert str(blocker / "state") in str(info.value)
    assert "state_path" in str(info.value)


def test_sqlite_workers_starting_together_upgrade_once(tmp_path, make_conf):
    conf = make_conf(tmp_path, "sqlite")
    script = textwrap.dedent(
        f"""
        from myservice import conf
        from myservice.storage.sql import SQLiteDriver
        driver = SQLiteDriver(conf.load({str(conf.path)!r}))
        driver.start()
        driver.create_user({{"name": "w" + str(__import__("os").getpid()), "enabled": True}})
        driver.close()
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    results = [(p.wait(), p.stderr.read()) for p in procs]
    for p in procs:
        p.stderr.close()
    assert [r for r in results if r[0] != 0] == []
    driver = SQLiteDriver(conf)
    driver.start()
    try:
        assert len(driver.list_users(10)) == 4
        with driver._engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM alembic_version").scalar() == 1
    finally:
        driver.close()


def test_sqlite_driver_survives_fork(tmp_path, make_conf):
    """A connection opened before fork() (gunicorn --preload) is never reused by the child."""

    driver = SQLiteDriver(make_conf(tmp_path, "sqlite"))
    driver.start()
    try:
        driver.create_user(_user("parent"))
        with driver._engine.connect() as conn:
            inherited = conn.connection.dbapi_connection
        pid = os.fork()
        if pid == 0:  # child: must open its own connection
            code = 1
            try:
                with driver._engine.connect() as conn:
                    if conn.connection.dbapi_connection is inherited:
                        os._exit(4)
                driver.create_user(_user("child"))
                code = 0 if len(driver.list_users(10)) == 2 else 3
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert [u["name"] for u in driver.list_users(10)] == ["parent", "child"]
    finally:
        driver.close()


# -- schema ---------------------------------------------------------------------------------


@pytest.mark.parametrize("sql_driver", ALL_SQL, indirect=True)
def test_migrated_schema_matches_schema_py(sql_driver):
    with sql_driver._engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, schema.metadata) == []


@pytest.mark.parametrize("sql_driver", ALL_SQL, indirect=True)
def test_deleting_a_user_deletes_its_metadata_rows(sql_driver):
    user = sql_driver.create_user(_user(f"cascade-{uuid.uuid4().hex}"))
    sql_driver.set_metadata_item(user["id"], "a", "1")
    sql_driver.set_metadata_item(user["id"], "b", "2")
    with sql_driver._engine.connect() as conn:
        seq = conn.execute(
            sa.select(schema.users.c.seq).where(schema.users.c.id == user["id"])
        ).scalar_one()
    count = sa.select(sa.func.count()).where(schema.user_metadata.c.user_seq == seq)
    with sql_driver._engine.connect() as conn:
        assert conn.execute(count).scalar() == 2
    sql_driver.delete_user(user["id"])
    with sql_driver._engine.connect() as conn:
        assert conn.execute(count).scalar() == 0


@pytest.mark.mysql
@pytest.mark.parametrize("sql_driver", [ALL_SQL[2]], indirect=True)
def test_mysql_tables_are_utf8mb4_with_an_exact_binary_collation(sql_driver):
    with sql_driver._engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT table_name, table_collation, engine FROM information_schema.tables "
                "WHERE table_schema = DATABASE() AND table_name IN ('users', 'user_metadata')"
            )
        ).all()
        types = conn.execute(
            sa.text(
                "SELECT column_type FROM information_schema.columns WHERE "
                "table_schema = DATABASE() AND table_name = 'users' AND column_name = 'created_at'"
            )
        ).scalar()
    assert len(rows) == 2
    for _, collation, engine in rows:
        assert collation.startswith("utf8mb4_") and collation.endswith("bin")
        assert engine == "InnoDB"
    assert types == "datetime(6)"
