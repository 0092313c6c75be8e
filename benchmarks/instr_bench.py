"""Instructions per request, counted by valgrind's callgrind: a measure that shared, noisy
machines do not disturb.

``GET /v1/users/{id}`` as in ``wsgi_bench.py``: (a) the raw WSGI app, (e) our whole shipped
``/v1`` pipeline, and (e) entered at each of its layers (each layer called directly with the
environ it receives in a real request, so a layer's own count is the difference between
entering at it and entering at the next one).  Each case runs in a fresh process under
``valgrind --tool=callgrind`` twice, with ``--small`` and ``--large`` requests after the same
warm-up; instructions per request = (total of the large run - total of the small run) /
(large - small), so start-up cancels out.  ``PYTHONHASHSEED=0``, and the access log's lines
are logged on the calling thread at the end of the loop (as ``wsgi_bench.py``'s
``Caller.settle`` does) instead of by its thread, so every count is repeatable (to about
0.5%).  Counts are instructions, not time: they leave out cache misses and system calls, which
is why ``wsgi_bench.py`` and ``http_bench.py`` remain the measures the targets are judged by.
Needs valgrind (``apt-get install -y valgrind``).  Run:
``.venv/bin/python benchmarks/instr_bench.py``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402

_TOTALS = re.compile(r"^totals: (\d+)", re.MULTILINE)


def layers(app: Any) -> list[Any]:
    """The WSGI callables a ``GET /v1/...`` passes through, outermost first."""
    found = [app]
    node = dict(app._prefixes)["/v1"]
    while node is not None:
        found.append(node)
        node = getattr(node, "app", None)
    return found


def _child(case: str, depth: int, count: int) -> None:
    """Run ``count`` requests of one case after a warm-up (inside valgrind)."""
    from myservice.middleware.access_log import AccessLog

    with c.Workspace() as ws:
        c.apply_shipped_logging(ws.ini)
        full = c.ours_full(ws)
        user_id = c.seed(full.context.storage)
        environ = c.make_environ(f"/v1/users/{user_id}", ws.token)
        if case == "a":
            target = c.raw_app(c.Lookup(full.context.storage))
        else:
            chain = layers(full)
            for layer in chain:
                if isinstance(layer, AccessLog) and layer.queue is not None:
                    layer.queue.interval = 1e9  # its thread sleeps; settle() logs the lines
            target = chain[depth]
            if depth:
                environ = _environ_at(full, chain, depth, environ)
        caller = c.Caller(target, environ)
        caller.settle = c.background_work(target)
        status, _body = caller.once()
        if not (status or "").startswith("200"):
            raise SystemExit(f"case {case} depth {depth}: answered {status}")
        caller.loop(300)
        caller.settle()
        caller.loop(count)
        caller.settle()


def _environ_at(full: Any, chain: list[Any], depth: int, environ: dict) -> dict:
    """The environ ``chain[depth]`` receives when ``full`` serves ``environ``."""
    seen: dict[str, Any] = {}
    parent, inner = chain[depth - 1], chain[depth]

    def spy(env: dict, start_response: Any) -> Any:
        seen.update(env)
        return inner(env, start_response)

    if depth == 1:
        saved = parent._prefixes
        parent._prefixes = [(p, spy if a is inner else a) for p, a in saved]
    else:
        saved = parent.app
        parent.app = spy
    try:
        c.Caller(full, environ).once()
    finally:
        if depth == 1:
            parent._prefixes = saved
        else:
            parent.app = saved
    seen.pop("wsgi.input", None)
    return seen


def count_instructions(case: str, depth: int, requests: int, workdir: Path) -> int:
    """Total instructions of one child run under callgrind (every thread)."""
    out = workdir / f"cg-{case}-{depth}-{requests}"
    env = dict(os.environ, PYTHONHASHSEED="0")
    cmd = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}.%p",
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        f"{case}:{depth}:{requests}",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"callgrind run {case}:{depth} failed:\n{proc.stderr[-2000:]}")
    total = 0
    for path in workdir.glob(f"{out.name}.*"):  # one file per process (threads merged)
        total += sum(int(n) for n in _TOTALS.findall(path.read_text(errors="replace")))
    return total


def per_request(case: str, depth: int, small: int, large: int, workdir: Path) -> float:
    low = count_instructions(case, depth, small, workdir)
    high = count_instructions(case, depth, large, workdir)
    return (high - low) / (large - small)


def _measure_all(depths: int, small: int, large: int, workdir: Path) -> list[float]:
    """[raw, pipeline entered at depth 0, 1, ...]; the runs go in parallel, one per CPU
    (counts do not depend on timing)."""
    jobs = [("a", 0)] + [("e", depth) for depth in range(depths)]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        futures = [pool.submit(per_request, case, d, small, large, workdir) for case, d in jobs]
        return [future.result() for future in futures]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--large", type=int, default=2200)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        case, depth, count = args.child.split(":")
        _child(case, int(depth), int(count))
        return 0
    if shutil.which("valgrind") is None:
        raise SystemExit("instr_bench needs valgrind: apt-get install -y valgrind")
    with c.Workspace() as ws:
        app = c.ours_full(ws)
        names = [type(layer).__name__ for layer in layers(app)]
    rows = []
    with tempfile.TemporaryDirectory(prefix="myservice-instr-") as tmp:
        workdir = Path(tmp)
        raw, *counts = _measure_all(len(names), args.small, args.large, workdir)
    rows.append(["(a) raw WSGI", f"{raw / 1000:.1f}", "", "1.00"])
    for depth, name in enumerate(names):
        entered = counts[depth]
        own = entered - (counts[depth + 1] if depth + 1 < len(counts) else raw)
        label = "(e) shipped /v1 pipeline" if depth == 0 else f"(e) entered at {name}"
        rows.append([label, f"{entered / 1000:.1f}", f"{own / 1000:.1f}", f"{entered / raw:.2f}"])
    print("## Instructions per request (callgrind)\n")
    print(
        f"GET by id; {args.large} - {args.small} requests per case; thousands of instructions "
        "per request, the caller's loop included.\n"
    )
    print(c.table(["case", "k instr/request", "own k instr", "x raw"], rows))
    print(
        "\n'own' = entering at this layer minus entering at the next one; for the innermost "
        "layer (the router, with the controller, storage and JSON), minus the raw app, which "
        "does the same lookup and JSON."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
