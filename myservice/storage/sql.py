"""The SQL drivers: ``sqlite`` (embedded default), ``postgresql`` and ``mysql``.

One SQLAlchemy Core code path (:class:`SQLDriver`) over the tables of
:mod:`myservice.storage.schema`; the subclasses differ only in URL defaults, engine options,
the schema step of ``start()`` and error classification.

Error mapping: a duplicate name (the database's unique constraint, so also under concurrent
creates) is :class:`Conflict`; a connection failure, a disconnect or a pool timeout is
:class:`Unavailable` (the pool pre-pings, so the same process recovers once the server is
back); an unknown id is :class:`NotFound`.  Passwords never appear in messages or logs: URLs
are rendered with ``hide_password=True`` and database error texts are scrubbed.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import logging
import os
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url

from myservice.conf import Config
from myservice.storage import common, migration
from myservice.storage.base import (
    Conflict,
    MarkerNotFound,
    NotFound,
    StartupError,
    StorageDriver,
    Unavailable,
    User,
)
from myservice.storage.schema import user_metadata, users

LOG = logging.getLogger(__name__)

T = TypeVar("T")

_WRITE = "myservice_write"  # execution option: this transaction writes
#: seconds a postgresql connection waits for an answer beyond [storage] query_timeout (at
#: most the timeout itself) before it is closed: see answer_deadline
_ANSWER_GRACE = 5.0
#: primary SQLite result codes of a COMMIT refused before anything was written:
#: SQLITE_BUSY, SQLITE_LOCKED, SQLITE_READONLY, SQLITE_FULL (not SQLITE_NOMEM: in WAL mode
#: it may come after the commit frame was written; CPython raises MemoryError for it anyway)
_SQLITE_REFUSED_BEFORE_WRITING = frozenset({5, 6, 8, 13})
_ATTEMPTS = 3  # tries of a transaction that failed with a deadlock / serialization error
_PUBLIC_COLUMNS = [users.c[name] for name in common.PUBLIC_FIELDS]


def _first_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else "unknown error"


class SQLDriver(StorageDriver):
    """Base of the SQL drivers; see the module docstring.  Not registered itself."""

    #: pip extra that installs the client library
    extra: str | None = None
    #: importable module of the client library
    dbapi_module: str | None = None
    #: URL schemes (``drivername``) accepted as is, and bare ones rewritten to the default
    drivernames: tuple[str, ...] = ()
    default_drivername: str = ""
    example_url: str = ""
    #: a database server reached over the network (not SQLite's file): its URL must name a
    #: database, and ``[storage] query_timeout`` bounds its statements
    is_server: bool = True
    #: schema changes roll back with their transaction (not on MySQL/MariaDB)
    transactional_ddl: bool = True

    def __init__(self, conf: Config) -> None:
        super().__init__(conf)
        self._engine: sa.Engine | None = None
        self._engine_lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()
        self.url_for_display = ""

    # -- configuration ------------------------------------------------------------------

    @property
    def _conf_file(self) -> str:
        return str(self.conf.path) if self.conf.path else "etc/myservice.conf"

    def _option(self, name: str) -> str:
        return f"{self._conf_file}: [storage] {name}"

    def _raw_url(self) -> str:
        """The connection URL text; subclasses may supply a default."""
        text = self.conf.storage.connection
        if not text:
            raise StartupError(
                f"{self._option('connection')}: empty; the {self.name} driver needs a database "
                f"URL such as {self.example_url}"
            )
        return text

    def _parse_url(self, text: str) -> URL:
        try:
            url = make_url(text)
        except (sa_exc.ArgumentError, ValueError):
            # the parser's message repeats the URL, password included: do not show it
            raise StartupError(
                f"{self._option('connection')}: not a valid database URL; expected the form "
                f"{self.example_url}"
            ) from None
        if url.password:
            password = str(url.password)
            self._secrets = (password, urllib.parse.quote(password, safe=""))
        if url.host and "@" in url.host:
            # 'user:pa@ss@host': the parser splits at the first '@', so the rest of the
            # password would be taken for the host and shown in every connection error
            raise StartupError(
                f"{self._option('connection')}: the part before the host contains an '@' "
                "that is not percent-encoded (in the password or user name, probably); "
                f"write it as %40 (e.g. {self.example_url})"
            )
        if self.is_server and not url.database:
            raise StartupError(
                f"{self._option('connection')}: no database name; expected the form "
                f"{self.example_url}"
            )
        backend = url.drivername.partition("+")[0]
        backends = {name.partition("+")[0] for name in self.drivernames}
        if url.drivername in self.drivernames:
            return url
        if url.drivername in backends:  # bare 'postgresql://': use our client library
            return url.set(drivername=self.default_drivername)
        if backend in backends:
            raise StartupError(
                f"{self._option('connection')}: the {self.name} driver does not support "
                f"'{url.drivername}://' URLs; use '{self.default_drivername}://' "
                f"(e.g. {self.example_url})"
            )
        raise StartupError(
            f"{self._option('connection')}: a '{url.drivername}://' URL, but [storage] "
            f"driver = {self.name}, which expects '{self.default_drivername}://' "
            f"(e.g. {self.example_url}); change one of the two"
        )

    @classmethod
    def check_client_library(cls) -> None:
        """Raise :class:`StartupError` (with the ``pip install`` that mends it) when the
        driver's client library cannot be imported.  Called at start-up, and by
        ``myservice-plugins list``, which would otherwise show the driver as loading (its
        module imports the library only when an engine is made)."""
        if not cls.dbapi_module:
            return
        try:
            importlib.import_module(cls.dbapi_module)
        except ImportError as exc:
            raise StartupError(
                f"the {cls.name} storage driver needs the Python module "
                f"'{cls.dbapi_module}', which cannot be imported ({exc}); install it with: "
                f"pip install 'myservice[{cls.extra}]'"
            ) from None

    def _engine_options(self, url: URL, limited: bool = True) -> dict[str, Any]:
        """Keyword arguments of ``create_engine`` (subclasses extend); ``limited``: with
        ``[storage] query_timeout`` applied (the engine of schema upgrades has none)."""
        storage = self.conf.storage
        return {
            "pool_size": storage.pool_size,
            # pool_size is the cap per process: workers x pool_size <= server connections
            "max_overflow": 0,
            "pool_timeout": storage.pool_timeout,
            "pool_pre_ping": True,
        }

    def _setup_engine(self, engine: sa.Engine, limited: bool = True) -> None:
        """Install event listeners (subclasses extend); ``limited`` as for
        :meth:`_engine_options`."""

        @event.listens_for(engine, "connect")
        def _remember_pid(dbapi_connection: Any, record: Any) -> None:
            record.info["pid"] = os.getpid()

        @event.listens_for(engine, "checkout")
        def _refuse_foreign(dbapi_connection: Any, record: Any, proxy: Any) -> None:
            # a connection inherited over fork() belongs to the parent: never share it
            if record.info.get("pid") != os.getpid():
                record.dbapi_connection = proxy.dbapi_connection = None
                raise sa_exc.DisconnectionError("connection was opened by another process")

    def _ensure_engine(self, create: bool = True) -> sa.Engine:
        """Create the engine once (validating the URL and the client library).

        ``create``: false for read-only uses (``db current``), which must not create the
        database where there is none (see :meth:`_open_database`)."""
        with self._engine_lock:
            if self._engine is None:
                url = self._parse_url(self._raw_url())
                self.check_client_library()
                self.url_for_display = url.render_as_string(hide_password=True)
                try:
                    engine = sa.create_engine(url, **self._engine_options(url))
                except (sa_exc.ArgumentError, ImportError, TypeError) as exc:
                    raise StartupError(
                        f"{self._option('connection')}: cannot use "
                        f"{self.url_for_display}: {self._scrub(_first_line(str(exc)))}"
                    ) from None
                self._setup_engine(engine)
                self._engine = engine
            self._open_database(self._engine.url, create)
            return self._engine

    def _open_database(self, url: URL, create: bool) -> None:
        """Make sure the database exists, creating it when ``create`` (the sqlite driver's
        file; a server's database is the operator's to create)."""

    def _require_engine(self) -> sa.Engine:
        if self._engine is None:
            raise RuntimeError(f"{type(self).__name__}.start() was not called")
        return self._engine

    # -- errors -------------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            if secret:
                text = text.replace(secret, "***")
        return text

    def _describe(self, exc: BaseException) -> str:
        orig = getattr(exc, "orig", None) or exc
        return self._scrub(_first_line(str(orig)))

    def _is_retryable(self, exc: sa_exc.DBAPIError) -> bool:
        """A deadlock or serialization failure: the transaction may simply be run again."""
        return False

    def _unavailable(self, exc: BaseException, *, committing: bool = False) -> Unavailable:
        """``committing``: the connection failed while a write transaction was committing, so
        whether it was saved is unknown; otherwise nothing was written."""
        message = f"database {self.url_for_display} unavailable: {self._describe(exc)}"
        if committing and self._commit_failure_saved_nothing(exc):
            message += " (while committing: nothing was saved)"
            committing = False
        elif committing:
            message += " (while committing: the change may or may not have been saved)"
        LOG.warning("%s", message)
        return Unavailable(message, nothing_written=not committing)

    def _commit_failure_saved_nothing(self, exc: BaseException) -> bool:
        """Whether a COMMIT that failed with ``exc`` certainly saved nothing; over a network
        the outcome of a failed COMMIT is unknown (subclasses may know better)."""
        return False

    def _write_guard(self) -> contextlib.AbstractContextManager[Any]:
        """Held around write transactions (the sqlite driver serialises its writers)."""
        return contextlib.nullcontext()

    def _run(self, work: Callable[[sa.Connection], T], *, write: bool = False) -> T:
        """Run ``work(connection)`` in one transaction, committed if it returns.

        Deadlocks are retried; connection problems become :class:`Unavailable`, with
        ``nothing_written`` set unless they happened once ``work`` had returned in a write
        (during the commit, whose outcome the client cannot know); ``IntegrityError`` and
        :class:`StorageError` pass through for the caller.
        """
        engine = self._require_engine()
        for attempt in range(1, _ATTEMPTS + 1):
            committing = False
            try:
                with self._write_guard() if write else contextlib.nullcontext():
                    with engine.connect() as conn:
                        if write:
                            conn.execution_options(**{_WRITE: True})
                        with conn.begin():
                            result = work(conn)
                            committing = write  # leaving the block commits
                        return result
            except sa_exc.IntegrityError:
                raise
            except sa_exc.TimeoutError as exc:
                raise self._unavailable(exc) from None
            except sa_exc.DBAPIError as exc:
                if self._is_retryable(exc) and attempt < _ATTEMPTS:
                    LOG.info("Retrying a transaction after: %s", self._describe(exc))
                    continue
                if exc.connection_invalidated or isinstance(
                    exc, sa_exc.OperationalError | sa_exc.InterfaceError
                ):
                    raise self._unavailable(exc, committing=committing) from None
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    # -- start-up and schema ------------------------------------------------------------

    def start(self) -> None:
        """Create the engine, check the server answers, then check or upgrade the schema."""
        engine = self._ensure_engine()
        LOG.info("Storage driver %s using %s", self.name, self.url_for_display)
        try:
            self._prepare_schema(engine)
        except sa_exc.DBAPIError as exc:
            raise StartupError(
                f"cannot use the database {self.url_for_display} "
                f"(from {self._option('connection')}): {self._describe(exc)}"
            ) from None
        except sa_exc.TimeoutError as exc:
            raise StartupError(
                f"no database connection to {self.url_for_display} within "
                f"{self.conf.storage.pool_timeout:g}s: {self._describe(exc)}"
            ) from None

    def _prepare_schema(self, engine: sa.Engine) -> None:
        """Check the schema is at head; with ``auto_upgrade`` upgrade it instead."""
        with engine.connect() as conn:
            state = migration.schema_state(conn)
        if state.is_head:
            return
        if state.is_unknown:
            raise StartupError(self._schema_message(state, newer=True))
        if self.conf.storage.auto_upgrade:
            self._upgrade(engine, "head")
            return
        raise StartupError(self._schema_message(state, newer=False))

    def _schema_message(self, state: migration.SchemaState, newer: bool) -> str:
        where = f"database schema of {self.url_for_display}"
        if state.is_foreign:
            return self._foreign_message(state)
        if newer:
            return (
                f"the {where} is at revision {', '.join(state.current)}, newer than this "
                f"version of myservice knows (head {', '.join(state.heads)}); upgrade myservice"
            )
        return (
            f"the {where} is at revision {state.describe()}; run: "
            f"myservice-manage --config-file {self._conf_file} db upgrade "
            f"(or set [storage] auto_upgrade = true)"
        )

    def _foreign_message(self, state: migration.SchemaState) -> str:
        return (
            f"the database {self.url_for_display} has tables ({state.tables_text()}) but no "
            f"recorded myservice schema revision: it is not a myservice database, or its first "
            f"upgrade failed part-way; use an empty database ([storage] connection in "
            f"{self._conf_file}) or drop those tables, then run: myservice-manage "
            f"--config-file {self._conf_file} db upgrade"
        )

    def _downgrade_message(self, state: migration.SchemaState, revision: str) -> str:
        return (
            f"the database schema of {self.url_for_display} is at revision "
            f"{state.describe()}; {revision!r} is behind it and downgrades are not supported: "
            f"restore a backup of the database taken before the upgrade instead"
        )

    def _failed_message(self, exc: BaseException) -> str:
        message = f"upgrading {self.url_for_display} failed: {self._describe(exc)}"
        if not self.transactional_ddl:
            message += (
                f" ({self.name} cannot undo the schema changes made before the error; see "
                f"myservice-manage --config-file {self._conf_file} db current)"
            )
        return message

    @contextlib.contextmanager
    def _upgrade_lock(self, conn: sa.Connection) -> Iterator[None]:
        """Held while upgrading, so concurrent processes upgrade once (subclasses)."""
        yield

    @contextlib.contextmanager
    def _migration_engine(self, engine: sa.Engine) -> Iterator[sa.Engine]:
        """The engine schema upgrades run on: ``engine``, or, when the driver limits query
        time (:meth:`_limits_queries`), a one-off engine without that limit (an upgrade may
        rewrite a large table)."""
        if not self._limits_queries():
            yield engine
            return
        options = self._engine_options(engine.url, limited=False)
        for pooled in ("pool_size", "max_overflow", "pool_timeout"):
            options.pop(pooled, None)
        unlimited = sa.create_engine(engine.url, poolclass=sa.pool.NullPool, **options)
        self._setup_engine(unlimited, limited=False)
        try:
            yield unlimited
        finally:
            unlimited.dispose()

    def _limits_queries(self) -> bool:
        """Whether :meth:`_engine_options` puts a time limit on statements."""
        return self.is_server and bool(self.conf.storage.query_timeout)

    def _upgrade(self, engine: sa.Engine, revision: str) -> migration.SchemaState:
        with self._migration_engine(engine) as migrating:
            return self._upgrade_on(migrating, revision)

    def _upgrade_on(self, engine: sa.Engine, revision: str) -> migration.SchemaState:
        with engine.connect() as conn:
            conn.execution_options(**{_WRITE: True})
            with self._upgrade_lock(conn):
                with conn.begin():
                    state = migration.schema_state(conn)
                    if state.is_unknown:
                        raise StartupError(self._schema_message(state, newer=True))
                    if state.is_foreign:  # its CREATE TABLEs would fail (or mix with it)
                        raise StartupError(self._foreign_message(state))
                    if migration.is_downgrade(state.current, revision):
                        raise StartupError(self._downgrade_message(state, revision))
                    if revision != "head" or not state.is_head:
                        LOG.info(
                            "Upgrading the schema of %s from %s",
                            self.url_for_display,
                            state.describe(),
                        )
                        try:
                            migration.upgrade(conn, revision)
                        except sa_exc.DBAPIError as exc:
                            if exc.connection_invalidated:
                                raise  # the connection, not the migration: unavailable
                            # a DDL error (rolled back, except on MySQL/MariaDB)
                            raise StartupError(self._failed_message(exc)) from None
                with conn.begin():
                    return migration.schema_state(conn)

    def upgrade(
        self, revision: str = "head"
    ) -> tuple[migration.SchemaState, migration.SchemaState]:
        """Create or upgrade the schema (``myservice-manage db upgrade``).

        Returns the states before and after.  Raises :class:`StartupError` for bad
        configuration, a database that is not myservice's, a ``revision`` behind the
        current one and a failed migration (``upgrading ... failed``), and
        :class:`Unavailable` when the server cannot be reached.
        """
        engine = self._ensure_engine()
        try:
            before = self.schema_state()
            return before, self._upgrade(engine, revision)
        except sa_exc.DBAPIError as exc:
            if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
                raise self._unavailable(exc) from None
            raise StartupError(self._failed_message(exc)) from None

    def schema_state(self) -> migration.SchemaState:
        """The database's revision relative to the shipped scripts (``db current``).
        Read-only: a missing sqlite database is reported (:class:`StartupError`), not
        created."""
        self._ensure_engine(create=False)
        return self._run(migration.schema_state)

    def close(self) -> None:
        with self._engine_lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None

    # -- the contract -----------------------------------------------------------------------

    def check(self) -> None:
        self._run(lambda conn: conn.execute(sa.text("SELECT 1")).scalar_one())

    @staticmethod
    def _seq(conn: sa.Connection, user_id: str) -> int:
        seq = None
        if common.storable(user_id, common.ID_MAX):
            seq = conn.execute(sa.select(users.c.seq).where(users.c.id == user_id)).scalar()
        if seq is None:
            raise NotFound(f"no user with id {user_id!r}")
        return seq

    def create_user(self, values: User) -> User:
        user = common.new_user(values)
        try:
            self._run(lambda conn: conn.execute(users.insert().values(**user)), write=True)
        except sa_exc.IntegrityError:
            raise Conflict(f"a user named {user['name']!r} already exists") from None
        return user

    def get_user(self, user_id: str) -> User:
        def work(conn: sa.Connection) -> User:
            row = None
            if common.storable(user_id, common.ID_MAX):
                query = sa.select(*_PUBLIC_COLUMNS).where(users.c.id == user_id)
                row = conn.execute(query).mappings().first()
            if row is None:
                raise NotFound(f"no user with id {user_id!r}")
            return dict(row)

        return self._run(work)

    def list_users(
        self, limit: int, marker: str | None = None, name: str | None = None
    ) -> list[User]:
        def work(conn: sa.Connection) -> list[User]:
            query = sa.select(*_PUBLIC_COLUMNS).order_by(users.c.seq).limit(limit)
            if marker is not None:
                after = None
                if common.storable(marker, common.ID_MAX):
                    after = conn.execute(
                        sa.select(users.c.seq).where(users.c.id == marker)
                    ).scalar()
                if after is None:
                    raise MarkerNotFound(f"marker {marker!r} names no user")
                query = query.where(users.c.seq > after)
            if name is not None:
                if not common.storable(name, common.NAME_MAX):
                    return []
                query = query.where(users.c.name == name)
            return [dict(row) for row in conn.execute(query).mappings()]

        return self._run(work)

    def update_user(self, user_id: str, values: User) -> User:
        new = common.changes(values)

        def work(conn: sa.Connection) -> User:
            seq = self._seq(conn, user_id)
            stmt = users.update().where(users.c.seq == seq)
            conn.execute(stmt.values(**new, updated_at=common.utcnow()))
            query = sa.select(*_PUBLIC_COLUMNS).where(users.c.seq == seq)
            return dict(conn.execute(query).mappings().one())

        try:
            return self._run(work, write=True)
        except sa_exc.IntegrityError:
            raise Conflict(f"a user named {new.get('name')!r} already exists") from None

    def delete_user(self, user_id: str) -> None:
        def work(conn: sa.Connection) -> None:
            deleted = 0
            if common.storable(user_id, common.ID_MAX):
                deleted = conn.execute(users.delete().where(users.c.id == user_id)).rowcount
            if not deleted:
                raise NotFound(f"no user with id {user_id!r}")

        self._run(work, write=True)

    def get_metadata(self, user_id: str) -> dict[str, str]:
        def work(conn: sa.Connection) -> dict[str, str]:
            seq = self._seq(conn, user_id)
            query = sa.select(user_metadata.c.key, user_metadata.c.value).where(
                user_metadata.c.user_seq == seq
            )
            return {row.key: row.value for row in conn.execute(query)}

        return self._run(work)

    def set_metadata_item(self, user_id: str, key: str, value: str) -> None:
        def work(conn: sa.Connection) -> None:
            seq = self._seq(conn, user_id)
            where = (user_metadata.c.user_seq == seq) & (user_metadata.c.key == key)
            if not conn.execute(user_metadata.update().where(where).values(value=value)).rowcount:
                conn.execute(user_metadata.insert().values(user_seq=seq, key=key, value=value))

        # a concurrent insert of the same key (or delete of the user) fails ours: run again,
        # now updating the row (or answering NotFound)
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                return self._run(work, write=True)
            except sa_exc.IntegrityError:
                if attempt == _ATTEMPTS:
                    raise

    def delete_metadata_item(self, user_id: str, key: str) -> None:
        def work(conn: sa.Connection) -> None:
            seq = self._seq(conn, user_id)
            deleted = 0
            if common.storable(key, common.KEY_MAX):
                where = (user_metadata.c.user_seq == seq) & (user_metadata.c.key == key)
                deleted = conn.execute(user_metadata.delete().where(where)).rowcount
            if not deleted:
                raise NotFound(f"user {user_id!r} has no metadata key {key!r}")

        self._run(work, write=True)


class SQLiteDriver(SQLDriver):
    """``sqlite``: the embedded default, a file under the state directory.

    WAL journal, a busy timeout and foreign keys on every connection; writers are serialised
    in-process by a lock and across processes by SQLite itself (``BEGIN IMMEDIATE`` plus the
    busy timeout).  ``start()`` always upgrades the schema, under an ``flock`` on
    ``<database>.lock`` so that gunicorn workers starting together upgrade once.
    """

    name = "sqlite"
    dbapi_module = "sqlite3"
    drivernames = ("sqlite", "sqlite+pysqlite")
    is_server = False  # its "database" is the file; an empty one is refused elsewhere
    default_drivername = "sqlite"
    example_url = "sqlite:////var/lib/myservice/myservice.sqlite"

    def __init__(self, conf: Config) -> None:
        super().__init__(conf)
        self._writers = threading.Lock()

    def _commit_failure_saved_nothing(self, exc: BaseException) -> bool:
        """A COMMIT that SQLite refused before writing (a full disk, a busy, locked or
        read-only database) saved nothing: its transaction is rolled back, and no network
        lies between.  An I/O error (``SQLITE_IOERR``: an fsync that failed after the WAL
        frames were written, say) may still be replayed by recovery: unknown."""
        code = getattr(getattr(exc, "orig", exc), "sqlite_errorcode", None)
        return isinstance(code, int) and code & 0xFF in _SQLITE_REFUSED_BEFORE_WRITING

    def _raw_url(self) -> str:
        text = self.conf.storage.connection
        if text:
            return text
        return str(URL.create("sqlite", database=str(self.conf.state_path / "myservice.sqlite")))

    def _database_path(self, url: URL) -> Path:
        if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
            raise StartupError(
                f"{self._option('connection')}: the sqlite driver needs a database file "
                f"(e.g. {self.example_url}); for an in-memory store use [storage] driver = memory"
            )
        return Path(url.database).expanduser().absolute()

    def _parse_url(self, text: str) -> URL:
        url = super()._parse_url(text)
        return url.set(database=str(self._database_path(url)))

    def _open_database(self, url: URL, create: bool) -> None:
        path = Path(url.database or "")
        if not create:
            if not path.exists():
                raise StartupError(
                    f"no database at {path}: check [DEFAULT] state_path / [storage] "
                    f"connection in {self._conf_file}; it is created by `myservice-manage "
                    f"db upgrade` or the service's first start"
                )
            return
        try:
            # the database holds every user's data: a directory and a file this driver
            # creates are the service account's alone (SQLite gives its -wal and -shm files
            # the database file's mode); existing ones keep the mode the operator gave them
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise StartupError(
                f"cannot create the directory {path.parent} of the sqlite database "
                f"({exc.strerror}); check [DEFAULT] state_path / [storage] connection in "
                f"{self._conf_file}"
            ) from None
        try:
            os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
        except OSError as exc:
            raise StartupError(
                f"cannot open the sqlite database {path} ({exc.strerror}); check [DEFAULT] "
                f"state_path / [storage] connection in {self._conf_file}"
            ) from None

    @property
    def _busy_timeout_ms(self) -> int:
        return max(int(self.conf.storage.pool_timeout * 1000), 1000)

    def _engine_options(self, url: URL, limited: bool = True) -> dict[str, Any]:
        options = super()._engine_options(url, limited)
        options["pool_pre_ping"] = False  # a local file: nothing to ping
        options["connect_args"] = {
            "check_same_thread": False,
            "timeout": self._busy_timeout_ms / 1000,
        }
        return options

    def _setup_engine(self, engine: sa.Engine, limited: bool = True) -> None:
        super()._setup_engine(engine, limited)
        busy_ms = self._busy_timeout_ms

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, record: Any) -> None:
            # let SQLAlchemy's 'begin' below, not the sqlite3 module, start transactions
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute(f"PRAGMA busy_timeout = {busy_ms:d}")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: sa.Connection) -> None:
            # a writer takes the write lock up front: no deadlock-prone lock upgrade later
            write = conn.get_execution_options().get(_WRITE, False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    @contextlib.contextmanager
    def _write_guard(self) -> Iterator[None]:
        timeout = self.conf.storage.pool_timeout
        if not self._writers.acquire(timeout=timeout):
            raise self._unavailable(TimeoutError(f"no turn to write within {timeout:g}s"))
        try:
            yield
        finally:
            self._writers.release()

    def _prepare_schema(self, engine: sa.Engine) -> None:
        path = Path(engine.url.database or "")
        lock_path = path.with_name(path.name + ".lock")
        try:
            handle = open(lock_path, "a+b")  # noqa: SIM115 - held across the block below
        except OSError as exc:
            raise StartupError(
                f"cannot open the lock file {lock_path} ({exc.strerror}); check the "
                f"permissions of {lock_path.parent}"
            ) from None
        with handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                raw = engine.raw_connection()  # outside any transaction, as WAL needs
                try:
                    cursor = raw.cursor()
                    cursor.execute("PRAGMA journal_mode = WAL")
                    mode = cursor.fetchone()[0]
                    cursor.close()
                finally:
                    raw.close()
                if str(mode).lower() != "wal":
                    LOG.warning("SQLite database %s is not in WAL mode (%s)", path, mode)
                self._upgrade(engine, "head")
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class PostgreSQLDriver(SQLDriver):
    """``postgresql``: PostgreSQL through psycopg 3 (``postgresql+psycopg://``)."""

    name = "postgresql"
    extra = "postgresql"
    dbapi_module = "psycopg"
    drivernames = ("postgresql+psycopg",)
    default_drivername = "postgresql+psycopg"
    example_url = "postgresql+psycopg://myservice:PASSWORD@db.example.org/myservice"

    def _parse_url(self, text: str) -> URL:
        if text.startswith("postgres://"):  # the libpq spelling
            text = "postgresql" + text[len("postgres") :]
        return super()._parse_url(text)

    def _engine_options(self, url: URL, limited: bool = True) -> dict[str, Any]:
        options = super()._engine_options(url, limited)
        options["connect_args"] = args = {
            "connect_timeout": self.conf.storage.connect_timeout,
            "application_name": "myservice",
        }
        timeout = self.conf.storage.query_timeout
        if limited and self._limits_queries():
            # libpq has no client-side read timeout: the server cancels a statement that
            # runs too long, and TCP gives up on a peer that stops answering
            # (added to the URL's own ?options=, e.g. a search_path, which this replaces)
            given = url.query.get("options")
            given = " ".join(given) if isinstance(given, tuple) else given
            limit = f"-c statement_timeout={max(1, round(timeout * 1000))}"
            args["options"] = f"{given} {limit}" if given else limit
            args["keepalives"] = 1
            args["keepalives_idle"] = max(1, round(timeout / 3))
            args["keepalives_interval"] = max(1, round(timeout / 9))
            args["keepalives_count"] = 3
            args["tcp_user_timeout"] = max(1, round(timeout * 1000))
        return options

    def _setup_engine(self, engine: sa.Engine, limited: bool = True) -> None:
        super()._setup_engine(engine, limited)
        if not (limited and self._limits_queries()):
            return
        from myservice.storage.answer_deadline import DeadlineConnection

        # the server's statement_timeout normally answers first, with its own error; this
        # deadline is for a peer that stays silent (see answer_deadline)
        timeout = self.conf.storage.query_timeout
        answer_timeout = timeout + min(timeout, _ANSWER_GRACE)

        @event.listens_for(engine, "do_connect")
        def _connect(dialect: Any, record: Any, cargs: tuple, cparams: dict) -> Any:
            connection = DeadlineConnection.connect(*cargs, **cparams)
            connection.answer_timeout = answer_timeout
            return connection

    def _is_retryable(self, exc: sa_exc.DBAPIError) -> bool:
        # serialization_failure, deadlock_detected
        return getattr(exc.orig, "sqlstate", None) in {"40001", "40P01"}

    @contextlib.contextmanager
    def _upgrade_lock(self, conn: sa.Connection) -> Iterator[None]:
        conn.execute(sa.text("SELECT pg_advisory_lock(hashtext('myservice schema upgrade'))"))
        conn.commit()
        try:
            yield
        finally:
            conn.rollback()
            conn.execute(sa.text("SELECT pg_advisory_unlock(hashtext('myservice schema upgrade'))"))
            conn.commit()


class MySQLDriver(SQLDriver):
    """``mysql``: MySQL or MariaDB through PyMySQL (``mysql+pymysql://``, ``utf8mb4``)."""

    name = "mysql"
    extra = "mysql"
    transactional_ddl = False  # each CREATE/ALTER TABLE commits by itself
    dbapi_module = "pymysql"
    drivernames = ("mysql+pymysql", "mariadb+pymysql")
    default_drivername = "mysql+pymysql"
    example_url = "mysql+pymysql://myservice:PASSWORD@db.example.org/myservice"

    def _parse_url(self, text: str) -> URL:
        url = super()._parse_url(text)
        charset = url.query.get("charset")
        if charset not in (None, "utf8mb4"):
            raise StartupError(
                f"{self._option('connection')}: charset={charset} in the URL; the mysql "
                f"driver needs charset=utf8mb4 (4-byte characters): remove it or set utf8mb4"
            )
        return url.update_query_dict({"charset": "utf8mb4"})

    def _engine_options(self, url: URL, limited: bool = True) -> dict[str, Any]:
        options = super()._engine_options(url, limited)
        options["pool_recycle"] = 3600  # below the server's default wait_timeout
        options["connect_args"] = args = {
            "connect_timeout": self.conf.storage.connect_timeout,
            # strict: errors instead of truncation; never a silent non-InnoDB table
            "sql_mode": "TRADITIONAL",
        }
        timeout = self.conf.storage.query_timeout
        if limited and self._limits_queries():
            # PyMySQL's socket timeouts: a server or network that stops answering ends the
            # statement with 'Lost connection' (2013), i.e. a 503, after this long
            args["read_timeout"] = timeout
            args["write_timeout"] = timeout
        return options

    def _is_retryable(self, exc: sa_exc.DBAPIError) -> bool:
        args = getattr(exc.orig, "args", ())
        return bool(args) and args[0] in (1205, 1213)  # lock wait timeout, deadlock

    @contextlib.contextmanager
    def _upgrade_lock(self, conn: sa.Connection) -> Iterator[None]:
        got = conn.execute(sa.text("SELECT GET_LOCK('myservice_schema_upgrade', 600)")).scalar()
        conn.commit()
        if got != 1:
            raise StartupError("timed out waiting for another process upgrading the schema")
        try:
            yield
        finally:
            conn.rollback()
            conn.execute(sa.text("SELECT RELEASE_LOCK('myservice_schema_upgrade')"))
            conn.commit()
