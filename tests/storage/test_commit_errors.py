"""A COMMIT that fails: definitive on SQLite (nothing saved), unknown over a network."""

from __future__ import annotations

import sqlite3
import uuid

import pytest

from myservice.storage.base import Unavailable
from myservice.storage.sql import SQLiteDriver

from .servers import sql_servers


def _user(name: str) -> dict:
    return {"name": name, "email": None, "enabled": True, "description": None}


def _failing_commit(monkeypatch, driver, error: BaseException) -> None:
    """Every COMMIT of ``driver`` raises ``error`` from the DBAPI connection (SQLAlchemy
    wraps it, as it would a real one); the transaction is then rolled back."""

    def do_commit(dbapi_connection):
        raise error

    monkeypatch.setattr(driver._engine.dialect, "do_commit", do_commit)


def _sqlite_error(message: str, code: int) -> sqlite3.OperationalError:
    """An error as the sqlite3 module raises it: with its SQLite result code."""
    error = sqlite3.OperationalError(message)
    error.sqlite_errorcode = code
    return error


def test_sqlite_commit_error_wrote_nothing(tmp_path, make_conf, monkeypatch):
    driver = SQLiteDriver(make_conf(tmp_path, "sqlite"))
    driver.start()
    try:
        kept = driver.create_user(_user("kept"))
        name = f"full-{uuid.uuid4().hex}"
        with monkeypatch.context() as patch:
            full = _sqlite_error("database or disk is full", sqlite3.SQLITE_FULL)
            _failing_commit(patch, driver, full)
            with pytest.raises(Unavailable) as info:
                driver.create_user(_user(name))
            with pytest.raises(Unavailable) as deleting:
                driver.delete_user(kept["id"])
        assert info.value.nothing_written is True
        assert deleting.value.nothing_written is True
        assert str(info.value) == (
            f"database {driver.url_for_display} unavailable: database or disk is full "
            f"(while committing: nothing was saved)"
        )
        assert driver.list_users(10, None, name) == []
        assert driver.get_user(kept["id"]) == kept
    finally:
        driver.close()


def _assert_outcome_unknown(driver, error: BaseException) -> None:
    """A create whose COMMIT raises ``error`` is Unavailable with an unknown outcome."""
    with pytest.MonkeyPatch.context() as patch:
        _failing_commit(patch, driver, error)
        with pytest.raises(Unavailable) as info:
            driver.create_user(_user(f"lost-{uuid.uuid4().hex}"))
    assert info.value.nothing_written is False
    assert str(info.value).endswith("(while committing: the change may or may not have been saved)")


@pytest.mark.parametrize(
    "error",
    [
        _sqlite_error("disk I/O error", sqlite3.SQLITE_IOERR),
        _sqlite_error("disk I/O error", 10 | (4 << 8)),  # SQLITE_IOERR_FSYNC
        sqlite3.OperationalError("no result code"),
    ],
)
def test_a_sqlite_commit_io_error_has_an_unknown_outcome(tmp_path, make_conf, error):
    # recovery may replay a transaction whose WAL frames were written before the error
    driver = SQLiteDriver(make_conf(tmp_path, "sqlite"))
    driver.start()
    try:
        _assert_outcome_unknown(driver, error)
    finally:
        driver.close()


@pytest.mark.parametrize("server", sql_servers())
def test_server_commit_error_outcome_stays_unknown(server, request, tmp_path, make_conf):
    cls, fixture = server
    url = request.getfixturevalue(fixture)
    driver = cls(make_conf(tmp_path, cls.name, url, auto_upgrade=True))
    driver.start()
    dbapi = __import__(cls.dbapi_module)
    try:
        _assert_outcome_unknown(driver, dbapi.OperationalError("server closed the connection"))
    finally:
        driver.close()
