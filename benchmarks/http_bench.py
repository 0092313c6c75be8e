"""Over HTTP on loopback: requests/s of ours vs Flask vs a raw WSGI app, measured with wrk.

Servers (all on 127.0.0.1, all started at once, each in its own process, stdout/stderr on
``/dev/null``):

* waitress, ``threads=4``, same settings for ``ours`` (the copied shipped ``etc/api-paste.ini``
  with ``[storage] driver = memory`` and its logging sections, access log included), ``flask``
  and ``raw``;
* gunicorn ``-w 2`` (sync workers, ``--preload`` so both workers share the seeded user) for
  ``ours`` and ``flask``.

Loads: ``GET /v1/users/{id}`` and ``POST /v1/users`` (a unique name per request, from a wrk
Lua script), with 2 and 16 connections (``--conns``; wrk ``-t 2``, ``-t 1`` for one
connection); every request carries ``X-Auth-Token`` (only ours checks it), ``Accept:
application/json`` and ``X-Forwarded-For``.
Each run lasts ``--duration`` seconds; every repeat runs every (load, server) pair once, servers
in a shuffled order.  Needs ``wrk`` (``apt-get install -y wrk``).

Two optional measures, for machines whose timings are too noisy to compare a few percent:

* ``--spin N`` adds the reference server ``waitress/raw + spin``: the raw app behind a loop of
  ``N`` empty iterations (``_common.spin_app``), pure CPU work added to every request, to see
  what a known in-process cost turns into over HTTP.
* ``--counters`` reads the CPU's own counters with ``perf stat -C`` on the CPU the waitress
  servers are bound to, for the length of each waitress run, and prints thousands of
  instructions and cycles per request (user + kernel; everything that ran on that CPU, which
  is the server under test: the others are idle).  Needs ``perf`` (Debian's ``linux-perf``)
  with hardware counters, and pinning.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402

HERE = Path(__file__).resolve().parent
THREADS = 4

#: marks the server whose copied ini silences myservice's INFO lines (the access log)
ACCESS_LOG_OFF = "access log off"

#: label -> (server, app, extra lines for myservice.conf, or ACCESS_LOG_OFF)
SERVERS = {
    "waitress/ours": ("waitress", "ours", ""),
    "waitress/flask": ("waitress", "flask", ""),
    "waitress/raw": ("waitress", "raw", ""),
    "gunicorn/ours": ("gunicorn", "ours", ""),
    "gunicorn/flask": ("gunicorn", "flask", ""),
    # not targets: show what the audit hook (flock + write + fsync, in the background) costs
    "waitress/ours, hooks off": ("waitress", "ours", "\n[hooks]\ndisabled = audit, notify\n"),
    "gunicorn/ours, hooks off": ("gunicorn", "ours", "\n[hooks]\ndisabled = audit, notify\n"),
    # not a target: what the access-log line costs over HTTP (the peers log nothing); the
    # copied ini's [logger_myservice] level is raised to WARNING for this server only
    "waitress/ours, access log off": ("waitress", "ours", ACCESS_LOG_OFF),
}
#: the reference server added by ``--spin`` (not a peer, not a target)
SPIN_LABEL = "waitress/raw + spin"

#: hardware events read by ``--counters`` (user and kernel instructions and cycles)
EVENTS = ("instructions:u", "instructions:k", "cycles:u", "cycles:k")

LUA = """
local headers = {}
headers["X-Auth-Token"] = "%(token)s"
headers["Accept"] = "application/json"
headers["X-Forwarded-For"] = "203.0.113.7"
headers["Content-Type"] = "application/json"
local counter = 0
local threads_seen = 0
-- runs in the main Lua state; "tid" becomes a global of each thread's own state
function setup(thread)
  threads_seen = threads_seen + 1
  thread:set("tid", threads_seen)
end
function request()
%(body)s
end
"""
GET_BODY = '  return wrk.format("GET", "%(path)s", headers, nil)'
POST_BODY = """  counter = counter + 1
  local name = string.format("bench-%%s-%%d-%%d", "%(tag)s", tid or 0, counter)
  return wrk.format("POST", "/v1/users", headers,
    '{"user":{"name":"' .. name .. '","email":"b@example.com"}}')"""


class Server:
    """One server process serving one application on a free loopback port."""

    def __init__(
        self,
        label: str,
        server: str,
        kind: str,
        extra: str,
        workdir: Path,
        server_cpus: set[int] | None = None,
        spin: int = 0,
        prefix: tuple[str, ...] = (),
    ) -> None:
        """``prefix``: a command the waitress server runs under (``http_instr_bench.py``'s
        valgrind); empty: the server runs as it is."""
        self.label = label
        self.kind = kind
        self.port = c.free_port()
        self.workdir = workdir / label.replace("/", "-").replace(", ", "-").replace(" ", "-")
        self.workdir.mkdir()
        for name in ("api-paste.ini", "myservice.conf"):
            shutil.copyfile(workdir / name, self.workdir / name)
        shutil.copytree(workdir / "state", self.workdir / "state")
        if extra == ACCESS_LOG_OFF:
            ini = self.workdir / "api-paste.ini"
            text = ini.read_text(encoding="utf-8")
            silenced = text.replace(
                "[logger_myservice]\nlevel = INFO", "[logger_myservice]\nlevel = WARNING"
            )
            if silenced == text:
                raise SystemExit("access log off: no [logger_myservice] level = INFO in the ini")
            ini.write_text(silenced, encoding="utf-8")
        elif extra:
            with open(self.workdir / "myservice.conf", "a", encoding="utf-8") as conf:
                conf.write(extra)
        env = dict(os.environ, **{c.WORKSPACE_ENV: str(self.workdir), c.SPIN_ENV: str(spin)})
        self.cpus = server_cpus if server == "waitress" else None
        if server == "waitress":
            cmd = [
                *prefix,
                sys.executable,
                str(HERE / "_serve.py"),
                kind,
                str(self.port),
                str(THREADS),
            ]
        else:
            cmd = [
                str(c.VENV_BIN / "gunicorn"),
                "-w",
                "2",
                "--preload",
                "-b",
                f"127.0.0.1:{self.port}",
                "--chdir",
                str(HERE),
                f"_common:server_app('{kind}')",
            ]
        self.proc = subprocess.Popen(
            cmd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_pinner(self.cpus),
        )
        self.user_id = ""

    def wait(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        id_file = self.workdir / f"{self.kind}.id"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.label}: server exited with {self.proc.returncode}")
            if id_file.exists():
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                        self.user_id = id_file.read_text(encoding="utf-8").strip()
                        return
                except OSError:
                    pass
            time.sleep(0.1)
        raise SystemExit(f"{self.label}: not listening after {timeout} s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _pinner(cpus: set[int] | None) -> Any:
    """A ``preexec_fn`` binding the child (and every thread it starts) to ``cpus``."""
    if not cpus:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def split_cpus() -> tuple[set[int], set[int]] | None:
    """(CPUs for the waitress servers, CPUs for wrk): the first CPU this process may use,
    and the others; None on a single-CPU machine or without ``sched_setaffinity``."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    return {cpus[0]}, set(cpus[1:])


class Counters:
    """``perf stat -C CPUS`` running around one wrk run: :meth:`stop` returns the totals of
    :data:`EVENTS` counted on those CPUs since the start."""

    def __init__(self, cpus: set[int]) -> None:
        self._out = tempfile.NamedTemporaryFile("r", suffix=".perf", delete=False)  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                "perf",
                "stat",
                "-C",
                ",".join(map(str, sorted(cpus))),
                "-x",
                ",",
                "-e",
                ",".join(EVENTS),
                "-o",
                self._out.name,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> dict[str, int]:
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(10)
        try:
            return parse_perf_csv(Path(self._out.name).read_text(encoding="utf-8"))
        finally:
            self._out.close()
            os.unlink(self._out.name)


def parse_perf_csv(text: str) -> dict[str, int]:
    """``{event: count}`` from ``perf stat -x ,`` output; events perf could not count are
    left out."""
    counts = {}
    for line in text.splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[0].isdigit():
            counts[fields[2]] = int(fields[0])
    return counts


def counters_work(cpus: set[int]) -> bool:
    """Whether ``perf stat -C`` counts every one of :data:`EVENTS` on ``cpus`` here."""
    if shutil.which("perf") is None:
        return False
    probe = Counters(cpus)
    time.sleep(0.2)
    return set(probe.stop()) == set(EVENTS)


_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_NON2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_TOTAL = re.compile(r"(\d+) requests in")
_ERRORS = re.compile(r"Socket errors: (.*)")


def run_wrk(
    server: Server,
    load: str,
    conns: int,
    seconds: int,
    token: str,
    tag: str,
    cpus: set[int] | None = None,
) -> tuple[float, int]:
    """(requests/s, requests) of one wrk run; refuses a run with non-2xx answers or socket
    errors."""
    if load == "GET":
        body = GET_BODY % {"path": f"/v1/users/{server.user_id}"}
    else:
        body = POST_BODY % {"tag": tag}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA % {"token": token, "body": body})
    try:
        out = subprocess.run(
            [
                "wrk",
                "-t",
                str(min(2, conns)),
                "-c",
                str(conns),
                "-d",
                f"{seconds}s",
                "--timeout",
                "5s",
                "-s",
                script.name,
                f"http://127.0.0.1:{server.port}",
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 30,
            preexec_fn=_pinner(cpus),
        )
        if out.returncode != 0:
            raise SystemExit(f"wrk failed on {server.label}: {out.stderr or out.stdout}")
        out = out.stdout
    finally:
        os.unlink(script.name)
    bad = _NON2XX.search(out)
    if bad:
        raise SystemExit(f"{server.label} {load} c={conns}: {bad.group(1)} non-2xx answers:\n{out}")
    errors = _ERRORS.search(out)
    if errors:
        # sync gunicorn workers close every connection: count only errors other than these
        print(f"note: {server.label} {load} c={conns}: socket errors {errors.group(1)}")
    return float(_RPS.search(out).group(1)), int(_TOTAL.search(out).group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--duration", type=int, default=3, help="seconds per run (integer)")
    parser.add_argument("--quick", action="store_true", help="1 repeat of 2 s runs")
    parser.add_argument(
        "--load",
        choices=("GET", "POST"),
        action="append",
        help="run only this load (repeatable; default: GET and POST)",
    )
    parser.add_argument(
        "--conns",
        type=int,
        nargs="+",
        default=[2, 16],
        metavar="C",
        help="connection counts to run (default: 2 16; with 1, wrk runs one thread)",
    )
    parser.add_argument(
        "--spin",
        type=int,
        default=0,
        metavar="N",
        help="add the reference server 'waitress/raw + spin' (raw app behind N empty loop "
        "iterations)",
    )
    parser.add_argument(
        "--counters",
        action="store_true",
        help="also report instructions and cycles per request of the waitress servers "
        "(perf stat on their CPU; needs perf and pinning)",
    )
    parser.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        help="do not bind the waitress servers to one CPU and wrk to the others",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.duration = 1, 2
    if min(args.conns) < 1:
        parser.error(f"--conns: connection counts must be >= 1, got {args.conns}")
    if shutil.which("wrk") is None:
        raise SystemExit("http_bench needs wrk: apt-get install -y wrk")
    wanted = args.load or ["GET", "POST"]
    loads = [(load, conns) for load in ("GET", "POST") if load in wanted for conns in args.conns]
    results: dict[tuple[str, str, int], list[float]] = {}
    split = split_cpus() if args.pin else None
    server_cpus, client_cpus = split or (None, None)
    if args.counters and not (server_cpus and counters_work(server_cpus)):
        raise SystemExit(
            "--counters needs pinning and perf stat with hardware counters "
            "(apt-get install -y linux-perf; try: perf stat -e instructions:u true)"
        )
    specs = dict(SERVERS)
    if args.spin > 0:
        specs[SPIN_LABEL] = ("waitress", "spin", "")
    counts: dict[tuple[str, str, int], list[dict[str, float]]] = {}
    with c.Workspace() as ws:
        servers = [
            Server(label, *spec, ws.dir, server_cpus, args.spin) for label, spec in specs.items()
        ]
        try:
            for server in servers:
                server.wait()
            for server in servers:  # warm up
                run_wrk(server, "GET", 2, 1, ws.token, "warm", client_cpus)
            rng = random.Random(7)
            for rep in range(args.repeats):
                for load, conns in loads:
                    order = list(servers)
                    rng.shuffle(order)
                    for server in order:
                        counting = args.counters and server.cpus
                        counter = Counters(server.cpus) if counting else None
                        rps, total = run_wrk(
                            server,
                            load,
                            conns,
                            args.duration,
                            ws.token,
                            f"r{rep}c{conns}",
                            client_cpus,
                        )
                        key = (server.label, load, conns)
                        results.setdefault(key, []).append(rps)
                        if counter is not None:
                            got = counter.stop()
                            if set(got) != set(EVENTS):
                                print(f"note: {key}: perf counted only {sorted(got)}; run left out")
                                continue
                            counts.setdefault(key, []).append(
                                {e: n / total for e, n in got.items()}
                            )
        finally:
            for server in servers:
                server.stop()
    print("## Over HTTP (wrk, loopback)\n")
    print(
        f"{args.repeats} repeats x {args.duration:g} s per run, wrk -t 2 (-t 1 for c=1); "
        "requests/s (higher is better); waitress threads=4 for every app, gunicorn -w 2 sync "
        "workers.\n"
    )
    if split:
        print(
            f"Pinned: every waitress server to CPU {sorted(server_cpus)}, wrk to CPUs "
            f"{sorted(client_cpus)}; gunicorn unpinned (its two workers use every CPU).\n"
        )
    else:
        print("Not pinned: servers and wrk share every CPU.\n")
    rows = []
    for load, conns in loads:
        for label in specs:
            vals = results[(label, load, conns)]
            lo, med = c.summary(vals)
            hi = max(vals)
            rows.append([f"{load} c={conns} {label}", f"{lo:.0f}", f"{med:.0f}", f"{hi:.0f}"])
    print(c.table(["load, server/app", "min req/s", "median req/s", "max req/s"], rows))
    print()
    for load, conns in loads:
        med = {label: c.summary(results[(label, load, conns)])[1] for label in SERVERS}
        r_flask = med["waitress/ours"] / med["waitress/flask"]
        r_raw = med["waitress/ours"] / med["waitress/raw"]
        r_gun = med["gunicorn/ours"] / med["gunicorn/flask"]
        verdict = {
            "flask": f" (target >= 1.2: {'met' if r_flask >= 1.2 else 'MISSED'})",
            "raw": f" (target >= 0.85: {'met' if r_raw >= 0.85 else 'MISSED'})",
        }
        get = load == "GET" and conns in (2, 16)  # the loads the targets name
        print(
            f"- {load} c={conns}: waitress ours/flask **{r_flask:.2f}**"
            + (verdict["flask"] if get else "")
            + f", ours/raw **{r_raw:.2f}**"
            + (verdict["raw"] if get else "")
            + f"; gunicorn ours/flask **{r_gun:.2f}** (target >= 1.0: "
            + f"{'met' if r_gun >= 1.0 else 'MISSED'})"
        )
    if counts:
        print_counters(counts, loads, specs)
    return 0


def print_counters(
    counts: dict[tuple[str, str, int], list[dict[str, float]]],
    loads: list[tuple[str, int]],
    specs: dict[str, Any],
) -> None:
    """The ``--counters`` table: medians over the repeats, per request, user + kernel."""
    print("\n### CPU counters of the waitress CPU (perf stat -C), per request\n")
    rows = []
    for load, conns in loads:
        for label in specs:
            runs = counts.get((label, load, conns))
            if not runs:
                continue
            instr = c.summary([r["instructions:u"] + r["instructions:k"] for r in runs])[1]
            user = c.summary([r["instructions:u"] for r in runs])[1]
            cycles = c.summary([r["cycles:u"] + r["cycles:k"] for r in runs])[1]
            rows.append(
                [
                    f"{load} c={conns} {label}",
                    f"{instr / 1000:.0f}",
                    f"{user / 1000:.0f}",
                    f"{cycles / 1000:.0f}",
                    f"{instr / cycles:.2f}",
                ]
            )
    print(
        c.table(
            [
                "load, server/app",
                "k instr (u+k)",
                "k instr (user)",
                "k cycles (u+k)",
                "instr/cycle",
            ],
            rows,
        )
    )
    print()
    for load, conns in loads:
        med = {
            label: c.summary(
                [r["cycles:u"] + r["cycles:k"] for r in counts.get((label, load, conns), [])]
            )[1]
            for label in ("waitress/raw", "waitress/ours", SPIN_LABEL)
            if counts.get((label, load, conns))
        }
        if "waitress/raw" not in med or "waitress/ours" not in med:
            continue
        ratio = med["waitress/raw"] / med["waitress/ours"]
        line = f"- {load} c={conns}: cycles raw/ours **{ratio:.2f}**"
        if SPIN_LABEL in med:
            line += f", raw/(raw + spin) {med['waitress/raw'] / med[SPIN_LABEL]:.2f}"
        print(line)


if __name__ == "__main__":
    sys.exit(main())
