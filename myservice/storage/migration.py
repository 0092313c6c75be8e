"""Alembic, configured in code: the scripts live in :mod:`myservice.storage.migrations`.

No ``alembic.ini`` is read at run time; callers hand over an open SQLAlchemy connection.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

SCRIPT_LOCATION = Path(__file__).resolve().parent / "migrations"
#: Alembic's table of the recorded revision (the default name; env.py keeps it)
VERSION_TABLE = "alembic_version"
#: at most this many table names are listed in a message
_SHOWN_TABLES = 5


def alembic_config(connection: sa.Connection | None = None) -> AlembicConfig:
    """An Alembic configuration for our scripts, optionally bound to ``connection``."""
    cfg = AlembicConfig()
    # set_main_option interpolates '%'; escape it in the path
    cfg.set_main_option("script_location", str(SCRIPT_LOCATION).replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def script_heads() -> tuple[str, ...]:
    """The head revision(s) of the shipped migration scripts."""
    return tuple(sorted(ScriptDirectory.from_config(alembic_config()).get_heads()))


@dataclass(frozen=True)
class SchemaState:
    """Where a database's schema stands relative to the shipped scripts.

    ``tables``: the tables and views found when no revision is recorded (an empty
    ``alembic_version`` aside), i.e. a database that is not myservice's, or one whose first
    upgrade failed part-way (MySQL/MariaDB cannot roll back a ``CREATE TABLE``); empty when a
    revision is recorded."""

    current: tuple[str, ...]
    heads: tuple[str, ...]
    known: frozenset[str]
    tables: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        """No revision recorded and no tables: a fresh database."""
        return not self.current and not self.tables

    @property
    def is_foreign(self) -> bool:
        """No revision recorded, yet tables exist: upgrading it would fail (see ``tables``)."""
        return not self.current and bool(self.tables)

    @property
    def is_head(self) -> bool:
        return self.current == self.heads

    @property
    def is_unknown(self) -> bool:
        """A recorded revision these scripts do not know (the database is newer than us)."""
        return any(rev not in self.known for rev in self.current)

    def tables_text(self) -> str:
        """``tables`` for a message: ``users, user_metadata`` (the first few, then a count)."""
        shown = ", ".join(self.tables[:_SHOWN_TABLES])
        more = len(self.tables) - _SHOWN_TABLES
        return f"{shown} and {more} more" if more > 0 else shown

    def describe(self) -> str:
        """E.g. ``0001 (head)``, ``none (empty database; head is 0002)``."""
        heads = ", ".join(self.heads)
        if self.is_foreign:
            return (
                f"none, but it has tables ({self.tables_text()}): not a myservice database, "
                f"or a failed first upgrade; head is {heads}"
            )
        if self.is_empty:
            return f"none (empty database; head is {heads})"
        current = ", ".join(self.current)
        if self.is_head:
            return f"{current} (head)"
        if self.is_unknown:
            return f"{current} (unknown to this version of myservice, whose head is {heads})"
        return f"{current} (behind head {heads})"


def schema_state(connection: sa.Connection) -> SchemaState:
    """Read the recorded revision(s) of the database behind ``connection``."""
    script = ScriptDirectory.from_config(alembic_config())
    current = tuple(sorted(MigrationContext.configure(connection).get_current_heads()))
    known = frozenset(rev.revision for rev in script.walk_revisions())
    tables: tuple[str, ...] = ()
    if not current:
        inspector = sa.inspect(connection)
        found = set(inspector.get_table_names()) | set(inspector.get_view_names())
        tables = tuple(sorted(found - {VERSION_TABLE}))
    return SchemaState(current, tuple(sorted(script.get_heads())), known, tables)


def is_downgrade(current: tuple[str, ...], revision: str) -> bool:
    """Whether ``revision`` is behind ``current`` (``base``, an ancestor, ``-1``): Alembic's
    upgrade would silently do nothing, and myservice ships no downgrades."""
    if re.search(r"-\d+$", revision):  # relative: -1, head-2
        return True
    if not current:
        return False
    revisions = ScriptDirectory.from_config(alembic_config()).revision_map
    try:
        targets = revisions.get_revisions(revision)
    except Exception:  # unknown: Alembic's upgrade names it
        return False
    if not targets:  # base
        return True
    behind = {rev.revision for rev in revisions.iterate_revisions(current, "base")}
    behind -= set(current)
    return any(target is not None and target.revision in behind for target in targets)


def upgrade(connection: sa.Connection, revision: str = "head") -> None:
    """Run the migrations up to ``revision`` on ``connection``, inside its open transaction
    (the caller commits)."""
    command.upgrade(alembic_config(connection), revision)
