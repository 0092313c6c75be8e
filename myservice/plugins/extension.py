"""ExtensionManager: load every plugin of a namespace (stevedore-compatible).

Differences from stevedore, all deliberate:

* entry points come from :mod:`myservice.plugins.discovery` (cached, never stale) in a
  deterministic order: ``sys.path`` order, then distribution name, then entry-point name;
* a plugin that fails to load is logged at ERROR with its distribution, its entry-point
  target and the exception (traceback at DEBUG), unless ``on_load_failure_callback`` is set;
* ``__len__`` and ``__repr__`` exist; ``bool(manager)`` stays True as in stevedore, so
  ``if manager:`` keeps its old meaning (use ``len(manager)`` to test for plugins);
* duplicate names are grouped wherever they are in the list, not only when adjacent.
"""

from __future__ import annotations

import os
import sys
import types
import warnings
from collections.abc import Callable, Iterator, Sequence

from myservice.plugins import _log, discovery
from myservice.plugins.discovery import EntryPoint
from myservice.plugins.exception import MultipleMatches, NoMatches

LOG = _log.getLogger(__name__)

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - what type checkers see
    from typing import Any, Generic, TypeVar

    T = TypeVar("T")
else:
    # Importing typing costs a fresh process ~2 ms, a third of importing the managers;
    # at run time they need from it only that ``ExtensionManager[Base]`` is subscriptable.
    # (Annotations are not evaluated: ``from __future__ import annotations``.)

    class Generic:
        """Run-time stand-in for ``typing.Generic``: ``Cls[X]`` is ``types.GenericAlias``."""

        __slots__ = ()
        __class_getitem__ = classmethod(types.GenericAlias)

    class _TypeVar:
        __slots__ = ("__name__",)

        def __init__(self, name: str) -> None:
            self.__name__ = name

        def __repr__(self) -> str:
            return f"~{self.__name__}"

    T = _TypeVar("T")
    Any = object

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _caller_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first frame outside this package."""
    level = 1
    frame = sys._getframe(1)
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        if os.path.dirname(filename) != _PACKAGE_DIR:
            return level
        frame = frame.f_back
        level += 1
    return level


def warn_deprecated(message: str) -> None:
    """Emit a DeprecationWarning attributed to the caller of the plugin manager."""
    warnings.warn(message, DeprecationWarning, stacklevel=_caller_stacklevel())


def describe_entry_point(ep: Any) -> str:
    """``name = module:attr (from dist version)`` for messages."""
    return f"{getattr(ep, 'name', '?')} = {describe_target(ep)}"


def describe_target(ep: Any) -> str:
    """``module:attr (from dist version)``: what an entry point loads and who installed it,
    for messages."""
    dist = getattr(ep, "dist", None)
    origin = f"{dist.name} {dist.version}" if dist is not None else "unknown distribution"
    return f"{getattr(ep, 'value', '?')} (from {origin})"


def check_name(name: Any, what: str = "plugin name") -> str:
    """Return ``name`` if it is a string, else raise TypeError saying what was expected."""
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a string, got {type(name).__name__} {name!r}")
    return name


def closest(name: str, candidates: Sequence[str]) -> str | None:
    """The candidate closest to ``name`` (difflib), or None."""
    import difflib  # only when a name is wrong: not worth importing on every start

    matches = difflib.get_close_matches(name, list(dict.fromkeys(candidates)), n=1, cutoff=0.5)
    return matches[0] if matches else None


class Extension(Generic[T]):
    """One loaded plugin.

    :param name: the entry-point name.
    :param entry_point: the entry point it was loaded from (``.dist`` is a
        :class:`~myservice.plugins.discovery.DistributionInfo` or None).
    :param plugin: the object the entry point refers to (usually a class or factory).
    :param obj: ``plugin(*invoke_args, **invoke_kwds)`` when ``invoke_on_load``, else None.
    """

    def __init__(self, name: str, entry_point: Any, plugin: Any, obj: Any) -> None:
        self.name = name
        self.entry_point = entry_point
        self.plugin = plugin
        self.obj = obj

    @property
    def module_name(self) -> str:
        """The module part of the entry-point target."""
        return self.entry_point.module

    @property
    def attr(self) -> str:
        """The attribute part of the entry-point target."""
        return self.entry_point.attr

    @property
    def entry_point_target(self) -> str:
        """The entry-point target, ``module:attr``."""
        return self.entry_point.value

    @property
    def extras(self) -> list[str]:
        """Extras declared on the entry point (``name = mod:attr [extra]``)."""
        return list(getattr(self.entry_point, "extras", []) or [])

    @property
    def distribution(self) -> discovery.DistributionInfo | None:
        """The distribution (``.name``, ``.version``) providing this plugin, or None."""
        return getattr(self.entry_point, "dist", None)

    def __repr__(self) -> str:
        dist = self.distribution
        origin = f" from {dist.name} {dist.version}" if dist is not None else ""
        target = getattr(self.entry_point, "value", "?")
        return f"<Extension {self.name!r} = {target}{origin}>"


ConflictResolver = Callable[[str, str, "list[Extension[Any]]"], "Extension[Any]"]


def _describe_candidates(extensions: Sequence[Extension[Any]]) -> str:
    return "; ".join(describe_entry_point(e.entry_point) for e in extensions)


def ignore_conflicts(namespace: str, name: str, entrypoints: list[Extension[T]]) -> Extension[T]:
    """Conflict resolver: use the first candidate in discovery order, with a WARNING.

    Discovery order is ``sys.path`` order, so the plugin that wins is the one whose
    distribution comes first on ``sys.path`` -- the same rule Python uses for imports.
    """
    LOG.warning(
        "%d plugins named %r in namespace %r: %s; using the first one (sys.path order)",
        len(entrypoints),
        name,
        namespace,
        _describe_candidates(entrypoints),
    )
    return entrypoints[0]


def error_on_conflict(namespace: str, name: str, entrypoints: list[Extension[T]]) -> Extension[T]:
    """Conflict resolver: raise MultipleMatches naming every distribution providing ``name``."""
    raise MultipleMatches(
        f"{len(entrypoints)} plugins are named {name!r} in namespace {namespace!r}: "
        f"{_describe_candidates(entrypoints)}. Uninstall all but one of these distributions, "
        f"or pass conflict_resolver= to choose one."
    )


class ExtensionManager(Generic[T]):
    """Load every plugin in ``namespace``.

    :param namespace: the entry-point group, e.g. ``"myservice.hooks"``.
    :param invoke_on_load: call each plugin after loading it and keep the result in ``obj``.
    :param invoke_args: positional arguments for that call.
    :param invoke_kwds: keyword arguments for that call.
    :param propagate_map_exceptions: let exceptions raised inside :meth:`map` propagate
        instead of logging them.
    :param on_load_failure_callback: ``callback(manager, entrypoint, exception)`` called
        instead of logging when a plugin fails to import or instantiate.
    :param verify_requirements: deprecated no-op (as in stevedore 5).
    :param warn_on_missing_entrypoint: True logs a WARNING when the namespace has no
        plugins, False stays silent; the default logs it at DEBUG.
    :param conflict_resolver: ``resolver(namespace, name, extensions) -> extension``,
        consulted by name look-ups (``manager[name]``, :meth:`items`) when several
        plugins share one name.  Default: :func:`ignore_conflicts`.
    """

    _default_conflict_resolver: Callable[..., Any] = staticmethod(ignore_conflicts)

    def __init__(
        self,
        namespace: str,
        invoke_on_load: bool = False,
        invoke_args: tuple[Any, ...] | None = (),
        invoke_kwds: dict[str, Any] | None = None,
        propagate_map_exceptions: bool = False,
        on_load_failure_callback: Callable[..., Any] | None = None,
        verify_requirements: bool | None = False,
        warn_on_missing_entrypoint: bool | None = None,
        *,
        conflict_resolver: ConflictResolver | None = None,
    ) -> None:
        self._init_attributes(
            namespace,
            propagate_map_exceptions=propagate_map_exceptions,
            on_load_failure_callback=on_load_failure_callback,
            conflict_resolver=conflict_resolver,
        )
        self._check_deprecated(verify_requirements)
        self._warn_on_empty = warn_on_missing_entrypoint
        extensions = self._load_plugins(
            invoke_on_load, tuple(invoke_args or ()), dict(invoke_kwds or {})
        )
        self._init_plugins(extensions)

    # -- construction ----------------------------------------------------------------

    @classmethod
    def make_test_instance(
        cls,
        extensions: list[Extension[T]],
        namespace: str = "TESTING",
        propagate_map_exceptions: bool = False,
        on_load_failure_callback: Callable[..., Any] | None = None,
        verify_requirements: bool | None = False,
        *,
        conflict_resolver: ConflictResolver | None = None,
    ) -> Any:
        """A manager holding ``extensions`` as given, without touching entry points."""
        o = cls.__new__(cls)
        o._init_test_attributes(
            extensions,
            namespace,
            propagate_map_exceptions=propagate_map_exceptions,
            on_load_failure_callback=on_load_failure_callback,
            conflict_resolver=conflict_resolver,
        )
        o._check_deprecated(verify_requirements)
        o._init_plugins(list(extensions))
        return o

    def _init_test_attributes(
        self, extensions: list[Extension[T]], namespace: str, **options: Any
    ) -> None:
        """:meth:`_init_attributes` for :meth:`make_test_instance`; a subclass whose
        ``_init_attributes`` needs more derives it from ``extensions`` here."""
        self._init_attributes(namespace, **options)

    def _init_attributes(
        self,
        namespace: str,
        propagate_map_exceptions: bool = False,
        on_load_failure_callback: Callable[..., Any] | None = None,
        conflict_resolver: ConflictResolver | None = None,
    ) -> None:
        self.namespace = check_name(namespace, "plugin namespace")
        self.propagate_map_exceptions = propagate_map_exceptions
        self._on_load_failure_callback = on_load_failure_callback
        self._conflict_resolver = conflict_resolver or type(self)._default_conflict_resolver
        self._warn_on_empty: bool | None = None
        self._by_name_cache: dict[str, Extension[T]] | None = None

    @staticmethod
    def _check_deprecated(verify_requirements: bool | None) -> None:
        if verify_requirements:
            warn_deprecated("verify_requirements is deprecated and ignored, as in stevedore 5")

    def _init_plugins(self, extensions: list[Extension[T]]) -> None:
        self.extensions: list[Extension[T]] = extensions
        self._by_name_cache = None

    def list_entry_points(self) -> list[EntryPoint]:
        """Every entry point of the namespace, in discovery order (nothing is imported)."""
        return list(discovery.get_entry_points(self.namespace))

    def entry_points_names(self) -> list[str]:
        """Names of every entry point of the namespace (nothing is imported)."""
        return [ep.name for ep in self.list_entry_points()]

    def _wanted(self, ep: EntryPoint) -> bool:
        """Filter applied BEFORE importing; subclasses restrict it by name."""
        return True

    def _load_plugins(
        self, invoke_on_load: bool, invoke_args: tuple[Any, ...], invoke_kwds: dict[str, Any]
    ) -> list[Extension[T]]:
        extensions: list[Extension[T]] = []
        entry_points = self.list_entry_points()
        if not entry_points:
            self._report_empty_namespace()
        for ep in entry_points:
            if not self._wanted(ep):
                continue
            LOG.debug("found extension %s", describe_entry_point(ep))
            try:
                ext = self._load_one_plugin(ep, invoke_on_load, invoke_args, invoke_kwds)
            except (KeyboardInterrupt, AssertionError):
                raise
            except Exception as err:  # noqa: BLE001 - a broken plugin must not break others
                self._on_load_failure(ep, err)
                continue
            if ext is not None:
                extensions.append(ext)
        return extensions

    def _report_empty_namespace(self) -> None:
        if self._warn_on_empty is False:
            return
        level = _log.WARNING if self._warn_on_empty else _log.DEBUG
        LOG.log(level, "namespace %r has no plugins installed on sys.path", self.namespace)

    def _on_load_failure(self, ep: EntryPoint, err: Exception) -> None:
        if self._on_load_failure_callback is not None:
            self._on_load_failure_callback(self, ep, err)
            return
        LOG.error(
            "could not load plugin %s in namespace %r: %s: %s",
            describe_entry_point(ep),
            self.namespace,
            type(err).__name__,
            err,
        )
        LOG.debug("traceback of the failure to load %s", ep.name, exc_info=err)

    def _load_one_plugin(
        self,
        ep: EntryPoint,
        invoke_on_load: bool,
        invoke_args: tuple[Any, ...],
        invoke_kwds: dict[str, Any],
    ) -> Extension[T] | None:
        if not discovery.EntryPoint.pattern.match(ep.value):
            raise ValueError(f"entry point target {ep.value!r} is not of the form 'module:attr'")
        plugin = ep.load()
        obj = plugin(*invoke_args, **invoke_kwds) if invoke_on_load else None
        return Extension(ep.name, ep, plugin, obj)

    # -- queries ---------------------------------------------------------------------

    def names(self) -> list[str]:
        """Names of the loaded extensions, in order (duplicates included)."""
        return [e.name for e in self.extensions]

    def _resolve(self, name: str, candidates: list[Extension[T]]) -> Extension[T]:
        if len(candidates) == 1:
            return candidates[0]
        return self._conflict_resolver(self.namespace, name, candidates)

    @property
    def _extensions_by_name(self) -> dict[str, Extension[T]]:
        if self._by_name_cache is None:
            grouped: dict[str, list[Extension[T]]] = {}
            for ext in self.extensions:
                grouped.setdefault(ext.name, []).append(ext)
            self._by_name_cache = {n: self._resolve(n, exts) for n, exts in grouped.items()}
        return self._by_name_cache

    def items(self) -> list[tuple[str, Extension[T]]]:
        """``(name, extension)`` pairs, one per name (conflicts resolved)."""
        return list(self._extensions_by_name.items())

    def __iter__(self) -> Iterator[Extension[T]]:
        return iter(self.extensions)

    def __len__(self) -> int:
        return len(self.extensions)

    def __bool__(self) -> bool:
        return True

    def __contains__(self, name: object) -> bool:
        return any(e.name == name for e in self.extensions)

    def __getitem__(self, name: str) -> Extension[T]:
        check_name(name)
        try:
            return self._extensions_by_name[name]
        except KeyError:
            raise KeyError(self._unknown_name_message(name)) from None

    def _unknown_name_message(self, name: str) -> str:
        known = self.names()
        if not known:
            return f"no plugin {name!r}: namespace {self.namespace!r} has no loaded plugins"
        hint = closest(name, known)
        did_you_mean = f"; did you mean {hint!r}?" if hint else ""
        return (
            f"no plugin {name!r} in namespace {self.namespace!r}; loaded: "
            f"{', '.join(sorted(set(known)))}{did_you_mean}"
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} namespace={self.namespace!r} names={self.names()!r}>"

    # -- calling plugins -------------------------------------------------------------

    def _no_extensions_message(self) -> str:
        return f"No {self.namespace} extensions found"

    def map(self, func: Callable[..., Any], *args: Any, **kwds: Any) -> list[Any]:
        """Call ``func(extension, *args, **kwds)`` for each extension; return the results.

        Raises NoMatches when there are no extensions.  Exceptions raised by ``func`` are
        logged and skipped unless ``propagate_map_exceptions`` is true.
        """
        if not self.extensions:
            raise NoMatches(self._no_extensions_message())
        response: list[Any] = []
        for e in self.extensions:
            self._invoke_one_plugin(response.append, func, e, args, kwds)
        return response

    @staticmethod
    def _call_extension_method(
        extension: Extension[Any], /, method_name: str, *args: Any, **kwds: Any
    ) -> Any:
        return getattr(extension.obj, method_name)(*args, **kwds)

    def map_method(self, method_name: str, *args: Any, **kwds: Any) -> list[Any]:
        """Call ``extension.obj.<method_name>(*args, **kwds)`` on each extension."""
        return self.map(self._call_extension_method, method_name, *args, **kwds)

    def _invoke_one_plugin(
        self,
        response_callback: Callable[[Any], Any],
        func: Callable[..., Any],
        e: Extension[T],
        args: tuple[Any, ...],
        kwds: dict[str, Any],
    ) -> None:
        try:
            response_callback(func(e, *args, **kwds))
        except Exception as err:
            if self.propagate_map_exceptions:
                raise
            LOG.error(
                "error calling plugin %s in namespace %r: %s: %s",
                describe_entry_point(e.entry_point),
                self.namespace,
                type(err).__name__,
                err,
            )
            LOG.debug("traceback of the error in %s", e.name, exc_info=err)
