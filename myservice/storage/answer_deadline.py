"""A deadline on each answer psycopg waits for: the client-side read timeout libpq lacks.

The ``postgresql`` driver's ``[storage] query_timeout`` makes the server cancel a statement
that runs too long (``statement_timeout``), and TCP gives up on a peer that stops
acknowledging (keepalives, ``tcp_user_timeout``).  Neither ends a wait on a peer that keeps
the connection open, acknowledges every packet and never answers: a stuck connection pooler
or proxy in front of the server, a server process stopped with ``SIGSTOP``.  Without a
deadline such a wait holds the request's thread for as long as the peer stays silent.

:class:`DeadlineConnection` is psycopg's ``Connection`` with a deadline on every exchange with
the server (a query and its result, a ``COMMIT``, a ``ROLLBACK``, the pool's ping): when it is
not complete ``answer_timeout`` seconds after it began, the connection is closed and
:class:`NoAnswer` is raised.  ``NoAnswer`` is a ``psycopg.OperationalError`` on a closed
connection, so SQLAlchemy treats it as a disconnect (the pooled connection is discarded) and
the driver answers :class:`~myservice.storage.base.Unavailable` (503), as for a server that
went away.

How: psycopg runs each exchange as a generator that ``Connection.wait`` drives, resuming it
when the socket is ready and every ``interval`` (0.1 s) while it is silent; the generator is
wrapped so that each resumption looks at the clock.  ``Connection.wait`` and that resumption
on a silent socket are psycopg's internals, not its documented API: psycopg 3.2 and later
resume the generator so (3.1 only resumed it when the socket was ready, so the deadline
would never be seen), hence ``psycopg>=3.2,<4`` in ``setup.cfg``, and
``tests/storage/test_answer_deadline.py`` checks the deadline on every test run, against a
fake server that never answers (no PostgreSQL needed).  The deadline is therefore seen within
about 0.1 s, and costs one generator frame per resumption, nothing when no deadline is set.
Connecting is not an exchange of this kind (``connect_timeout`` bounds it).
"""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import Any

import psycopg


class NoAnswer(psycopg.OperationalError):
    """The server did not answer within the deadline; the connection has been closed."""


class _Expired(Exception):
    """Raised inside the wrapped generator; turned into :class:`NoAnswer` by ``wait``."""


class DeadlineConnection(psycopg.Connection):  # type: ignore[type-arg]
    """``psycopg.Connection`` whose exchanges with the server must each complete within
    ``answer_timeout`` seconds (``None``: no deadline, as psycopg's own).  Set it on the
    connection once it is made: ``conn = DeadlineConnection.connect(...)``, then
    ``conn.answer_timeout = 35.0``."""

    answer_timeout: float | None = None

    def wait(self, gen: Any, *args: Any, **kwargs: Any) -> Any:
        """psycopg's ``wait``, with ``gen`` bounded by the deadline (see the module)."""
        limit = self.answer_timeout
        if limit is None:
            return super().wait(gen, *args, **kwargs)
        try:
            return super().wait(_bounded(gen, time.monotonic() + limit), *args, **kwargs)
        except _Expired:
            self.close()
            raise NoAnswer(
                f"no answer from the database server within {limit:g} s "
                "([storage] query_timeout and its grace); the connection was closed"
            ) from None


def _bounded(gen: Generator[Any, Any, Any], deadline: float) -> Generator[Any, Any, Any]:
    """``gen`` as psycopg drives it (each value it yields is the wait state, each value sent
    is what became ready), raising :class:`_Expired` when resumed after ``deadline``
    (``time.monotonic()``)."""
    try:
        state = next(gen)
        while True:
            ready = yield state
            if time.monotonic() >= deadline:
                gen.close()
                raise _Expired
            state = gen.send(ready)
    except StopIteration as done:
        return done.value
