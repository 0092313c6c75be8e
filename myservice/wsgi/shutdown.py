"""SIGTERM as a clean stop, for a server that leaves SIGTERM alone (``paster serve``).

A process stopped by SIGTERM's default action dies at once: the access-log lines and the
hook events (audit) of requests already answered, still queued in memory, are lost, and the
requests in flight are cut.  ``paster serve`` (waitress) has no SIGTERM handler of its own,
while systemd, Docker and Kubernetes stop a service with SIGTERM.  The ``urlmap`` composite
factory therefore calls :func:`exit_on_sigterm` with the application it built.

Contract of :func:`exit_on_sigterm`:

* It installs a handler only when called in the **main thread** and SIGTERM's disposition
  is **SIG_DFL**.  A handler already installed by the server (a gunicorn worker's, installed
  before it loads the application; ``myservice-api``'s, installed before it builds it), an
  ignored SIGTERM (``SIG_IGN``) and a call from another thread are left alone: it returns
  ``False`` and changes nothing.
* Idempotent: when this module's handler is already installed (a second application built in
  the same process), the application is added to it and nothing else changes.
* The handler holds the applications by weak reference only.  On SIGTERM it first puts back
  SIG_DFL, so **a second SIGTERM kills the process at once** (status 143; the escape hatch
  when a shutdown hangs).  Then, if one of its applications is still alive, it raises
  :class:`SystemExit` in the main thread; if none is (they were built by a test and are
  gone), it re-raises the signal, which now takes its default action, as if no handler had
  ever been installed.

Why :class:`SystemExit` rather than :class:`KeyboardInterrupt` (what SIGINT raises): waitress's
``server.run()`` catches both the same way (it stops accepting, waits up to 5 s for the
requests being served, and returns), and PasteScript's ``serve`` command catches both too; so
inside the serve loop they are the same path, SIGINT's.  They differ outside it (a SIGTERM while
``paster serve`` is still starting, or while the interpreter exits): an uncaught
``SystemExit()`` ends the interpreter normally -- exit status 0, no traceback, :mod:`atexit`
handlers run -- whereas an uncaught ``KeyboardInterrupt`` prints a traceback and ends the
process as killed by SIGINT (status 130).  PasteScript's own reload monitor turns SIGTERM into
``SystemExit`` for the same reason.  So ``paster serve`` stopped by SIGTERM exits with status 0,
as it does on SIGINT, after the :mod:`atexit` handlers have drained the access-log queues
(:class:`myservice.middleware.access_log.LineQueue`) and the hook dispatcher
(:meth:`myservice.hooks.dispatcher.HookDispatcher.close`), and ``logging.shutdown`` has
written the buffered log lines.

The handler never logs: a Python signal handler runs on the main thread between two
bytecodes, possibly while that thread holds the (non-reentrant) buffer lock of
:class:`myservice.log.BatchingStreamHandler`.
"""

from __future__ import annotations

import logging
import signal
import threading
import weakref
from types import FrameType

LOG = logging.getLogger(__name__)


class ExitOnSigterm:
    """The SIGTERM handler installed by :func:`exit_on_sigterm`; see the module docstring.

    ``apps``: the applications it stops the process for, held weakly."""

    def __init__(self) -> None:
        self.apps: weakref.WeakSet[object] = weakref.WeakSet()

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        signal.signal(signum, signal.SIG_DFL)  # a second SIGTERM: the default action
        if not self.apps:  # nothing left to shut down cleanly: behave as if never installed
            signal.raise_signal(signum)
            return
        raise SystemExit()


def exit_on_sigterm(app: object) -> bool:
    """Make SIGTERM stop the process cleanly while ``app`` is alive (see the module
    docstring).  Returns True when ``app`` is covered by this module's handler, False when
    SIGTERM was left as it was (not the main thread, or a disposition other than SIG_DFL)."""
    if threading.current_thread() is not threading.main_thread():
        LOG.debug("SIGTERM left alone: the application was built outside the main thread")
        return False
    current = signal.getsignal(signal.SIGTERM)
    if isinstance(current, ExitOnSigterm):
        current.apps.add(app)
        return True
    if current is not signal.SIG_DFL:
        LOG.debug("SIGTERM left alone: the server handles it (%r)", current)
        return False
    handler = ExitOnSigterm()
    handler.apps.add(app)
    signal.signal(signal.SIGTERM, handler)
    LOG.debug("SIGTERM will stop the server cleanly, as SIGINT does")
    return True
