"""In-process request path: call the WSGI callables directly with a prepared environ.

``GET /v1/users/{id}`` (or, with ``--load POST``, ``POST /v1/users`` creating a user with a new
name per request) with ``Accept: application/json`` and ``X-Forwarded-For``, through:

(a) a raw WSGI app; (b) a ``webob.dec.wsgify`` app; (c) (b) behind oslo.middleware's
``http_proxy_to_wsgi``, ``request_id``, ``catch_errors``, ``sizelimit``; (d) (b) behind our four
filters of those names, same order and settings; (e) our whole shipped ``/v1`` pipeline from
``etc/api-paste.ini`` (memory driver, valid token, the shipped logging with its handler on
``/dev/null``); (f) Flask; (g) a Routes router behind oslo.middleware's four filters.

Every repeat runs every case once, in a shuffled order; per-request µs is the time of
``--loops`` calls divided by ``--loops``.  The process is bound to one CPU (``--no-pin`` to
lift it) and each timed loop ends by finishing the app's background work (the access log's
queued lines, the queued event hooks), so work our pipeline moved off the request thread is
still counted in its time rather than done for free on the other CPU.
Run: ``.venv/bin/python benchmarks/wsgi_bench.py``.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import logging
import pstats
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402

CASES = {
    "a": "raw WSGI",
    "b": "webob wsgify",
    "c": "(b) + oslo.middleware x4",
    "d": "(b) + ours x4",
    "e": "ours: shipped /v1 pipeline",
    "f": "Flask",
    "g": "Routes router + oslo.middleware x4",
}


def build(ws: c.Workspace, load: str = "GET") -> tuple[dict[str, c.Caller], str]:
    """The callers of every case, checked to answer 200 with the same body (``GET``), or 201
    (``POST``: each case creates users with names of its own)."""
    full = c.ours_full(ws)
    driver = full.context.storage
    user_id = c.seed(driver)
    lookup = c.Lookup(driver)
    path = f"/v1/users/{user_id}"
    wsgify = c.wsgify_app(lookup)
    apps = {
        "a": c.raw_app(lookup),
        "b": wsgify,
        "c": c.oslo_stack(wsgify),
        "d": c.our_stack(wsgify, ws.conf),
        "e": full,
        "f": c.flask_app(lookup),
        "g": c.oslo_stack(c.routes_app(lookup)),
    }
    callers = {}
    bodies = set()
    if load == "POST":
        for key, app in apps.items():
            environ = c.make_environ("/v1/users", ws.token if key == "e" else None, "POST")
            caller = c.PostCaller(app, environ, tag=key)
            status, body = caller.once()
            if status is None or not status.startswith("201"):
                raise SystemExit(f"case ({key}) {CASES[key]} answered {status}: {body[:200]!r}")
            callers[key] = caller
        return callers, "/v1/users"
    for key, app in apps.items():
        caller = c.Caller(app, c.make_environ(path, ws.token if key == "e" else None))
        status, body = caller.once()
        if status != "200 OK":
            raise SystemExit(f"case ({key}) {CASES[key]} answered {status}: {body[:200]!r}")
        bodies.add(body)
        callers[key] = caller
    if len(bodies) != 1:
        raise SystemExit(f"the cases answer different bodies: {bodies}")
    return callers, path


def measure(callers: dict[str, c.Caller], repeats: int, loops: int) -> dict[str, list[float]]:
    """Per-request µs of every case, ``repeats`` times, interleaved and shuffled."""
    for caller in callers.values():  # warm up
        caller.loop(max(50, loops // 10))
    results: dict[str, list[float]] = {key: [] for key in callers}
    order = list(callers)
    rng = random.Random(42)
    for _ in range(repeats):
        rng.shuffle(order)
        for key in order:
            caller = callers[key]
            gc.collect()
            started = time.perf_counter()
            caller.loop(loops)
            caller.settle()
            results[key].append((time.perf_counter() - started) / loops * 1e6)
    return results


def profile(caller: c.Caller, loops: int, top: int = 25, sort: str = "tottime") -> str:
    """cProfile of ``loops`` calls; the ``top`` functions by ``sort`` (own time by default)."""
    prof = cProfile.Profile()
    prof.enable()
    caller.loop(loops)
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats(sort).print_stats(top)
    return out.getvalue()


def report(
    results: dict[str, list[float]], repeats: int, loops: int, load: str = "GET"
) -> tuple[str, dict]:
    """The Markdown table and the two target checks (on medians; mins shown too; the targets
    are for GET, POST shows the same ratios without a verdict)."""
    med = {k: c.summary(v)[1] for k, v in results.items()}
    mn = {k: c.summary(v)[0] for k, v in results.items()}
    rows = []
    for key, label in CASES.items():
        rows.append(
            [
                f"({key}) {label}",
                f"{mn[key]:.1f}",
                f"{med[key]:.1f}",
                f"{max(results[key]):.1f}",
                f"{med[key] / med['a']:.2f}",
            ]
        )
    text = [
        f"{repeats} repeats x {loops} requests per case, interleaved; µs per request.",
        "",
        c.table(["case", "min µs", "median µs", "max µs", "x raw (median)"], rows),
        "",
    ]
    checks = {}
    for stat, vals in (("median", med), ("min", mn)):
        oslo_added = vals["c"] - vals["b"]
        ours_added = vals["d"] - vals["b"]
        ratio1 = ours_added / oslo_added
        ratio2 = vals["e"] / vals["g"]
        checks[stat] = (ours_added, oslo_added, ratio1, ratio2)
        if load != "GET":
            text.append(
                f"- {stat}: our four filters add {ours_added:.1f} µs, oslo.middleware's add "
                f"{oslo_added:.1f} µs: ratio **{ratio1:.3f}**; whole shipped /v1 pipeline "
                f"{vals['e']:.1f} µs vs Routes + oslo.middleware {vals['g']:.1f} µs: ratio "
                f"**{ratio2:.3f}**; ours/Flask **{vals['e'] / vals['f']:.3f}**"
            )
            continue
        text.append(
            f"- {stat}: our four filters add {ours_added:.1f} µs, oslo.middleware's add "
            f"{oslo_added:.1f} µs: ratio **{ratio1:.3f}** (target <= 0.25: "
            f"{'met' if ratio1 <= 0.25 else 'MISSED'}); whole shipped /v1 pipeline "
            f"{vals['e']:.1f} µs vs Routes + oslo.middleware {vals['g']:.1f} µs: ratio "
            f"**{ratio2:.3f}** (target <= 0.5: {'met' if ratio2 <= 0.5 else 'MISSED'})"
        )
    return "\n".join(text), checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--loops", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="5 repeats x 500 requests")
    parser.add_argument(
        "--profile", metavar="CASE", help="print a cProfile of one case (a-g) and exit"
    )
    parser.add_argument(
        "--load",
        choices=("GET", "POST"),
        default="GET",
        help="GET /v1/users/{id} (default) or POST /v1/users (a new user per request)",
    )
    parser.add_argument("--sort", default="tottime", help="cProfile sort key (with --profile)")
    parser.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        help="let the process use every CPU (default: bound to one, see the module docstring)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.loops = 5, 500
    with c.pinned_to_one_cpu(args.pin) as cpu, c.Workspace() as ws:
        c.apply_shipped_logging(ws.ini)
        if not logging.getLogger("myservice.access").isEnabledFor(logging.INFO):
            raise SystemExit("the shipped logging config should enable the access log")
        callers, _path = build(ws, args.load)
        if args.profile:
            callers[args.profile].loop(200)
            print(profile(callers[args.profile], args.loops, sort=args.sort))
            return 0
        results = measure(callers, args.repeats, args.loops)
    text, _checks = report(results, args.repeats, args.loops, args.load)
    print(f"## In-process (WSGI callables), {args.load}\n")
    print(
        f"Pinned to CPU {cpu}: every thread of the process (the access log's and the event "
        "hooks' included) runs there, and each timed loop ends by finishing their queued work."
        if cpu is not None
        else "Not pinned: background threads may run on another CPU, outside the timed loops."
    )
    print()
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
