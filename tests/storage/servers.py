"""The real database servers the SQL-driver tests run against, as pytest parameters."""

from __future__ import annotations

import pytest

from myservice.storage.sql import MySQLDriver, PostgreSQLDriver


def sql_servers(url_fixture: str = "url") -> list:
    """``(driver class, URL fixture name)`` for PostgreSQL and MySQL, one ``pytest.param``
    each, marked ``postgresql`` / ``mysql`` and with that id.

    ``url_fixture``: ``"url"`` (a private schema with the tables, ``postgresql_url``) or
    ``"fresh_url"`` (an empty one, ``postgresql_fresh_url``)."""
    return [
        pytest.param(
            (PostgreSQLDriver, f"postgresql_{url_fixture}"),
            marks=pytest.mark.postgresql,
            id="postgresql",
        ),
        pytest.param((MySQLDriver, f"mysql_{url_fixture}"), marks=pytest.mark.mysql, id="mysql"),
    ]
