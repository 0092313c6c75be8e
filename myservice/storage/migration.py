"""Alembic, configured in code: the scripts live in :mod:`myservice.storage.migrations`.

No ``alembic.ini`` is read at run time; callers hand over an open SQLAlchemy connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

SCRIPT_LOCATION = Path(__file__).resolve().parent / "migrations"


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
    """Where a database's schema stands relative to the shipped scripts."""

    current: tuple[str, ...]
    heads: tuple[str, ...]
    known: frozenset[str]

    @property
    def is_empty(self) -> bool:
        """No revision recorded: a fresh database."""
        return not self.current

    @property
    def is_head(self) -> bool:
        return self.current == self.heads

    @property
    def is_unknown(self) -> bool:
        """A recorded revision these scripts do not know (the database is newer than us)."""
        return any(rev not in self.known for rev in self.current)

    def describe(self) -> str:
        """E.g. ``0001 (head)``, ``none (empty database; head is 0002)``."""
        heads = ", ".join(self.heads)
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
    return SchemaState(current, tuple(sorted(script.get_heads())), known)


def upgrade(connection: sa.Connection, revision: str = "head") -> None:
    """Run the migrations up to ``revision`` on ``connection``, inside its open transaction
    (the caller commits)."""
    command.upgrade(alembic_config(connection), revision)
