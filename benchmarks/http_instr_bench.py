"""Instructions per request over HTTP, counted by callgrind: ``http_bench.py``'s waitress
servers, each run under ``valgrind --tool=callgrind``, driven by wrk.

The instrument for machines whose ``perf stat`` has no hardware counters (``perf stat -e
instructions:u true`` prints ``<not supported>``), where ``http_bench.py --counters`` cannot
run and timings are too noisy to compare a few percent.  For each measured wrk run the server's
counters are zeroed (``callgrind_control -z``) before it and dumped (``callgrind_control -d``)
after it; instructions per request = the dump's total / the requests wrk completed.  The count
is of everything the server process ran in user space, on every thread (waitress's main loop
and workers, the access log's and the log writer's threads), kernel excluded.  Runs start with
``PYTHONHASHSEED=0``.

What it does not show: valgrind runs one thread at a time and about 50 times slower, so the
costs of concurrency on real CPUs (GIL hand-offs, cache misses, threads waking one another) are
not in these counts, and the requests/s wrk reports are meaningless (not printed).  The
targets are judged by ``http_bench.py``'s requests/s; these counts say where the instructions
go.  With one connection they agree with ``perf stat``'s user instructions: the raw app costs
453k per request here with a wrk script that sends no ``Content-Type`` (round 9), as round 8's
perf count with its own such script; with the benchmark's script (``Content-Type`` on every
request; ≈ 23k per request in waitress's header handling) 475k.

Needs valgrind (``apt-get install -y valgrind``) and wrk.  Run (a minute to start the servers,
then ``--duration`` plus a few seconds per server, connection count and repeat):
``.venv/bin/python benchmarks/http_instr_bench.py [--conns 1 16] [--duration 20]``.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402
import http_bench as h  # noqa: E402

#: the waitress servers of http_bench this measures (gunicorn forks workers: left out)
LABELS = ("waitress/ours", "waitress/raw", "waitress/flask", "waitress/ours, access log off")

_TOTAL_LINE = re.compile(r"^(?:summary|totals): (\d+)", re.MULTILINE)
#: valgrind under load can take minutes to start a Python server
START_TIMEOUT = 600.0


class Callgrind:
    """The callgrind side of one server: zero its counters, dump them, read the dump."""

    def __init__(self, pid: int, out_dir: Path) -> None:
        self.pid = pid
        self._dumps = f"callgrind.{pid}.out."
        self._out_dir = out_dir

    def _control(self, option: str) -> None:
        subprocess.run(
            ["callgrind_control", option, str(self.pid)],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def zero(self) -> None:
        self._control("-z")

    def dump_total(self) -> int:
        """Dump the counters and return the instructions counted since the last :meth:`zero`."""
        before = self._dump_numbers()
        self._control("-d")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            new = self._dump_numbers() - before
            if new:
                text = (self._out_dir / f"{self._dumps}{max(new)}").read_text(encoding="utf-8")
                found = _TOTAL_LINE.search(text)
                if found:
                    return int(found.group(1))
            time.sleep(0.2)
        raise SystemExit(f"callgrind wrote no dump for pid {self.pid} within 60 s")

    def _dump_numbers(self) -> set[int]:
        """The N of every ``callgrind.PID.out.N`` written so far."""
        suffixes = (p.suffix[1:] for p in self._out_dir.glob(self._dumps + "*"))
        return {int(n) for n in suffixes if n.isdigit()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--duration", type=int, default=20, help="seconds per run (integer)")
    parser.add_argument(
        "--conns", type=int, nargs="+", default=[1, 16], metavar="C", help="default: 1 16"
    )
    parser.add_argument(
        "--server",
        choices=LABELS,
        action="append",
        help="measure only this server (repeatable; default: all four)",
    )
    args = parser.parse_args(argv)
    if min(args.conns) < 1:
        parser.error(f"--conns: connection counts must be >= 1, got {args.conns}")
    if args.duration < 1 or args.repeats < 1:
        parser.error("--duration and --repeats must be >= 1")
    needed = {"valgrind": "valgrind", "callgrind_control": "valgrind", "wrk": "wrk"}
    for tool, package in needed.items():
        if shutil.which(tool) is None:
            raise SystemExit(f"http_instr_bench needs {tool}: apt-get install -y {package}")
    labels = args.server or list(LABELS)
    split = h.split_cpus()
    server_cpus, client_cpus = split or (None, None)
    os.environ["PYTHONHASHSEED"] = "0"
    counts: dict[tuple[str, int], list[float]] = {}
    with c.Workspace() as ws, tempfile.TemporaryDirectory(prefix="callgrind-") as out:
        out_dir = Path(out)
        prefix = (
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out_dir}/callgrind.%p.out",
        )
        servers = [
            h.Server(label, *h.SERVERS[label], ws.dir, server_cpus, 0, prefix) for label in labels
        ]
        try:
            for server in servers:
                server.wait(START_TIMEOUT)
            for server in servers:  # warm up: Python's caches, waitress's buffers
                h.run_wrk(server, "GET", 2, 5, ws.token, "warm", client_cpus)
            rng = random.Random(7)
            for _ in range(args.repeats):
                for conns in args.conns:
                    order = list(servers)
                    rng.shuffle(order)
                    for server in order:
                        grind = Callgrind(server.proc.pid, out_dir)
                        grind.zero()
                        _, requests = h.run_wrk(
                            server, "GET", conns, args.duration, ws.token, "", client_cpus
                        )
                        total = grind.dump_total()
                        counts.setdefault((server.label, conns), []).append(total / requests)
        finally:
            for server in servers:
                server.stop()
    print_table(counts, args, labels, split is not None)
    return 0


def print_table(
    counts: dict[tuple[str, int], list[float]],
    args: argparse.Namespace,
    labels: list[str],
    pinned: bool,
) -> None:
    print("## Instructions per request over HTTP (callgrind)\n")
    print(
        f"GET /v1/users/{{id}}; {args.repeats} repeat(s) x {args.duration} s per run; waitress "
        f"threads={h.THREADS} under valgrind"
        + (", pinned to one CPU, wrk on the others" if pinned else "")
        + "; thousands of user-space instructions per request, the whole server process.\n"
    )
    rows = []
    for conns in args.conns:
        raw = counts.get(("waitress/raw", conns))
        for label in labels:
            runs = counts[(label, conns)]
            lo, med = c.summary(runs)
            ratio = f"{c.summary(raw)[1] / med:.2f}" if raw else ""
            rows.append([f"GET c={conns} {label}", f"{lo / 1000:.1f}", f"{med / 1000:.1f}", ratio])
    print(c.table(["load, server/app", "min k instr", "median k instr", "raw / this"], rows))
    print(
        "\n'raw / this': the raw app's median count over this server's; the target "
        "(>= 0.85x raw in requests/s) would need about 0.85 here with no cost of concurrency."
    )


if __name__ == "__main__":
    sys.exit(main())
