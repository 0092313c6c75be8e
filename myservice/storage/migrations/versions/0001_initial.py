"""Initial schema: users and user_metadata.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def _mysql_options() -> dict[str, str]:
    """utf8mb4 with a binary collation that does not ignore trailing spaces (exact names):
    MariaDB's utf8mb4_nopad_bin, MySQL 8's utf8mb4_0900_bin, else utf8mb4_bin."""
    dialect = op.get_bind().dialect
    if dialect.name not in ("mysql", "mariadb"):
        return {}
    if getattr(dialect, "is_mariadb", False):
        collation = "utf8mb4_nopad_bin"
    elif (dialect.server_version_info or ()) >= (8, 0, 17):
        collation = "utf8mb4_0900_bin"
    else:
        collation = "utf8mb4_bin"
    return {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": collation}


def upgrade() -> None:
    options = _mysql_options()
    op.create_table(
        "users",
        sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("email", sa.String(255), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("description", sa.String(1024), nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_users"),
        sa.UniqueConstraint("id", name="uq_users_id"),
        sa.UniqueConstraint("name", name="uq_users_name"),
        sqlite_autoincrement=True,
        **options,
    )
    op.create_table(
        "user_metadata",
        sa.Column("user_seq", _SEQ, nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("value", sa.String(1024), nullable=False),
        sa.PrimaryKeyConstraint("user_seq", "key", name="pk_user_metadata"),
        sa.ForeignKeyConstraint(
            ["user_seq"],
            ["users.seq"],
            name="fk_user_metadata_user_seq_users",
            ondelete="CASCADE",
        ),
        **options,
    )


def downgrade() -> None:
    op.drop_table("user_metadata")
    op.drop_table("users")
