"""Start-up: fresh-process wall time to ``loadapp`` the shipped ini, against ``python -c pass``.

The ini is the shipped ``etc/api-paste.ini`` copied next to a ``myservice.conf`` with
``[storage] driver = memory`` (so no database file is created or migrated).  Cases run
interleaved, ``--repeats`` times each; wall time of the whole process in ms.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402

LOADAPP = (
    "from paste.deploy import loadapp; "
    "app = loadapp('config:{ini}'); "
    "assert app.context is not None"
)
IMPORT_ONLY = "import paste.deploy, myservice.wsgi.urlmap, myservice.wsgi.app"


def run_once(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return (time.perf_counter() - started) * 1000.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="5 repeats")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats = 5
    with c.Workspace() as ws:
        cases = {
            "python -c pass": "pass",
            "import paste.deploy + myservice.wsgi (no loadapp)": IMPORT_ONLY,
            "loadapp(shipped ini), memory driver": LOADAPP.format(ini=ws.ini),
        }
        for code in cases.values():  # warm the page cache and .pyc files
            run_once(code)
        results: dict[str, list[float]] = {name: [] for name in cases}
        rng = random.Random(3)
        order = list(cases)
        for _ in range(args.repeats):
            rng.shuffle(order)
            for name in order:
                results[name].append(run_once(cases[name]))
    base = c.summary(results["python -c pass"])
    rows = []
    for name, vals in results.items():
        lo, med = c.summary(vals)
        rows.append([name, f"{lo:.1f}", f"{med:.1f}", f"{max(vals):.1f}", f"{med - base[1]:.1f}"])
    print("## Start-up (fresh process)\n")
    print(f"{args.repeats} repeats, interleaved; wall ms of the whole process.\n")
    print(c.table(["case", "min ms", "median ms", "max ms", "median minus baseline"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
