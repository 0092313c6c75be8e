"""The hook dispatcher: loads the event hooks once, and fires them after committed changes.

:class:`HookDispatcher` is built once per application (it lives in the ``ServiceContext``).
At construction it discovers the event names registered in the ``myservice.hooks`` namespace
and, for each, builds a ``HookManager(namespace="myservice.hooks", name=EVENT, ...)``.  Hook
classes are imported by the manager (an import failure is reported through the manager's
``on_load_failure_callback``: logged, the service still starts); the dispatcher then skips the
hooks named in ``[hooks] disabled`` -- reading the class attribute ``name``, so a disabled hook is
not instantiated -- and instantiates each remaining class **once** as ``HookClass(conf)``, even
when it is registered under several events (the manager's ``invoke_on_load`` would build one
instance per event, hence the dispatcher invokes).

**Delivery is asynchronous.**  :meth:`HookDispatcher.fire` never raises and never waits for a
hook: it takes the event's timestamp, makes each hook its own JSON-ready copy of the resource,
appends the event to each hook's queue and returns (a few microseconds).  The request's
response does not wait for any hook.

* **One queue and one delivery thread per hook instance** (not per event): a hook sees its
  events in the order of the ``fire`` calls of this process, whatever the event names.  The
  thread hands each call to a worker of a bounded pool and waits for it at most
  ``[hooks] timeout`` seconds; a failing call is logged at ERROR (request id, event, hook name,
  distribution and version; traceback at DEBUG); a call that does not finish in time is
  abandoned (logged, left to finish on its own -- so it may overlap the hook's next call) and
  the thread goes on with the next event.  While a hook runs, the logging context variable
  :data:`myservice.log.request_id` holds the event's request id (comma-separated ids for a
  batch), so the hook's own log lines carry it.
* **Batches.**  A hook with a ``call_batch(events)`` method (e.g. ``audit``) is given every
  event pending in its queue at once (up to :data:`MAX_BATCH`, in order) instead of one call
  per event; with a single pending event it is called as ``hook(event)``.  Such a hook may set
  ``batch_linger`` (seconds, at most 1): once an event is waiting, its thread waits that long
  for more to join the batch (``audit``: 20 ms, so a busy process pays one fsync per 20 ms
  rather than one per event).
* **Bounded queues.**  Each queue holds at most ``[hooks] queue_size`` events; when a hook
  falls that far behind, ``fire`` drops the event for that hook and logs an ERROR naming the
  event, the request id and the hook -- the request never blocks on a hook.
* :meth:`HookDispatcher.flush` waits (bounded) until every queued event has been delivered.
  :meth:`HookDispatcher.close` (called at application shutdown: SIGTERM of ``myservice-api``,
  and at interpreter exit through :mod:`atexit`, which covers a gunicorn worker's exit) stops
  accepting events, delivers what is queued for up to ``[hooks] timeout`` seconds, logs what it
  could not deliver, then closes the hooks.  A process killed with ``kill -9`` loses the events
  still queued: the change was committed and acknowledged to the client, but its hooks never
  ran (the audit file stays valid JSON Lines; its last lines are simply missing).
* **fork.**  The queues, threads and pool belong to the process that started them (lazily, on
  the first ``fire``); a forked child (``gunicorn --preload``) starts its own.

An event without enabled hooks costs one dict look-up.
"""

from __future__ import annotations

import atexit
import collections
import concurrent.futures
import contextvars
import datetime as _dt
import logging
import os
import queue
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from myservice import log as _log
from myservice.hooks import names
from myservice.hooks.base import NAMESPACE, Event, HookNotConfigured, to_jsonable

LOG = logging.getLogger(__name__)

__all__ = ["MAX_BATCH", "HookDispatcher", "LoadedHook"]

#: at most this many events are handed to one ``call_batch`` call
MAX_BATCH = 256


@dataclass(frozen=True)
class LoadedHook:
    """One enabled hook instance, and where it came from (for log messages)."""

    name: str
    obj: Callable[[Event], Any]
    distribution: str
    version: str
    target: str

    @property
    def origin(self) -> str:
        """``"dist-name 1.0 (module:Class)"``."""
        return f"{self.distribution} {self.version} ({self.target})"


def _dist_of(entry_point: Any) -> tuple[str, str]:
    dist = getattr(entry_point, "dist", None)
    if dist is None:
        return "unknown-distribution", "?"
    name = getattr(dist, "name", None)
    if not name:
        metadata = getattr(dist, "metadata", None)
        name = metadata["Name"] if metadata is not None else None
    return str(name or "unknown-distribution"), str(getattr(dist, "version", None) or "?")


def _target_of(entry_point: Any, plugin: Any) -> str:
    value = getattr(entry_point, "value", None)
    if value:
        return str(value)
    module = getattr(plugin, "__module__", "?")
    return f"{module}:{getattr(plugin, '__qualname__', type(plugin).__name__)}"


def _discover_events(namespace: str) -> list[str]:
    """The distinct entry-point names (= event names) of ``namespace``, in discovery order
    (the plugin managers' own cached index: nothing is imported)."""
    from myservice.plugins.discovery import get_entry_points

    seen: dict[str, None] = {}
    for ep in get_entry_points(namespace):
        seen.setdefault(ep.name, None)
    return list(seen)


def _default_manager_factory() -> Callable[..., Any]:
    from myservice.plugins import HookManager

    return HookManager


class _BoundedPool:
    """A small thread pool of daemon threads (at most ``max_workers``).

    Unlike ``ThreadPoolExecutor``, its threads are daemons, so a hook that hangs forever cannot
    block interpreter exit.  Threads are started on demand, when no worker is idle.
    """

    def __init__(self, max_workers: int, name: str) -> None:
        self._max = max_workers
        self._name = name
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, fn: Callable[[], Any]) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("hook dispatcher is closed")
            self._queue.put((future, fn))
            if not self._idle.acquire(blocking=False) and len(self._threads) < self._max:
                thread = threading.Thread(
                    target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
        return future

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            future, fn = item
            if future.set_running_or_notify_cancel():
                try:
                    result = fn()
                except BaseException as exc:  # a hook's SystemExit must not kill the worker
                    future.set_exception(exc)
                else:
                    future.set_result(result)
            del item, future, fn
            self._idle.release()

    def shutdown(self) -> None:
        """Cancel queued calls and stop the workers (running calls are not interrupted)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            threads = list(self._threads)
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[0].cancel()
        for _ in threads:
            self._queue.put(None)


class _Lane:
    """The ordered delivery of one hook: a bounded FIFO of events and one daemon thread that
    takes them out in order (several at once for a hook with ``call_batch``) and delivers them
    with ``deliver(hook, events)`` (which never raises)."""

    def __init__(
        self,
        hook: LoadedHook,
        maxsize: int,
        deliver: Callable[[LoadedHook, list[Event]], None],
    ) -> None:
        self.hook = hook
        self.maxsize = maxsize
        self._deliver = deliver
        batching = callable(getattr(hook.obj, "call_batch", None))
        self._batch = MAX_BATCH if batching else 1
        linger = getattr(hook.obj, "batch_linger", 0.0) if batching else 0.0
        self._linger = min(float(linger), 1.0) if isinstance(linger, int | float) else 0.0
        lock = threading.Lock()
        self._has_work = threading.Condition(lock)
        self._idle = threading.Condition(lock)
        self._items: collections.deque[Event] = collections.deque()
        self._busy = 0
        self._stopped = False
        self._thread = threading.Thread(
            target=self._run, name=f"myservice-hook-{hook.name}", daemon=True
        )
        self._thread.start()

    def offer(self, event: Event) -> bool:
        """Queue ``event``; False when the queue is full or the lane is stopped."""
        with self._has_work:
            if self._stopped or len(self._items) >= self.maxsize:
                return False
            self._items.append(event)
            self._has_work.notify()
        return True

    @property
    def stopped(self) -> bool:
        return self._stopped

    def wait_idle(self, deadline: float) -> bool:
        """Wait until the queue is empty and no call is in progress, at most until
        ``deadline`` (``time.monotonic()``); True if idle."""
        with self._idle:
            while self._items or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def stop(self) -> list[Event]:
        """Stop taking events; returns the events still queued (never delivered).  A call in
        progress finishes (bounded by the hook timeout)."""
        with self._has_work:
            self._stopped = True
            left = list(self._items)
            self._items.clear()
            self._has_work.notify_all()
            self._idle.notify_all()
        return left

    def _run(self) -> None:
        while True:
            with self._has_work:
                while not self._items and not self._stopped:
                    self._has_work.wait()
                if not self._items:
                    return
                linger = self._linger and len(self._items) < self._batch and not self._stopped
            if linger:  # let a few more events join this batch (the response is already sent)
                time.sleep(self._linger)
            with self._has_work:
                if not self._items:  # stop() took them
                    continue
                count = min(len(self._items), self._batch)
                events = [self._items.popleft() for _ in range(count)]
                self._busy = count
            try:
                self._deliver(self.hook, events)
            except BaseException:  # deliver() does not raise; never let the thread die
                LOG.exception("Delivering events to event hook %s failed", self.hook.name)
            finally:
                with self._idle:
                    self._busy = 0
                    self._idle.notify_all()
            del events


class _Runtime:
    """What one process needs to deliver events: the pool and one lane per hook instance."""

    def __init__(self, pid: int, pool: _BoundedPool, lanes: dict[int, _Lane]) -> None:
        self.pid = pid
        self.pool = pool
        self.lanes = lanes


class HookDispatcher:
    """Loads the event hooks once and fires them; one per application.

    ``conf`` is the :class:`myservice.conf.Config` (``[hooks] disabled``, ``[hooks] timeout``,
    ``[hooks] queue_size``).  ``events``: the event names to load hooks for; default, every
    entry-point name of ``namespace``.  ``manager_factory``: the ``HookManager`` class to use
    (default :class:`myservice.plugins.HookManager`; any stevedore-compatible one works).
    ``max_workers``: size of the thread pool (default ``4 + 2 * number of hook instances``,
    at most 32).  ``queue_size``: events each hook's queue holds (default
    ``[hooks] queue_size``).
    """

    def __init__(
        self,
        conf: Any,
        *,
        events: Iterable[str] | None = None,
        manager_factory: Callable[..., Any] | None = None,
        namespace: str = NAMESPACE,
        max_workers: int | None = None,
        queue_size: int | None = None,
    ) -> None:
        self.conf = conf
        self.namespace = namespace
        self.timeout: float = float(conf.hooks.timeout)
        self.queue_size: int = int(queue_size or conf.hooks.queue_size)
        self.disabled: frozenset[str] = frozenset(conf.hooks.disabled)
        factory = manager_factory or _default_manager_factory()
        if events is None:
            try:
                events = _discover_events(namespace)
            except Exception:
                LOG.exception("Cannot list the event hooks of namespace %s", namespace)
                events = []
        instances: dict[Any, LoadedHook | None] = {}
        hooks: dict[str, tuple[LoadedHook, ...]] = {}
        self._names_seen: set[str] = set()  # every hook class's name, for names.check
        for event in events:
            loaded = self._load_event(factory, event, instances)
            if loaded:
                hooks[event] = tuple(loaded)
        self._hooks: Mapping[str, tuple[LoadedHook, ...]] = hooks
        self._instances = [h for h in instances.values() if h is not None]
        self._workers = max_workers or min(32, 4 + 2 * len(self._instances))
        self._runtime: _Runtime | None = None  # started by the first fire() of each process
        self._start_lock = threading.Lock()
        self._closed = False
        for event, loaded in hooks.items():
            LOG.info("Event %s: hooks %s", event, ", ".join(h.name for h in loaded))
        names.check(self.disabled, self._names_seen, hooks, self._instances)
        # a clean interpreter exit (e.g. a gunicorn worker's) delivers what is queued; the
        # weak reference lets an unclosed dispatcher be collected
        self._atexit = _close_at_exit(weakref.ref(self))
        atexit.register(self._atexit)

    # -- loading ----------------------------------------------------------------------------

    def _on_load_failure(self, manager: Any, entry_point: Any, exc: BaseException) -> None:
        """The managers' ``on_load_failure_callback``: a hook module failed to import."""
        dist, version = _dist_of(entry_point)
        _log_load_failure(
            getattr(entry_point, "name", "?"),
            getattr(entry_point, "value", "?"),
            dist,
            version,
            exc,
        )

    def _load_event(
        self, factory: Callable[..., Any], event: str, instances: dict[Any, LoadedHook | None]
    ) -> list[LoadedHook]:
        try:
            manager = factory(
                namespace=self.namespace,
                name=event,
                invoke_on_load=False,
                on_load_failure_callback=self._on_load_failure,
            )
            extensions = list(manager)
        except Exception:
            LOG.exception("Cannot load the hooks of event %s (namespace %s)", event, self.namespace)
            return []
        loaded: list[LoadedHook] = []
        for ext in extensions:
            bundle = isinstance(ext.plugin, list | tuple)
            for plugin in ext.plugin if bundle else (ext.plugin,):
                try:
                    key: Any = plugin
                    hash(key)
                except TypeError:
                    key = id(plugin)
                if key not in instances:
                    instances[key] = self._instantiate(ext, plugin, bundle)
                hook = instances[key]
                if hook is not None and hook not in loaded:  # one class twice: runs once
                    loaded.append(hook)
        return loaded

    def _instantiate(self, ext: Any, plugin: Any, bundle: bool) -> LoadedHook | None:
        entry_point = getattr(ext, "entry_point", None)
        dist, version = _dist_of(entry_point)
        target = _target_of(None if bundle else entry_point, plugin)
        name = getattr(plugin, "name", None)
        if isinstance(name, str):
            self._names_seen.add(name)
        if isinstance(name, str) and name in self.disabled:
            LOG.info("Event hook %s (%s %s) is disabled by [hooks] disabled", name, dist, version)
            return None
        # make_test_instance may hand us built objects
        obj = None if bundle else getattr(ext, "obj", None)
        if obj is None:
            try:
                obj = plugin(self.conf)
            except HookNotConfigured as exc:
                LOG.info("Event hook %s (%s %s) is off: %s", name or target, dist, version, exc)
                return None
            except Exception as exc:
                _log_load_failure(ext.name, target, dist, version, exc)
                return None
        if not isinstance(name, str):
            name = getattr(obj, "name", None)
            if isinstance(name, str):
                self._names_seen.add(name)
        if not isinstance(name, str) or not name:
            LOG.warning(
                "Event hook %s (%s %s) has no 'name' attribute; it is called %r and cannot be "
                "disabled by name",
                target,
                dist,
                version,
                target,
            )
            name = target
        if name in self.disabled:
            LOG.info("Event hook %s (%s %s) is disabled by [hooks] disabled", name, dist, version)
            _close_quietly(obj, name)
            return None
        if not callable(obj):
            LOG.error(
                "Event hook %s (%s %s, %s) is not callable; the service runs without it",
                name,
                dist,
                version,
                target,
            )
            return None
        return LoadedHook(name=name, obj=obj, distribution=dist, version=version, target=target)

    # -- introspection ----------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        """The names of every installed hook class seen at loading (enabled, disabled or
        failing), sorted: what ``[hooks] disabled`` and ``[plugin:NAME]`` may name."""
        return sorted(self._names_seen)

    @property
    def events(self) -> list[str]:
        """The events that have at least one enabled hook."""
        return list(self._hooks)

    def hooks(self, event_name: str) -> tuple[LoadedHook, ...]:
        """The enabled hooks of ``event_name``, in the order they run."""
        return self._hooks.get(event_name, ())

    # -- firing -----------------------------------------------------------------------------

    def fire(
        self,
        event_name: str,
        resource: Mapping[str, Any],
        *,
        request_id: str | None,
        user_id: str | None,
        project_id: str | None,
    ) -> None:
        """Queue ``event_name`` for each of its hooks and return at once; never raises, never
        blocks on a hook.

        Call it after the change is committed.  Each hook gets its own :class:`Event` with its
        own JSON-ready deep copy of ``resource`` (made here, so the caller may change
        ``resource`` afterwards).  A hook whose queue is full misses the event (logged at
        ERROR); see the module docstring for delivery, ordering and shutdown.
        """
        hooks = self._hooks.get(event_name)
        if not hooks:
            return
        try:
            if self._closed:
                LOG.warning(
                    "Event %s for request %s not dispatched: the hook dispatcher is closed",
                    event_name,
                    request_id,
                    extra=_extra(request_id),
                )
                return
            runtime = self._runtime
            if runtime is None or runtime.pid != os.getpid():
                runtime = self._start()
            timestamp = _dt.datetime.now(_dt.UTC)
            snapshot = to_jsonable(resource)
            first = True
            for hook in hooks:
                event = Event(
                    name=event_name,
                    resource=snapshot if first else to_jsonable(snapshot),
                    request_id=request_id,
                    user_id=user_id,
                    project_id=project_id,
                    timestamp=timestamp,
                )
                first = False
                lane = runtime.lanes[id(hook)]
                if not lane.offer(event):
                    _log_dropped(lane, event)
        except Exception:  # never let a hook problem reach the request
            LOG.exception(
                "Firing event %s for request %s failed; the change itself is committed",
                event_name,
                request_id,
                extra=_extra(request_id),
            )

    def _start(self) -> _Runtime:
        """The pool and lanes of this process, started on first use (again after a fork)."""
        with self._start_lock:
            if self._closed:
                raise RuntimeError("the hook dispatcher is closed")
            pid = os.getpid()
            runtime = self._runtime
            if runtime is None or runtime.pid != pid:
                pool = _BoundedPool(self._workers, "myservice-hook")
                timeout = self.timeout

                def deliver(hook: LoadedHook, events: list[Event]) -> None:
                    _deliver(pool, timeout, hook, events)

                lanes = {
                    id(hook): _Lane(hook, self.queue_size, deliver) for hook in self._instances
                }
                runtime = self._runtime = _Runtime(pid, pool, lanes)
            return runtime

    def _local_runtime(self) -> _Runtime | None:
        runtime = self._runtime
        return runtime if runtime is not None and runtime.pid == os.getpid() else None

    # -- waiting and shutdown ---------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every event fired so far in this process has been delivered (each hook
        call finished, failed or was abandoned), at most ``timeout`` seconds (default
        ``[hooks] timeout``).  Returns True when every queue is empty, False on timeout.
        Meant for tests and for shutdown; the request path never calls it."""
        runtime = self._local_runtime()
        if runtime is None:
            return True
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        return all([lane.wait_idle(deadline) for lane in runtime.lanes.values()])

    def close(self, timeout: float | None = None) -> None:
        """Stop accepting events, deliver the queued ones for at most ``timeout`` seconds
        (default ``[hooks] timeout``), log at ERROR the events that could not be delivered in
        that time, stop the workers (a call still running is left to finish) and call each
        hook's ``close()`` if it has one.  Idempotent."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self._atexit)
        runtime = self._local_runtime()
        if runtime is not None:
            self.flush(timeout)
            for lane in runtime.lanes.values():
                left = lane.stop()
                if left:
                    LOG.error(
                        "Event hook %s (distribution %s %s): %d queued event(s) not delivered at "
                        "shutdown (requests %s)",
                        lane.hook.name,
                        lane.hook.distribution,
                        lane.hook.version,
                        len(left),
                        ", ".join(str(e.request_id) for e in left[:20])
                        + (", ..." if len(left) > 20 else ""),
                    )
            runtime.pool.shutdown()
        for hook in self._instances:
            _close_quietly(hook.obj, hook.name)

    def __enter__(self) -> HookDispatcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _close_at_exit(ref: weakref.ReferenceType[HookDispatcher]) -> Callable[[], None]:
    def close() -> None:
        dispatcher = ref()
        if dispatcher is not None:
            dispatcher.close()

    return close


def _deliver(pool: _BoundedPool, timeout: float, hook: LoadedHook, events: list[Event]) -> None:
    """Run ``hook`` on ``events`` (one call, or one ``call_batch`` for several) in a pool
    worker, waiting at most ``timeout`` seconds; log failures and timeouts.  Never raises."""
    ids = ",".join(dict.fromkeys(str(e.request_id) for e in events if e.request_id))

    def call() -> Any:
        if ids:
            _log.request_id.set(ids)
        if len(events) == 1:
            return hook.obj(events[0])
        return hook.obj.call_batch(events)

    try:
        # a fresh context: the hook's context-variable changes stay in its call
        future = pool.submit(lambda: contextvars.Context().run(call))
    except RuntimeError as exc:  # the pool is shut down (close() gave up waiting)
        for event in events:
            _log_failure(hook, event, exc)
        return
    done, _ = concurrent.futures.wait([future], timeout=timeout)
    if not done:
        started = not future.cancel()
        for event in events:
            LOG.error(
                "Event hook %s (distribution %s %s) %s event %s within %gs for request %s; "
                "abandoned, the request continues",
                hook.name,
                hook.distribution,
                hook.version,
                "did not finish" if started else "could not start (all hook workers busy) for",
                event.name,
                timeout,
                event.request_id,
                extra=_extra(event.request_id),
            )
        if started:
            future.add_done_callback(lambda f: _late_result(f, hook, events))
        return
    if future.cancelled():  # close() stopped the pool before the call could start
        exc: BaseException | None = RuntimeError("the hook dispatcher was closed")
    else:
        exc = future.exception()
    if exc is not None:
        for event in events:
            _log_failure(hook, event, exc)


def _log_dropped(lane: _Lane, event: Event) -> None:
    hook = lane.hook
    if lane.stopped:
        reason = "the hook dispatcher is closed"
    else:
        reason = f"its queue is full ([hooks] queue_size = {lane.maxsize} events waiting)"
    LOG.error(
        "Event %s for request %s dropped for event hook %s (distribution %s %s): %s; the "
        "change itself is committed",
        event.name,
        event.request_id,
        hook.name,
        hook.distribution,
        hook.version,
        reason,
        extra=_extra(event.request_id),
    )


def _log_load_failure(event: str, target: str, dist: str, version: str, exc: BaseException) -> None:
    LOG.error(
        "Event hook %s = %s (distribution %s %s) could not be loaded, the service runs "
        "without it: %s: %s",
        event,
        target,
        dist,
        version,
        type(exc).__name__,
        exc,
    )
    LOG.debug("Traceback of the load failure of event hook %s", target, exc_info=exc)


def _extra(request_id: str | None) -> dict[str, str]:
    return {"request_id": request_id or "-"}


def _log_failure(hook: LoadedHook, event: Event, exc: BaseException) -> None:
    LOG.error(
        "Event hook %s (distribution %s %s) failed on event %s for request %s: %s: %s",
        hook.name,
        hook.distribution,
        hook.version,
        event.name,
        event.request_id,
        type(exc).__name__,
        exc,
        extra=_extra(event.request_id),
    )
    LOG.debug(
        "Traceback of event hook %s on event %s for request %s",
        hook.name,
        event.name,
        event.request_id,
        exc_info=exc,
        extra=_extra(event.request_id),
    )


def _late_result(
    future: concurrent.futures.Future[Any], hook: LoadedHook, events: Sequence[Event]
) -> None:
    if future.cancelled():
        return
    exc = future.exception()
    for event in events:
        if exc is not None:
            _log_failure(hook, event, exc)
        else:
            LOG.info(
                "Abandoned event hook %s finished event %s for request %s late",
                hook.name,
                event.name,
                event.request_id,
                extra=_extra(event.request_id),
            )


def _close_quietly(obj: Any, name: str) -> None:
    close = getattr(obj, "close", None)
    if not callable(close):
        return
    try:
        close()
    except Exception:
        LOG.warning("Closing event hook %s failed", name, exc_info=True)
