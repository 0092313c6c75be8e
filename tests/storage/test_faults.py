"""The database goes away and comes back: ``Unavailable`` meanwhile, the same driver recovers.

A tiny TCP forwarder stands between the driver and the real server; stopping it closes the
listener and every live connection (as a server restart or network cut would), starting it
again listens on the same port.
"""

from __future__ import annotations

import threading
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from myservice.storage.base import StartupError, Unavailable
from myservice.storage.sql import SQLDriver

from .forwarder import Forwarder
from .outcome import outcome_of
from .servers import sql_servers

SERVERS = sql_servers()


def _forwarded_driver(request, tmp_path, make_conf, **options):
    cls, fixture = request.param
    real = sa.make_url(request.getfixturevalue(fixture))
    forwarder = Forwarder(real.port)
    forwarder.start()
    url = real.set(host="127.0.0.1", port=forwarder.port)
    conf = make_conf(
        tmp_path,
        cls.name,
        url.render_as_string(hide_password=False),
        auto_upgrade=True,
        connect_timeout=2,
        pool_timeout=2,
        **options,
    )
    driver: SQLDriver = cls(conf)
    driver.start()
    return driver, forwarder


@pytest.fixture
def through_forwarder(request, tmp_path, make_conf):
    """(driver, forwarder): a started driver whose connections pass through a forwarder."""
    driver, forwarder = _forwarded_driver(request, tmp_path, make_conf)
    yield driver, forwarder
    driver.close()
    forwarder.stop()


@pytest.fixture
def one_second_queries(request, tmp_path, make_conf):
    """As ``through_forwarder``, with ``[storage] query_timeout = 1``."""
    driver, forwarder = _forwarded_driver(request, tmp_path, make_conf, query_timeout=1)
    yield driver, forwarder
    forwarder.thaw()
    driver.close()
    forwarder.stop()


def _user(name: str) -> dict:
    return {"name": name, "email": None, "enabled": True, "description": None}


@pytest.mark.parametrize("through_forwarder", SERVERS, indirect=True)
def test_database_down_then_back(through_forwarder):
    driver, forwarder = through_forwarder
    user = driver.create_user(_user(f"faults-{uuid.uuid4().hex}"))
    # several pooled connections exist when the cut happens
    threads = [threading.Thread(target=driver.get_user, args=(user["id"],)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    forwarder.stop()
    for call in (
        lambda: driver.get_user(user["id"]),
        lambda: driver.list_users(5),
        lambda: driver.create_user(_user(f"faults-{uuid.uuid4().hex}")),
        lambda: driver.set_metadata_item(user["id"], "k", "v"),
        driver.check,
    ):
        with pytest.raises(Unavailable) as info:
            call()
        assert driver.url_for_display in str(info.value)

    forwarder.start()
    driver.check()
    assert driver.get_user(user["id"]) == user
    driver.set_metadata_item(user["id"], "k", "v")
    assert driver.get_metadata(user["id"]) == {"k": "v"}
    assert driver.create_user(_user(f"faults-{uuid.uuid4().hex}"))["id"]


@pytest.mark.parametrize("through_forwarder", SERVERS, indirect=True)
def test_start_against_a_down_server_is_a_startup_error(through_forwarder, tmp_path, make_conf):
    driver, forwarder = through_forwarder
    forwarder.stop()
    fresh = type(driver)(driver.conf)
    with pytest.raises(StartupError) as info:
        fresh.start()
    assert "cannot use the database" in str(info.value)
    assert str(forwarder.port) in str(info.value)
    fresh.close()


def test_pool_timeout_is_unavailable(tmp_path, make_conf):
    conf = make_conf(tmp_path, "sqlite", pool_size=1, pool_timeout=0.1)
    from myservice.storage.sql import SQLiteDriver

    driver = SQLiteDriver(conf)
    driver.start()
    try:
        held = driver._engine.connect()  # the only connection of the pool
        try:
            with pytest.raises(Unavailable) as info:
                driver.list_users(1)
            assert "unavailable" in str(info.value)
            with pytest.raises(Unavailable):
                driver.check()
        finally:
            held.close()
        driver.check()
        assert driver.list_users(1) == []
    finally:
        driver.close()


def _create_cut_by(driver, event: str, cut, name: str) -> Unavailable:
    """The ``Unavailable`` of ``create_user(name)`` while ``cut`` listens to ``event`` of the
    driver's engine (and stops the forwarder there)."""
    sa.event.listen(driver._engine, event, cut)
    try:
        with pytest.raises(Unavailable) as info:
            driver.create_user(_user(name))
    finally:
        sa.event.remove(driver._engine, event, cut)
    return info.value


@pytest.mark.parametrize("through_forwarder", SERVERS, indirect=True)
def test_a_write_cut_before_its_commit_wrote_nothing(through_forwarder):
    driver, forwarder = through_forwarder
    name = f"faults-{uuid.uuid4().hex}"

    def cut(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("INSERT"):
            forwarder.stop()

    assert _create_cut_by(driver, "before_cursor_execute", cut, name).nothing_written
    forwarder.start()
    assert driver.list_users(10, None, name) == []
    # and with the server unreachable from the start
    forwarder.stop()
    with pytest.raises(Unavailable) as info:
        driver.create_user(_user(name))
    assert info.value.nothing_written


@pytest.mark.parametrize("through_forwarder", SERVERS, indirect=True)
def test_a_write_cut_during_its_commit_has_an_unknownoutcome(through_forwarder):
    driver, forwarder = through_forwarder
    name = f"faults-{uuid.uuid4().hex}"

    def cut(conn):  # runs just before the driver's COMMIT is sent
        forwarder.stop()

    error = _create_cut_by(driver, "commit", cut, name)
    assert not error.nothing_written
    assert "while committing" in str(error)
    forwarder.start()
    # the connection died before COMMIT reached the server, so here nothing was saved; the
    # driver could not know that, hence "unknown"
    assert driver.list_users(10, None, name) == []


@pytest.mark.parametrize("one_second_queries", SERVERS, indirect=True)
def test_a_hung_server_is_unavailable_after_query_timeout(one_second_queries):
    driver, forwarder = one_second_queries
    user = driver.create_user(_user(f"hang-{uuid.uuid4().hex}"))
    forwarder.freeze()  # connections stay open and acknowledged; nothing comes back
    outcome = outcome_of(lambda: driver.get_user(user["id"]))
    assert isinstance(outcome, Unavailable), outcome
    assert outcome.nothing_written
    outcome = outcome_of(driver.check)  # the health check is bounded the same way
    assert isinstance(outcome, Unavailable), outcome
    forwarder.thaw()
    driver.check()
    assert driver.get_user(user["id"]) == user


@pytest.mark.parametrize("one_second_queries", SERVERS[:1], indirect=True)  # postgresql
def test_a_silent_postgresql_peer_is_named_and_its_connection_dropped(one_second_queries):
    driver, forwarder = one_second_queries
    with driver._engine.connect() as conn:  # a pooled connection, then a silent peer
        conn.execute(sa.text("SELECT 1"))
        forwarder.freeze()
        try:
            outcome = outcome_of(lambda: conn.execute(sa.text("SELECT 1")))
        finally:
            forwarder.thaw()  # so that a failure does not hang the rollback below
        assert isinstance(outcome, sa_exc.OperationalError), outcome
        assert outcome.connection_invalidated  # not handed out again by the pool
        assert "no answer from the database server within 2 s" in str(outcome)
    driver.check()


@pytest.mark.parametrize("one_second_queries", SERVERS[:1], indirect=True)  # postgresql
def test_a_write_whose_commit_gets_no_answer_has_an_unknownoutcome(one_second_queries):
    driver, forwarder = one_second_queries
    name = f"hang-{uuid.uuid4().hex}"

    def freeze(conn):  # just before the driver's COMMIT is sent
        forwarder.freeze()

    sa.event.listen(driver._engine, "commit", freeze)
    try:
        outcome = outcome_of(lambda: driver.create_user(_user(name)))
    finally:
        sa.event.remove(driver._engine, "commit", freeze)
    assert isinstance(outcome, Unavailable), outcome
    assert not outcome.nothing_written
    assert "no answer from the database server" in str(outcome)
    assert "while committing" in str(outcome)
    forwarder.thaw()
    driver.check()


@pytest.mark.parametrize("one_second_queries", SERVERS[:1], indirect=True)  # postgresql
def test_schema_upgrades_have_no_answer_deadline(one_second_queries):
    driver, _ = one_second_queries
    with driver._migration_engine(driver._engine) as migrating:
        with driver._engine.connect() as limited, migrating.connect() as unlimited:
            assert limited.connection.dbapi_connection.answer_timeout == 2
            assert getattr(unlimited.connection.dbapi_connection, "answer_timeout", None) is None


@pytest.mark.parametrize("one_second_queries", SERVERS[:1], indirect=True)  # postgresql
def test_a_slow_postgresql_statement_is_unavailable_after_query_timeout(one_second_queries):
    driver, _ = one_second_queries
    outcome = outcome_of(lambda: driver._run(lambda c: c.execute(sa.text("SELECT pg_sleep(5)"))))
    assert isinstance(outcome, Unavailable), outcome
    driver.check()  # the cancelled statement leaves the service usable


@pytest.mark.parametrize("one_second_queries", SERVERS, indirect=True)
def test_schema_upgrades_run_without_the_query_timeout(one_second_queries):
    driver, _ = one_second_queries
    with driver._migration_engine(driver._engine) as migrating:
        assert migrating is not driver._engine
        with driver._engine.connect() as limited, migrating.connect() as unlimited:
            if driver.name == "postgresql":
                show = sa.text("SHOW statement_timeout")
                assert limited.execute(show).scalar() == "1s"
                assert unlimited.execute(show).scalar() == "0"
            else:  # PyMySQL's socket timeouts, on its connection object
                assert limited.connection.dbapi_connection._read_timeout == 1
                assert unlimited.connection.dbapi_connection._read_timeout is None
