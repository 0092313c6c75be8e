"""Run the request-path benchmarks: in-process, start-up, then over HTTP.

``.venv/bin/python benchmarks/run.py [--quick] [--only wsgi,startup,http]`` (also
``tox -e bench``).  Prints the machine line and Markdown tables for ``benchmarks/README.md``.
Never part of the test suite.  The plugin-discovery benchmark is separate
(``benchmarks/plugins_bench.py``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402
import http_bench  # noqa: E402
import startup_bench  # noqa: E402
import wsgi_bench  # noqa: E402

BENCHES = {"wsgi": wsgi_bench.main, "startup": startup_bench.main, "http": http_bench.main}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, shorter runs")
    parser.add_argument(
        "--only", default=",".join(BENCHES), help="comma-separated: " + ", ".join(BENCHES)
    )
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in BENCHES]
    if unknown:
        parser.error(
            f"--only: unknown benchmark(s) {', '.join(unknown)}; known: " + ", ".join(BENCHES)
        )
    print("Measured " + c.machine_line(c.machine()) + "\n")
    for name in chosen:
        BENCHES[name](["--quick"] if args.quick else [])
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
