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

:meth:`HookDispatcher.fire` never raises.  It runs the event's hooks in discovery order, each
in a worker thread of a bounded pool owned by the dispatcher, waiting at most
``[hooks] timeout`` seconds for each; a failing hook is logged at ERROR (request id, event,
hook name, distribution and version; traceback at DEBUG), a slow one is abandoned and logged,
and the caller carries on.  An event without enabled hooks costs one dict look-up.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import datetime as _dt
import logging
import queue
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from myservice import log as _log
from myservice.hooks.base import NAMESPACE, Event, HookNotConfigured, to_jsonable

LOG = logging.getLogger(__name__)

__all__ = ["HookDispatcher", "LoadedHook"]


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


class HookDispatcher:
    """Loads the event hooks once and fires them; one per application.

    ``conf`` is the :class:`myservice.conf.Config` (``[hooks] disabled``, ``[hooks] timeout``).
    ``events``: the event names to load hooks for; default, every entry-point name of
    ``namespace``.  ``manager_factory``: the ``HookManager`` class to use (default
    :class:`myservice.plugins.HookManager`; any stevedore-compatible one works).
    ``max_workers``: size of the thread pool (default ``4 + 2 * number of hook instances``,
    at most 32).
    """

    def __init__(
        self,
        conf: Any,
        *,
        events: Iterable[str] | None = None,
        manager_factory: Callable[..., Any] | None = None,
        namespace: str = NAMESPACE,
        max_workers: int | None = None,
    ) -> None:
        self.conf = conf
        self.namespace = namespace
        self.timeout: float = float(conf.hooks.timeout)
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
        for event in events:
            loaded = self._load_event(factory, event, instances)
            if loaded:
                hooks[event] = tuple(loaded)
        self._hooks: Mapping[str, tuple[LoadedHook, ...]] = hooks
        self._instances = [h for h in instances.values() if h is not None]
        workers = max_workers or min(32, 4 + 2 * len(self._instances))
        self._pool = _BoundedPool(workers, "myservice-hook")
        self._closed = False
        for event, loaded in hooks.items():
            LOG.info("Event %s: hooks %s", event, ", ".join(h.name for h in loaded))

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
        """Run the hooks of ``event_name`` for a committed change; never raises.

        Each hook gets its own :class:`Event` with its own JSON-ready deep copy of ``resource``
        and runs with the ``[hooks] timeout``; failures and timeouts are logged.
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
            timestamp = _dt.datetime.now(_dt.UTC)
            for hook in hooks:
                event = Event(
                    name=event_name,
                    resource=to_jsonable(resource),
                    request_id=request_id,
                    user_id=user_id,
                    project_id=project_id,
                    timestamp=timestamp,
                )
                self._run_one(hook, event)
        except Exception:  # never let a hook problem reach the request
            LOG.exception(
                "Firing event %s for request %s failed; the change itself is committed",
                event_name,
                request_id,
                extra=_extra(request_id),
            )

    def _run_one(self, hook: LoadedHook, event: Event) -> None:
        context = contextvars.copy_context()

        def call() -> Any:
            if event.request_id:
                _log.request_id.set(event.request_id)
            return hook.obj(event)

        future = self._pool.submit(lambda: context.run(call))
        done, _ = concurrent.futures.wait([future], timeout=self.timeout)
        if not done:
            started = not future.cancel()
            LOG.error(
                "Event hook %s (distribution %s %s) %s event %s within %gs for request %s; "
                "abandoned, the request continues",
                hook.name,
                hook.distribution,
                hook.version,
                "did not finish" if started else "could not start (all hook workers busy) for",
                event.name,
                self.timeout,
                event.request_id,
                extra=_extra(event.request_id),
            )
            if started:
                future.add_done_callback(lambda f: _late_result(f, hook, event))
            return
        exc = future.exception()
        if exc is not None:
            _log_failure(hook, event, exc)

    # -- shutdown ---------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the worker pool (queued calls are cancelled, running ones are left to finish)
        and call each hook's ``close()`` if it has one.  Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._pool.shutdown()
        for hook in self._instances:
            _close_quietly(hook.obj, hook.name)

    def __enter__(self) -> HookDispatcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


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


def _late_result(future: concurrent.futures.Future[Any], hook: LoadedHook, event: Event) -> None:
    if future.cancelled():
        return
    exc = future.exception()
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
