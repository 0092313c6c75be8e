"""``myservice-manage db``: create, upgrade and inspect the SQL schema.

``db upgrade [REVISION]`` runs the Alembic migrations of :mod:`myservice.storage.migrations`
against the database of ``[storage] connection`` (any SQL driver: sqlite, postgresql, mysql);
``db current`` prints the database's revision and whether it is the head, and creates
nothing (a missing sqlite database file is reported).  Downgrades are not supported: a
``REVISION`` behind the current one, and ``db downgrade``, are refused.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from myservice import conf as config
from myservice.cmd.manage import CommandError
from myservice.storage.base import StorageError
from myservice.storage.sql import SQLDriver

NAMESPACE = "myservice.storage"


def add_parser(subparsers: Any) -> None:
    """Add the ``db`` command group to ``myservice-manage``."""
    db = subparsers.add_parser(
        "db", help="manage the database schema", description=__doc__.splitlines()[0]
    )
    commands = db.add_subparsers(dest="db_command", metavar="SUBCOMMAND", required=True)
    upgrade = commands.add_parser(
        "upgrade", help="create the schema, or upgrade it to the latest revision"
    )
    upgrade.add_argument(
        "revision", nargs="?", default="head", help="target revision (default: %(default)s)"
    )
    upgrade.set_defaults(func=upgrade_command)
    current = commands.add_parser("current", help="print the schema revision of the database")
    current.set_defaults(func=current_command)
    # not listed (no help): there is no downgrade, but say so instead of suggesting 'upgrade'
    downgrade = commands.add_parser("downgrade", add_help=False)
    downgrade.add_argument("rest", nargs=argparse.REMAINDER)
    downgrade.set_defaults(func=downgrade_command)


def _driver(args: argparse.Namespace) -> SQLDriver:
    conf = config.load(args.config_file)
    name = conf.storage.driver
    from myservice.plugins import DriverManager
    from myservice.plugins.exception import NoMatches

    try:
        cls = DriverManager(NAMESPACE, name).driver
    except NoMatches as exc:
        raise CommandError(f"{conf.path}: [storage] driver: {exc}") from None
    except Exception as exc:  # a plugin failing to import: name it, no traceback
        raise CommandError(f"{conf.path}: [storage] driver = {name}: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, SQLDriver)):
        raise CommandError(
            f"{conf.path}: [storage] driver = {name} has no SQL schema managed by "
            f"myservice-manage (only the sqlite, postgresql and mysql drivers have one)"
        )
    return cls(conf)


@contextlib.contextmanager
def _quiet(args: argparse.Namespace) -> Iterator[None]:
    """The command prints the driver's errors itself: keep its warnings off stderr too
    (shown with --debug)."""
    logger = logging.getLogger("myservice.storage")
    level = logger.level
    if not getattr(args, "debug", False):
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def upgrade_command(args: argparse.Namespace) -> int:
    with _quiet(args):
        return _upgrade(args)


def current_command(args: argparse.Namespace) -> int:
    with _quiet(args):
        return _current(args)


def downgrade_command(args: argparse.Namespace) -> int:
    raise CommandError(
        "db downgrade: downgrades are not supported; restore a backup of the database taken "
        "before the upgrade instead (and run the myservice version that matches it)"
    )


def _upgrade(args: argparse.Namespace) -> int:
    driver = _driver(args)
    try:
        before, after = driver.upgrade(args.revision)
    except StorageError as exc:
        raise CommandError(str(exc)) from None
    except Exception as exc:  # e.g. an unknown revision from alembic
        reason = str(exc).strip() or type(exc).__name__  # alembic asserts 'head+1'
        raise CommandError(f"upgrade to {args.revision!r} failed: {reason}") from None
    finally:
        driver.close()
    if before.current == after.current:
        print(f"{driver.url_for_display}: already at {after.describe()}")
    else:
        old = ", ".join(before.current) or "none"
        print(f"{driver.url_for_display}: upgraded from {old} to {after.describe()}")
    return 0


def _current(args: argparse.Namespace) -> int:
    driver = _driver(args)
    try:
        state = driver.schema_state()
    except StorageError as exc:
        raise CommandError(str(exc)) from None
    finally:
        driver.close()
    print(f"{driver.url_for_display}: {state.describe()}")
    return 0
