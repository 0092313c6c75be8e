"""Entry-point discovery: an index of every entry point on ``sys.path``, never stale.

Contract
--------
* :func:`get_entry_points` returns the entry points of one namespace (group) in a
  **deterministic order**: ``sys.path`` order first, then distribution name
  (normalized, case-insensitive), then entry-point name.  A distribution that appears
  in two ``sys.path`` entries counts once, the first one wins (as in
  ``importlib.metadata``).
* Each returned :class:`EntryPoint` behaves like an ``importlib_metadata.EntryPoint``
  (``name``, ``value``, ``group``, ``module``, ``attr``, ``extras``, ``load()``,
  ``matches()``, equality, hashing, ``repr``) and its ``dist`` is a
  :class:`DistributionInfo` (``name``, ``version``, ``path``), also when the index was
  read from the on-disk cache.  It is not an instance of importlib_metadata's class:
  neither a warm look-up nor a scan imports ``importlib_metadata`` (nor ``tempfile``,
  ``hashlib``, ``pathlib``, ``dataclasses``, ``email``, ``zipfile``); a warm look-up
  reads one JSON file and calls ``os.stat``, nothing more.
* The index is cached on disk, one JSON file per ``sys.path`` list, in
  ``$MYSERVICE_PLUGIN_CACHE_DIR`` or ``$XDG_CACHE_HOME/myservice-plugins`` (default
  ``~/.cache/myservice-plugins``); ``MYSERVICE_PLUGIN_CACHE=off`` disables it.  At most
  :data:`MAX_CACHE_FILES` files are kept (newest first).  A cache that cannot be read or
  written is ignored (logged at DEBUG) and the index is built by a scan.
* Freshness: the index records ``(inode, size, st_mtime_ns, st_ctime_ns)`` of every
  ``sys.path`` directory, of every ``*.dist-info``/``*.egg-info`` ``entry_points.txt``
  (or, when there is none, of the metadata directory, so that creating one is seen), and
  of ``PKG-INFO`` in egg-info directories.  Installing, upgrading or
  removing a distribution changes the ``sys.path`` directory; editing
  ``entry_points.txt`` in place changes the file.  Because file-system timestamps are
  coarse (a few ms), an entry whose timestamp is within :data:`RACY_WINDOW_NS` of the
  moment it was recorded is not trusted ("racy", as in git's index): the index is then
  rebuilt, so a change made in the same clock tick is never missed.
* An in-process memo, validated by the same ``stat`` calls (no directory listing, no
  file reads), makes warm look-ups cost one ``stat`` per ``sys.path`` entry and per
  distribution.

The memo is process-wide on purpose (discovery happens on every manager construction);
:func:`clear_memo` resets it for tests.
"""

from __future__ import annotations

# Only modules that a bare ``python -c pass`` has already imported, or that cost next to
# nothing, are imported here: a warm look-up in a fresh process must stay cheap.  json is
# the exception (the cache is JSON); logging is imported only when a record can be seen
# (see ``_log``); tempfile and pathlib only where a cache is written or a Path returned.
import binascii
import json
import os
import re
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from importlib import import_module

from myservice.plugins import _log

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - typing only
    from pathlib import Path
    from typing import Any

LOG = _log.getLogger(__name__)

#: Entries whose timestamp is this close to the moment they were recorded are re-checked.
RACY_WINDOW_NS = 2_000_000_000
#: At most this many cache files (one per distinct ``sys.path``) are kept.
MAX_CACHE_FILES = 16
#: Bumped whenever the on-disk format changes.
CACHE_FORMAT = 3

_CACHE_DIR_ENV = "MYSERVICE_PLUGIN_CACHE_DIR"
_CACHE_SWITCH_ENV = "MYSERVICE_PLUGIN_CACHE"
_OFF_VALUES = frozenset({"off", "0", "false", "no", "disabled"})
_MEMO_SIZE = 8

_Stat = tuple[int, int, int, int] | None


class DistributionInfo:
    """The distribution behind an entry point: ``name``, ``version`` and its metadata dir.

    Immutable, hashable and compared by value (``name``, ``version``, ``path``).
    """

    __slots__ = ("name", "version", "path")

    name: str
    version: str
    path: str

    def __init__(self, name: str, version: str, path: str = "") -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "version", version)
        object.__setattr__(self, "path", path)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}: DistributionInfo is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}: DistributionInfo is immutable")

    def _key(self) -> tuple[str, str, str]:
        return (self.name, self.version, self.path)

    def __eq__(self, other: object) -> bool:
        if type(other) is not DistributionInfo:
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __reduce__(self) -> tuple[Any, ...]:
        return (DistributionInfo, self._key())

    def __repr__(self) -> str:
        return f"DistributionInfo(name={self.name!r}, version={self.version!r}, path={self.path!r})"

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


class EntryPoint:
    """One entry point: duck-compatible with ``importlib_metadata.EntryPoint``.

    ``name``, ``value``, ``group``, ``dist`` (a :class:`DistributionInfo` or None),
    ``module``, ``attr``, ``extras``, :meth:`load`, :meth:`matches`; immutable, equal to
    (and hashed like) any entry point with the same ``(name, value, group)``, ordered by
    it, with the same ``repr`` as importlib_metadata's.  It is deliberately not a subclass
    of ``importlib_metadata.EntryPoint``: importing importlib_metadata costs more than a
    whole warm look-up, so it is not imported unless a caller does.  Parsing ``value`` and
    the errors for a malformed one follow importlib_metadata exactly.
    """

    __slots__ = ("name", "value", "group", "dist")

    #: The entry-point value syntax: ``module[:attr[.attr...]] [extra, ...]``.
    pattern = re.compile(
        r"(?P<module>[\w.]+)\s*"
        r"(:\s*(?P<attr>[\w.]+)\s*)?"
        r"((?P<extras>\[.*\])\s*)?$"
    )

    name: str
    value: str
    group: str
    dist: DistributionInfo | None

    def __init__(
        self, name: str, value: str, group: str, dist: DistributionInfo | None = None
    ) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "group", group)
        object.__setattr__(self, "dist", dist)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("EntryPoint objects are immutable.")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("EntryPoint objects are immutable.")

    def _match(self) -> re.Match[str]:
        match = self.pattern.match(self.value)
        if not match:
            raise ValueError(
                "Invalid object reference. "
                "See https://packaging.python.org"
                "/en/latest/specifications/entry-points/#data-model",
                self.value,
            )
        return match

    @property
    def module(self) -> str:
        """The module part of ``value`` (ValueError when ``value`` is malformed)."""
        return self._match().group("module")

    @property
    def attr(self) -> str | None:
        """The attribute part of ``value``, or None when it names a module only."""
        return self._match().group("attr")

    @property
    def extras(self) -> list[str]:
        """The extras named in ``value`` (``mod:attr [a, b]`` gives ``["a", "b"]``)."""
        return re.findall(r"\w+", self._match().group("extras") or "")

    def load(self) -> Any:
        """Import the module and return the (dotted) attribute, or the module itself."""
        match = self._match()
        obj = import_module(match.group("module"))
        for part in (match.group("attr") or "").split("."):
            if part:
                obj = getattr(obj, part)
        return obj

    def matches(self, **params: Any) -> bool:
        """True when every given attribute equals the given value (``dist`` not allowed)."""
        if "dist" in params:
            raise ValueError(
                '"dist" is not suitable for matching. '
                "Instead, use Distribution.entry_points.select() on a "
                "located distribution."
            )
        return all(getattr(self, key) == value for key, value in params.items())

    def _key(self) -> tuple[str, str, str]:
        return (self.name, self.value, self.group)

    def __eq__(self, other: object) -> bool:
        key = getattr(other, "_key", None)
        if key is None:
            return NotImplemented
        return bool(self._key() == key())

    def __lt__(self, other: Any) -> bool:
        return bool(self._key() < other._key())

    def __hash__(self) -> int:
        return hash(self._key())

    def __reduce__(self) -> tuple[Any, ...]:
        return (EntryPoint, (self.name, self.value, self.group, self.dist))

    def __repr__(self) -> str:
        return f"EntryPoint(name={self.name!r}, value={self.value!r}, group={self.group!r})"


class _Index:
    """One scan of ``sys.path``: distributions, entry points and the stats proving freshness.

    ``groups`` maps a group to ``[(name, value, dist index)]``, already in the documented
    order; ``fingerprint`` is ``[(path, stat)]``: the index is fresh while every stat is
    unchanged and was settled when recorded.
    """

    __slots__ = ("dists", "groups", "fingerprint", "scanned_ns", "built")

    def __init__(
        self,
        dists: list[DistributionInfo],
        groups: dict[str, list[tuple[str, str, int]]],
        fingerprint: list[tuple[str, tuple[int, int, int, int] | None]],
        scanned_ns: int,
    ) -> None:
        self.dists = dists
        self.groups = groups
        self.fingerprint = fingerprint
        self.scanned_ns = scanned_ns
        self.built: dict[str, tuple[EntryPoint, ...]] = {}

    def entry_points(self, group: str) -> tuple[EntryPoint, ...]:
        """The entry points of ``group``; :class:`_CorruptCache` if its entries are bad.

        Entries are validated here, one group at a time, rather than when a cache file is
        read: a warm look-up then checks the ~20 entries it uses, not all ~2000.
        """
        eps = self.built.get(group)
        if eps is None:
            dists = self.dists
            n_dists = len(dists)
            built = []
            try:
                for entry in self.groups.get(group, ()):
                    name, value, idx = entry
                    if (
                        type(name) is not str
                        or type(value) is not str
                        or type(idx) is not int
                        or not 0 <= idx < n_dists
                    ):
                        raise _CorruptCache(f"bad entry {entry!r} in group {group!r}")
                    built.append(EntryPoint(name, value, group, dists[idx]))
            except (TypeError, ValueError) as err:
                raise _CorruptCache(f"bad entries in group {group!r}: {err}") from None
            eps = self.built[group] = tuple(built)
        return eps


class _CorruptCache(ValueError):
    """An index read from the disk cache holds a malformed entry."""


def _stat(path: str) -> _Stat:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _is_fresh(fingerprint: Iterable[tuple[str, _Stat]], scanned_ns: int) -> bool:
    """True when every recorded stat is unchanged and was already settled when recorded."""
    limit = scanned_ns - RACY_WINDOW_NS
    for path, recorded in fingerprint:
        current = _stat(path)
        if current != recorded:
            return False
        if current is not None and max(current[2], current[3]) > limit:
            return False
    return True


def normalize_name(name: str) -> str:
    """A distribution name in its normal form (PEP 503: runs of ``-_.`` as ``-``, lower case),
    for comparing names spelt differently (``Paste_Deploy`` = ``paste-deploy``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _read_headers(path: str) -> dict[str, str]:
    """Name and Version from a METADATA/PKG-INFO file (only the header block is read)."""
    found: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if not line.strip():
                    break
                key, sep, value = line.partition(":")
                if sep and key in ("Name", "Version") and key not in found:
                    found[key] = value.strip()
                    if len(found) == 2:
                        break
    except OSError:
        pass
    return found


def parse_entry_points_txt(text: str, source: str = "<string>") -> list[tuple[str, str, str]]:
    """Parse ``entry_points.txt`` into ``(group, name, value)`` triples, in file order.

    A malformed line (outside a ``[group]`` section, or without ``=``, or with an empty
    name or value) is skipped and logged at WARNING with the file and line number; the
    rest of the file is still used.
    """
    result: list[tuple[str, str, str]] = []
    group: str | None = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            if not line.endswith("]") or not line[1:-1].strip():
                LOG.warning(
                    "%s:%d: malformed section header %r, expected '[group.name]'; "
                    "entries up to the next valid section are ignored",
                    source,
                    lineno,
                    line,
                )
                group = None
                continue
            group = line[1:-1].strip()
            continue
        name, sep, value = line.partition("=")
        name, value = name.strip(), value.strip()
        if group is None or not sep or not name or not value:
            where = "outside any [group] section" if group is None else f"in [{group}]"
            LOG.warning(
                "%s:%d: malformed entry point %r %s, expected 'name = module:attr'; skipped",
                source,
                lineno,
                line,
                where,
            )
            continue
        result.append((group, name, value))
    return result


def _dist_dirs(location: str) -> list[str]:
    try:
        names = os.listdir(location)
    except OSError:
        return []
    return [n for n in names if n.endswith((".dist-info", ".egg-info"))]


def _scan(paths: Sequence[str]) -> _Index:
    """Build the index by reading every distribution's metadata on ``paths``."""
    scanned_ns = time.time_ns()
    fingerprint: list[tuple[str, _Stat]] = []
    dists: list[DistributionInfo] = []
    groups: dict[str, list[tuple[str, str, int, str]]] = {}
    seen: set[str] = set()
    for location in paths:
        fingerprint.append((location, _stat(location)))
        found: list[tuple[str, DistributionInfo, str]] = []
        for dirname in _dist_dirs(location):
            dist_dir = os.path.join(location, dirname)
            if not os.path.isdir(dist_dir):
                continue
            egg = dirname.endswith(".egg-info")
            meta_file = os.path.join(dist_dir, "PKG-INFO" if egg else "METADATA")
            ep_file = os.path.join(dist_dir, "entry_points.txt")
            # Stat before reading, so a concurrent edit shows up as a newer stat.  Without
            # entry_points.txt, stat the directory instead (creating the file changes it),
            # which is also cheaper than a failing stat.
            ep_stat = _stat(ep_file)
            if ep_stat is not None:
                fingerprint.append((ep_file, ep_stat))
            else:
                fingerprint.append((dist_dir, _stat(dist_dir)))
            if egg:
                fingerprint.append((meta_file, _stat(meta_file)))
            headers = _read_headers(meta_file)
            stem = dirname.rsplit(".", 1)[0]
            fallback_name, _, fallback_version = stem.partition("-")
            name = headers.get("Name") or fallback_name
            version = headers.get("Version") or fallback_version or "unknown"
            found.append((normalize_name(name), DistributionInfo(name, version, dist_dir), ep_file))
        for key, dist, ep_file in sorted(found, key=lambda item: (item[0], item[1].path)):
            if key in seen:
                continue
            seen.add(key)
            try:
                with open(ep_file, encoding="utf-8") as fh:
                    text = fh.read()
            except FileNotFoundError:
                continue
            except (OSError, UnicodeDecodeError) as err:
                LOG.warning("cannot read %s (%s); its entry points are ignored", ep_file, err)
                continue
            idx = len(dists)
            dists.append(dist)
            for group, ep_name, value in parse_entry_points_txt(text, ep_file):
                groups.setdefault(group, []).append((ep_name, value, idx, key))
    ordered: dict[str, list[tuple[str, str, int]]] = {}
    for group in sorted(groups):
        # Stable sort: sys.path order (dist index grows with it), then dist, then name.
        entries = sorted(groups[group], key=lambda e: (e[2], e[0]))
        ordered[group] = [(n, v, i) for n, v, i, _ in entries]
    return _Index(dists, ordered, fingerprint, scanned_ns)


# -- on-disk cache ---------------------------------------------------------------------


def _cache_dir() -> str | None:
    if os.environ.get(_CACHE_SWITCH_ENV, "").strip().lower() in _OFF_VALUES:
        return None
    explicit = os.environ.get(_CACHE_DIR_ENV)
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "myservice-plugins")


def _paths() -> tuple[str, ...]:
    cwd = None
    result = []
    for entry in sys.path:
        if not isinstance(entry, str):
            continue
        if not entry:
            cwd = cwd or os.getcwd()
            entry = cwd
        result.append(entry)
    return tuple(result)


def _cache_key(paths: Sequence[str]) -> str:
    """A file name for ``paths``: two CRC-32s (hashlib's import alone costs ~2 ms).

    A collision is harmless: the file records its ``sys.path`` and is only used when that
    matches; two colliding ``sys.path`` lists would merely overwrite each other's cache.
    """
    payload = json.dumps([CACHE_FORMAT, sys.version, list(paths)]).encode("utf-8")
    return f"{binascii.crc32(payload):08x}{binascii.crc32(payload[::-1]):08x}{len(payload):x}"


def _cache_file(paths: Sequence[str]) -> str | None:
    directory = _cache_dir()
    if directory is None:
        return None
    return os.path.join(directory, f"{_cache_key(paths)}.json")


def cache_path() -> Path | None:
    """The cache file used for the current ``sys.path``, or None when caching is off."""
    path = _cache_file(_paths())
    if path is None:
        return None
    from pathlib import Path

    return Path(path)


def _load_cache(path: str, paths: Sequence[str]) -> _Index | None:
    """The index stored in ``path`` if it is well-formed and for ``paths``, else None.

    Only shapes and types are checked here (a cache is written by us; a damaged one must
    be refused, not trusted); freshness is :func:`_is_fresh`'s job.
    """
    try:
        with open(path, "rb") as fh:
            data = json.loads(fh.read())
        if data.get("format") != CACHE_FORMAT or data.get("sys_path") != list(paths):
            LOG.debug("plugin cache %s is for another format or sys.path; rescanning", path)
            return None
        dists = [DistributionInfo(n, v, p) for n, v, p in data["dists"]]
        groups = data["groups"]
        # Entries are checked per group, on use (_Index.entry_points); shapes here.
        for group, entries in groups.items():
            if type(entries) is not list:
                raise ValueError(f"bad group {group!r}")
        for dist in dists:
            if not type(dist.name) is type(dist.version) is type(dist.path) is str:
                raise ValueError(f"bad distribution {dist!r}")
        fingerprint: list[tuple[str, _Stat]] = [
            (p, tuple(st) if st is not None else None) for p, st in data["fingerprint"]
        ]
        for p, st in fingerprint:
            if type(p) is not str or (st is not None and len(st) != 4):
                raise ValueError(f"bad fingerprint entry {p!r}")
        scanned_ns = data["scanned_ns"]
        if type(scanned_ns) is not int:
            raise ValueError(f"bad scanned_ns {scanned_ns!r}")
        index = _Index(dists, groups, fingerprint, scanned_ns)
    except FileNotFoundError:
        LOG.debug("no plugin cache at %s; scanning", path)
        return None
    except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError) as err:
        LOG.debug("unusable plugin cache %s (%s); scanning", path, err)
        return None
    return index


def _write_cache(path: str, paths: Sequence[str], index: _Index) -> None:
    import tempfile  # only on a miss: costs ~3 ms to import

    data: dict[str, Any] = {
        "format": CACHE_FORMAT,
        "sys_path": list(paths),
        "scanned_ns": index.scanned_ns,
        "dists": [[d.name, d.version, d.path] for d in index.dists],
        "groups": {g: [list(e) for e in entries] for g, entries in index.groups.items()},
        "fingerprint": [[p, list(s) if s is not None else None] for p, s in index.fingerprint],
    }
    directory = os.path.dirname(path)
    stem = os.path.splitext(os.path.basename(path))[0]
    tmp_name = None
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{stem}.", suffix=".tmp", dir=directory)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, separators=(",", ":"))
        os.replace(tmp_name, path)
        tmp_name = None
        LOG.debug("wrote plugin cache %s", path)
    except OSError as err:
        LOG.debug("cannot write plugin cache %s (%s); continuing without it", path, err)
    finally:
        if tmp_name is not None:
            try:
                os.unlink(tmp_name)
            except OSError:
                pass
    _prune(directory, keep=path)


def _prune(directory: str, keep: str) -> None:
    """Keep the :data:`MAX_CACHE_FILES` newest cache files (``keep`` always survives)."""
    try:
        files = []
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.name.endswith(".json") and entry.is_file():
                    files.append((entry.stat().st_mtime_ns, entry.path))
    except OSError as err:
        LOG.debug("cannot list plugin cache dir %s (%s)", directory, err)
        return
    files.sort(reverse=True)
    for _mtime, name in files[MAX_CACHE_FILES:]:
        if name == keep:
            continue
        try:
            os.unlink(name)
            LOG.debug("pruned old plugin cache %s", name)
        except OSError as err:
            LOG.debug("cannot prune plugin cache %s (%s)", name, err)


# -- the memo and the public helpers -----------------------------------------------------


class _Memo:
    """Recently used indexes, keyed by ``sys.path``; each validated before use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, ...], _Index] = {}

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def index(self, rescan: bool = False) -> _Index:
        """The index for the current ``sys.path``: memo, else disk cache, else a scan.

        ``rescan`` skips memo and disk cache (used when the cached one proved corrupt).
        """
        paths = _paths()
        if not rescan:
            with self._lock:
                cached = self._entries.get(paths)
            if cached is not None and _is_fresh(cached.fingerprint, cached.scanned_ns):
                return cached
        index = self._load(paths, use_disk=not rescan)
        with self._lock:
            self._entries.pop(paths, None)
            self._entries[paths] = index
            while len(self._entries) > _MEMO_SIZE:
                self._entries.pop(next(iter(self._entries)))
        return index

    @staticmethod
    def _load(paths: tuple[str, ...], use_disk: bool = True) -> _Index:
        path = _cache_file(paths)
        if path is not None and use_disk:
            index = _load_cache(path, paths)
            if index is not None and _is_fresh(index.fingerprint, index.scanned_ns):
                LOG.debug("plugin cache hit %s", path)
                return index
            if index is not None:
                LOG.debug("plugin cache %s is stale; rescanning", path)
        index = _scan(paths)
        # A scan containing racy entries would be rejected on read; don't write it.
        if path is not None and _is_fresh(index.fingerprint, index.scanned_ns):
            _write_cache(path, paths, index)
        return index


_MEMO = _Memo()


def clear_memo() -> None:
    """Forget the in-process index (the next look-up reads the disk cache or scans)."""
    _MEMO.clear()


def get_entry_points(namespace: str) -> list[EntryPoint]:
    """Entry points of ``namespace`` in the documented order (see the module docstring).

    Raises TypeError when ``namespace`` is not a string.
    """
    if not isinstance(namespace, str):
        raise TypeError(
            f"plugin namespace must be a string like 'myservice.storage', "
            f"got {type(namespace).__name__} {namespace!r}"
        )
    try:
        return list(_MEMO.index().entry_points(namespace))
    except _CorruptCache as err:
        LOG.debug("unusable plugin cache (%s); rescanning", err)
        return list(_MEMO.index(rescan=True).entry_points(namespace))


def namespaces() -> list[str]:
    """Every entry-point group found on ``sys.path``, sorted."""
    return sorted(_MEMO.index().groups)


def distributions() -> list[DistributionInfo]:
    """Every distribution that declares entry points, in discovery order."""
    return list(_MEMO.index().dists)
