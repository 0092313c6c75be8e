"""The SQL schema of the SQL drivers, as SQLAlchemy Core tables.

The migrations in :mod:`myservice.storage.migrations` create exactly this schema (a test
compares them); change both together, and add a new migration for every change.

``users.seq`` is an internal autoincrement key: it gives the creation order and backs keyset
pagination (``WHERE seq > :marker_seq ORDER BY seq LIMIT :n``).  It never leaves the driver.
Timestamps are stored as naive UTC (``DATETIME(6)`` on MySQL/MariaDB) and come back as
timezone-aware UTC datetimes.  MySQL/MariaDB tables are ``utf8mb4`` with a binary, no-pad
collation chosen by the migration, so names match exactly, as on the other backends.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

#: ``BIGINT`` everywhere but SQLite, where only ``INTEGER PRIMARY KEY`` is the rowid
SEQ_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class UTCDateTime(sa.types.TypeDecorator):
    """Stores aware datetimes as naive UTC with microseconds; loads them as aware UTC."""

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime())

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; the storage layer stores aware UTC times")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


_MYSQL_TABLE = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}

users = sa.Table(
    "users",
    metadata,
    sa.Column("seq", SEQ_TYPE, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(36), nullable=False, unique=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("email", sa.String(255), nullable=True),
    sa.Column("enabled", sa.Boolean(), nullable=False),
    sa.Column("description", sa.String(1024), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sqlite_autoincrement=True,
    **_MYSQL_TABLE,
)

user_metadata = sa.Table(
    "user_metadata",
    metadata,
    sa.Column(
        "user_seq",
        SEQ_TYPE,
        sa.ForeignKey("users.seq", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("value", sa.String(1024), nullable=False),
    **_MYSQL_TABLE,
)
