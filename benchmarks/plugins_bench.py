"""Plugin discovery: myservice.plugins against stevedore, side by side.

Run (never part of pytest; needs the ``bench`` extra, i.e. stevedore)::

    .venv/bin/python benchmarks/plugins_bench.py [--dists 300] [--repeats 15]

What it measures, in one run, interleaved (every repeat runs every case once, in a
shuffled order), reporting min and median:

* fresh-process wall time of ``python -c pass`` (the baseline);
* fresh-process wall time to build a ``DriverManager`` for one name and an
  ``ExtensionManager`` for a whole namespace, with each library's on-disk cache cold
  (an empty cache directory per run) and warm (a cache written beforehand);
* in-process warm discovery: one ``get_entry_points(namespace)`` call of ours against
  stevedore's equivalent (``stevedore._cache.get_group_all``), after a first call.

To make discovery costly, ``--dists`` tiny fake distributions (``*.dist-info`` with
METADATA and entry_points.txt) are generated into a temporary directory put on
``PYTHONPATH``.  Each registers ``d<N>`` in ``bench.drivers`` and entry points in
other groups; every 15th also registers ``e<N>`` in ``bench.extensions``.  All point at
one small module, so plugin import cost is the same for both libraries.

Targets: warm <= 0.4x stevedore warm, cold <= 0.7x stevedore cold (fresh process, judged
on medians with the ``python -c pass`` baseline subtracted; the same ratio on minima is
shown too, as medians are noise on a busy machine), in-process warm discovery < 1 ms.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import py_compile
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

DRIVER_NAMESPACE = "bench.drivers"
EXT_NAMESPACE = "bench.extensions"
RACY_WAIT_S = 2.5  # discovery will not cache a directory modified in the last 2 s

MODULE = '''\
class Driver:
    """A driver plugin."""


class Ext:
    """An extension plugin."""
'''

SNIPPETS = {
    "baseline": "pass",
    # import only: how much of a fresh-process run is the library's import time
    "ours.import": "import myservice.plugins.driver, myservice.plugins.extension",
    "stevedore.import": "import stevedore.driver, stevedore.extension",
    "ours.driver": (
        "from myservice.plugins.driver import DriverManager as M\n"
        "M('{drv}', '{name}', invoke_on_load=True)"
    ),
    "stevedore.driver": (
        "from stevedore.driver import DriverManager as M\nM('{drv}', '{name}', invoke_on_load=True)"
    ),
    "ours.extensions": (
        "from myservice.plugins.extension import ExtensionManager as M\n"
        "m = M('{ext}', invoke_on_load=True)\nassert len(m.extensions) == {n_ext}, m.names()"
    ),
    "stevedore.extensions": (
        "from stevedore.extension import ExtensionManager as M\n"
        "m = M('{ext}', invoke_on_load=True)\nassert len(m.extensions) == {n_ext}, m.names()"
    ),
}


def make_site(root: Path, count: int) -> tuple[int, str]:
    """Write ``count`` fake distributions and their module; return (#extensions, a driver)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "benchplugin_mod.py").write_text(MODULE)
    # Compile now: a __pycache__ appearing at the first import would modify the directory
    # (a sys.path entry) during the measurements and invalidate the warm caches.
    py_compile.compile(str(root / "benchplugin_mod.py"), doraise=True)
    n_ext = 0
    for i in range(count):
        info = root / f"benchdist{i:04d}-1.{i}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: benchdist{i:04d}\nVersion: 1.{i}\n"
            f"Summary: fake distribution {i} for the plugin benchmark\n"
        )
        lines = [
            "[console_scripts]",
            f"benchdist{i:04d} = benchplugin_mod:main",
            "",
            f"[{DRIVER_NAMESPACE}]",
            f"d{i} = benchplugin_mod:Driver",
            "",
            f"[bench.group{i % 10}]",
            f"a{i} = benchplugin_mod:Ext",
            f"b{i} = benchplugin_mod:Ext",
            "",
        ]
        if i % 15 == 0:
            lines += [f"[{EXT_NAMESPACE}]", f"e{i} = benchplugin_mod:Ext", ""]
            n_ext += 1
        (info / "entry_points.txt").write_text("\n".join(lines))
        (info / "RECORD").write_text("")
    return n_ext, f"d{count // 2}"


class Runner:
    """Runs snippets in fresh processes with the fake site on PYTHONPATH."""

    def __init__(self, python: str, site: Path, scratch: Path) -> None:
        self.python = python
        self.site = site
        self.scratch = scratch
        self.warm_ours = scratch / "warm-ours"
        self.warm_stevedore = scratch / "warm-xdg"
        # The current directory is on sys.path (``python -c``): it must be one that no
        # run modifies, or discovery would see a just-modified sys.path entry and, rightly,
        # refuse to trust (and write) its cache.
        self.cwd = scratch / "cwd"
        self.cwd.mkdir()
        self.cold_root = scratch / "cold"
        self._cold = 0

    def env(self, cache: str) -> dict[str, str]:
        """Environment for one run; ``cache`` is "cold" or "warm"."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        env["PYTHONPATH"] = str(self.site)
        if cache == "cold":
            self._cold += 1
            fresh = self.cold_root / str(self._cold)
            env["MYSERVICE_PLUGIN_CACHE_DIR"] = str(fresh / "ours")
            env["XDG_CACHE_HOME"] = str(fresh / "xdg")
        else:
            env["MYSERVICE_PLUGIN_CACHE_DIR"] = str(self.warm_ours)
            env["XDG_CACHE_HOME"] = str(self.warm_stevedore)
        return env

    def time_once(self, code: str, cache: str) -> float:
        env = self.env(cache)
        start = time.perf_counter()
        proc = subprocess.run(
            [self.python, "-c", code], env=env, cwd=self.cwd, capture_output=True, text=True
        )
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"benchmark snippet failed:\n{code}\n{proc.stderr}")
        return elapsed


def in_process(site: Path, scratch: Path, loops: int) -> dict[str, list[float]]:
    """Per-call seconds of warm in-process discovery, ours and stevedore's."""
    sys.path.insert(0, str(site))
    os.environ["MYSERVICE_PLUGIN_CACHE_DIR"] = str(scratch / "warm-ours")
    os.environ["XDG_CACHE_HOME"] = str(scratch / "warm-xdg")
    from stevedore import _cache as stevedore_cache  # private, but it is their discovery

    from myservice.plugins import discovery

    calls: dict[str, Callable[[], object]] = {
        "ours": lambda: discovery.get_entry_points(EXT_NAMESPACE),
        "stevedore": lambda: list(stevedore_cache.get_group_all(EXT_NAMESPACE)),
    }
    results: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():
        call()  # warm up: read the disk cache / build the memo
    # Discovery distrusts (and re-scans) a sys.path entry modified in the last 2 s; another
    # process installing packages meanwhile would make every call a scan.  Let it settle.
    time.sleep(RACY_WAIT_S)
    for call in calls.values():
        call()
    for _ in range(loops):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            results[name].append(time.perf_counter() - start)
    return results


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dists", type=int, default=300, help="fake distributions (300)")
    parser.add_argument("--repeats", type=int, default=15, help="runs of every case (15)")
    parser.add_argument("--loops", type=int, default=2000, help="in-process calls (2000)")
    parser.add_argument("--python", default=sys.executable, help="interpreter to benchmark")
    args = parser.parse_args(argv)
    try:
        import stevedore  # noqa: F401
    except ImportError:
        print("stevedore is not installed: pip install -e '.[bench]'", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="plugins-bench-") as tmp:
        scratch = Path(tmp)
        site = scratch / "site"
        n_ext, driver_name = make_site(site, args.dists)
        fields = {"drv": DRIVER_NAMESPACE, "name": driver_name, "ext": EXT_NAMESPACE}
        fields["n_ext"] = str(n_ext)
        runner = Runner(args.python, site, scratch)
        runner.cold_root.mkdir()
        # Let the new directories age past discovery's "racy" window, then warm both caches.
        time.sleep(RACY_WAIT_S)
        for key in ("ours.driver", "stevedore.driver", "ours.extensions", "stevedore.extensions"):
            runner.time_once(SNIPPETS[key].format(**fields), "warm")
        if not any(runner.warm_ours.glob("*.json")):
            print("error: myservice.plugins wrote no warm cache", file=sys.stderr)
            return 1

        cases = [("baseline", "warm"), ("ours.import", "warm"), ("stevedore.import", "warm")]
        cases += [
            (key, cache)
            for key in SNIPPETS
            if key.endswith((".driver", ".extensions"))
            for cache in ("cold", "warm")
        ]
        samples: dict[tuple[str, str], list[float]] = {case: [] for case in cases}
        rng = random.Random(42)
        for _ in range(args.repeats):
            order = list(cases)
            rng.shuffle(order)
            for key, cache in order:
                samples[(key, cache)].append(
                    runner.time_once(SNIPPETS[key].format(**fields), cache)
                )
        inproc = in_process(site, scratch, args.loops)

    base = statistics.median(samples[("baseline", "warm")])
    print(
        f"plugin discovery benchmark, {datetime.date.today().isoformat()}, "
        f"{platform.machine()}, nproc {os.cpu_count()}, Python {platform.python_version()}, "
        f"{args.dists} fake distributions, {args.repeats} repeats"
    )
    base_min = min(samples[("baseline", "warm")])
    print(
        f"fresh process, ms; baseline `python -c pass`: "
        f"min {base_min * 1000:.1f}, median {base * 1000:.1f}"
    )
    header = (
        "| case | ours min | ours median | stevedore min | stevedore median "
        "| ratio (median) | ratio minus baseline (median) | ratio minus baseline (min) | target |"
    )
    print()
    print(header)
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    ours_imp, theirs_imp = samples[("ours.import", "warm")], samples[("stevedore.import", "warm")]
    oim, tim = statistics.median(ours_imp), statistics.median(theirs_imp)
    print(
        f"| import only (no discovery) | {fmt_ms(min(ours_imp))} | {fmt_ms(oim)} "
        f"| {fmt_ms(min(theirs_imp))} | {fmt_ms(tim)} | {oim / tim:.2f} "
        f"| {(oim - base) / (tim - base):.2f} "
        f"| {(min(ours_imp) - base_min) / (min(theirs_imp) - base_min):.2f} | |"
    )
    verdicts = []
    for what in ("driver", "extensions"):
        for cache in ("cold", "warm"):
            ours = samples[(f"ours.{what}", cache)]
            theirs = samples[(f"stevedore.{what}", cache)]
            om, tm = statistics.median(ours), statistics.median(theirs)
            ratio = om / tm
            adjusted = (om - base) / (tm - base) if tm > base else float("nan")
            target = 0.7 if cache == "cold" else 0.4
            adjusted_min = (min(ours) - base_min) / (min(theirs) - base_min)
            ok = adjusted <= target
            verdicts.append((f"{what} {cache}", adjusted, target, ok))
            print(
                f"| {what}, cache {cache} | {fmt_ms(min(ours))} | {fmt_ms(om)} "
                f"| {fmt_ms(min(theirs))} | {fmt_ms(tm)} | {ratio:.2f} | {adjusted:.2f} "
                f"| {adjusted_min:.2f} "
                f"| <= {target} {'met' if ok else 'MISSED'} |"
            )
    print()
    print("beyond the import (median of the warm case minus median of import only), ms:")
    for what in ("driver", "extensions"):
        o = statistics.median(samples[(f"ours.{what}", "warm")]) - oim
        t = statistics.median(samples[(f"stevedore.{what}", "warm")]) - tim
        print(f"  {what}: ours {o * 1000:.1f}, stevedore {t * 1000:.1f}")
    ours_us = statistics.median(inproc["ours"]) * 1e6
    theirs_us = statistics.median(inproc["stevedore"]) * 1e6
    print()
    print("| in-process warm discovery, one namespace | min µs | median µs | target |")
    print("|---|---:|---:|---|")
    print(
        f"| myservice.plugins `get_entry_points` | {min(inproc['ours']) * 1e6:.1f} "
        f"| {ours_us:.1f} | < 1000 {'met' if ours_us < 1000 else 'MISSED'} |"
    )
    print(
        f"| stevedore `_cache.get_group_all` | {min(inproc['stevedore']) * 1e6:.1f} "
        f"| {theirs_us:.1f} | |"
    )
    missed = [v for v in verdicts if not v[3]]
    if ours_us >= 1000:
        missed.append(("in-process warm", ours_us / 1000, 1.0, False))
    print()
    if missed:
        for name, value, target, _ in missed:
            print(f"MISSED {name}: {value:.2f} against a target of {target}")
    else:
        print("all targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
