"""Fixtures shared by every test package.

Databases
    ``postgresql_url`` / ``mysql_url`` (session scope): a SQLAlchemy URL of a schema
    (PostgreSQL: ``CREATE SCHEMA t_<random>`` reached through
    ``?options=-csearch_path%3Dt_<random>``) or database (MySQL: ``CREATE DATABASE t_<random>``)
    private to this test session, dropped at its end.  The servers come from
    ``MYSERVICE_TEST_POSTGRESQL_URL`` / ``MYSERVICE_TEST_MYSQL_URL`` (``.ci/run`` sets them).
    ``postgresql_fresh_url`` / ``mysql_fresh_url`` (function scope) give an empty one per test.
    When a variable is unset or its server unreachable, the test is skipped with the reason -
    unless ``CI=true``, where it fails.

Configuration
    ``make_conf(tmp_path, driver, connection="", **options)`` writes ``tmp_path/myservice.conf``
    and returns ``myservice.conf.load()`` of it.  Plain keyword options go to ``[storage]``
    (``auto_upgrade=True``, ``pool_size=2``); a dict value is a whole section
    (``api={"max_limit": 5}``); ``state_path=...`` goes to ``[DEFAULT]``.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from myservice import conf as config

POSTGRESQL_ENV = "MYSERVICE_TEST_POSTGRESQL_URL"
MYSQL_ENV = "MYSERVICE_TEST_MYSQL_URL"


def _terminate_as_by_default(signum: int, frame: Any) -> None:
    """SIGTERM's default action (the process dies by it), as a Python handler."""
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


@pytest.fixture(autouse=True)
def _sigterm_kills_pytest() -> Iterator[None]:
    """Building the application in the main thread installs a clean-stop SIGTERM handler
    when SIGTERM is at SIG_DFL (myservice.wsgi.shutdown, for ``paster serve``).  In the test
    process SIGTERM (a CI timeout) must go on killing pytest, so each test starts with a
    handler that does just that (the factory then leaves SIGTERM alone), and whatever a test
    installed is replaced afterwards.  Tests of the shutdown module set SIG_DFL themselves."""
    signal.signal(signal.SIGTERM, _terminate_as_by_default)
    yield
    signal.signal(signal.SIGTERM, _terminate_as_by_default)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def unavailable(reason: str) -> None:
    """Skip the test with ``reason`` - or fail it under ``CI=true``."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: this must not be skipped)", pytrace=False)
    pytest.skip(reason)


# -- configuration ------------------------------------------------------------------------


def _render(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value)
    return "" if value is None else str(value)


def write_conf(tmp_path: Path, driver: str, connection: str = "", **options: Any) -> config.Config:
    """Write ``tmp_path/myservice.conf`` (see the module docstring) and load it."""
    sections: dict[str, dict[str, Any]] = {"DEFAULT": {}, "storage": {"driver": driver}}
    if connection:
        sections["storage"]["connection"] = connection  # conf.py does no '%' interpolation
    for key, value in options.items():
        if isinstance(value, dict):
            sections.setdefault(key, {}).update(value)
        elif key == "state_path":
            sections["DEFAULT"][key] = value
        else:
            sections["storage"][key] = value
    lines: list[str] = []
    for section, values in sections.items():
        if not values:
            continue
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {_render(value)}" for key, value in values.items())
        lines.append("")
    path = Path(tmp_path) / "myservice.conf"
    path.write_text("\n".join(lines), encoding="utf-8")
    return config.load(path)


@pytest.fixture
def make_conf() -> Callable[..., config.Config]:
    """The :func:`write_conf` factory: ``make_conf(tmp_path, "sqlite", auto_upgrade=True)``."""
    return write_conf


# -- database servers -----------------------------------------------------------------------


class _Server:
    """One database server named by an environment variable; makes private schemas."""

    def __init__(self, env: str) -> None:
        self.env = env
        self.base_url = os.environ.get(env, "").strip()
        self.engine: Any = None
        self.error: str | None = None
        self.created: list[str] = []

    def connect(self) -> None:
        if not self.base_url:
            self.error = f"{self.env} is not set (e.g. .ci/run sets it)"
            return
        import sqlalchemy as sa

        try:
            url = sa.make_url(self.base_url)
            self.kind = url.get_backend_name()
            args = {"connect_timeout": 5}
            self.engine = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args=args)
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except Exception as exc:  # any reason the server cannot be used
            shown = sa.make_url(self.base_url).render_as_string(hide_password=True)
            first = str(getattr(exc, "orig", exc)).strip().splitlines()
            self.error = f"{self.env}={shown} unreachable: {first[0] if first else exc!r}"
            self.engine = None

    def new_url(self) -> str:
        import sqlalchemy as sa

        if self.engine is None:
            unavailable(self.error or f"{self.env} unusable")
        name = f"t_{uuid.uuid4().hex[:12]}"
        base = sa.make_url(self.base_url)
        with self.engine.begin() as conn:
            if self.kind == "postgresql":
                conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
                url = base.update_query_dict({"options": f"-csearch_path={name}"})
            else:
                conn.execute(
                    sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
                )
                url = base.set(database=name)
        self.created.append(name)
        return url.render_as_string(hide_password=False)

    def drop(self, name: str) -> None:
        import sqlalchemy as sa

        if self.engine is None or name not in self.created:
            return
        self.created.remove(name)
        with self.engine.begin() as conn:
            if self.kind == "postgresql":
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
            else:
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))

    def close(self) -> None:
        for name in list(self.created):
            self.drop(name)
        if self.engine is not None:
            self.engine.dispose()


def _schema_name(url: str) -> str:
    import sqlalchemy as sa

    parsed = sa.make_url(url)
    options = parsed.query.get("options")
    if options:
        return str(options).split("=", 1)[1]
    return str(parsed.database)


@pytest.fixture(scope="session")
def postgresql_server() -> Iterator[_Server]:
    server = _Server(POSTGRESQL_ENV)
    server.connect()
    yield server
    server.close()


@pytest.fixture(scope="session")
def mysql_server() -> Iterator[_Server]:
    server = _Server(MYSQL_ENV)
    server.connect()
    yield server
    server.close()


@pytest.fixture(scope="session")
def postgresql_url(postgresql_server: _Server) -> str:
    """A PostgreSQL schema private to this test session (``postgresql+psycopg://...``)."""
    return postgresql_server.new_url()


@pytest.fixture(scope="session")
def mysql_url(mysql_server: _Server) -> str:
    """A MySQL/MariaDB database private to this test session (``mysql+pymysql://...``)."""
    return mysql_server.new_url()


@pytest.fixture
def postgresql_fresh_url(postgresql_server: _Server) -> Iterator[str]:
    """An empty PostgreSQL schema for one test."""
    url = postgresql_server.new_url()
    yield url
    postgresql_server.drop(_schema_name(url))


@pytest.fixture
def mysql_fresh_url(mysql_server: _Server) -> Iterator[str]:
    """An empty MySQL/MariaDB database for one test."""
    url = mysql_server.new_url()
    yield url
    mysql_server.drop(_schema_name(url))
