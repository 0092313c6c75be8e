"""The SQL storage drivers through the full shipped pipeline: sqlite, postgresql, mysql.

For each driver, in a throw-away store (SQLite: a temporary file; PostgreSQL: a schema
``bench_<hex>``; MySQL/MariaDB: a database ``bench_<hex>``; dropped at the end):

* ``GET /v1/users/{id}``, ``POST /v1/users``, ``GET /v1/users?limit=100`` (first page) and
  ``GET /v1/users?limit=100&marker=<id>`` (a page deep in the keyset: the marker is the user
  200 rows before the end), with ``--small`` (1,000) and then ``--large`` (1,000,000) users
  stored;
* in-process: the application built from a byte-identical copy of ``etc/api-paste.ini`` (its
  logging applied, console handler on ``/dev/null``), called as a WSGI server would with a
  prepared environ and a valid token (``myservice-manage token create``);
* over HTTP: ``myservice-api`` (waitress, the shipped ``threads = 8``) in a subprocess, driven
  by a bounded Python keep-alive client (``--clients`` connections, ``--http-requests`` each,
  ``--http-repeats`` runs; the median req/s is shown).

The users beyond the ones the API creates are bulk-loaded directly with SQLAlchemy
``insert`` in batches (executemany; ``COPY`` on PostgreSQL), then analysed (``ANALYZE``).
Keyset pagination on the internal ``seq`` column (``WHERE seq > :marker_seq ORDER BY seq
LIMIT n``) should make a deep page cost about what the first page costs, whatever the table
size; the ratio columns show it, and the database's own plan of the deep page is printed.

Run (never under pytest)::

    .venv/bin/python benchmarks/sql_bench.py [--drivers sqlite,postgresql,mysql]
        [--small 1000] [--large 1000000] [--repeats 5]

Server URLs: ``--postgresql-url`` / ``--mysql-url``, by default ``$MYSERVICE_TEST_POSTGRESQL_URL``
/ ``$MYSERVICE_TEST_MYSQL_URL`` or the local servers of this project's machines.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402
import sqlalchemy as sa  # noqa: E402

DEFAULT_URLS = {
    "postgresql": os.environ.get(
        "MYSERVICE_TEST_POSTGRESQL_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    ),
    "mysql": os.environ.get("MYSERVICE_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test"),
}
BATCH = 10_000
DEEP_FROM_END = 200  # the deep page starts this many users before the end of the table

CASES = ("get", "post", "list first", "list deep")


# -- the throw-away stores ------------------------------------------------------------------


@contextmanager
def store(driver: str, base_urls: dict[str, str], workdir: Path) -> Iterator[str]:
    """A URL of an empty store for ``driver``; dropped afterwards."""
    if driver == "sqlite":
        path = workdir / "bench.sqlite"
        yield f"sqlite:///{path}"
        for suffix in ("", "-wal", "-shm", ".lock"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    base = sa.make_url(base_urls[driver])
    name = f"bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base, poolclass=sa.pool.NullPool)
    with admin.begin() as conn:
        if driver == "postgresql":
            conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
            url = base.update_query_dict({"options": f"-csearch_path={name}"})
        else:
            conn.execute(
                sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
            )
            url = base.set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            if driver == "postgresql":
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
            else:
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


def bulk_load(url: str, start: int, count: int) -> float:
    """Insert users ``bulk-<start>`` .. ``bulk-<start+count-1>``; seconds taken."""
    from myservice.storage.schema import users

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    began = time.perf_counter()
    now = datetime.now(UTC)
    try:
        if engine.dialect.name == "postgresql":
            _copy_postgresql(engine, start, count, now)
        else:
            with engine.begin() as conn:
                for first in range(start, start + count, BATCH):
                    last = min(first + BATCH, start + count)
                    rows = [_row(n, now) for n in range(first, last)]
                    conn.execute(users.insert(), rows)
        # fresh statistics, as autovacuum / InnoDB's auto-recalc would soon give a live table
        with engine.begin() as conn:
            analyze = {"mysql": "ANALYZE TABLE users", "postgresql": "ANALYZE users"}
            conn.execute(sa.text(analyze.get(engine.dialect.name, "ANALYZE")))
    finally:
        engine.dispose()
    return time.perf_counter() - began


def _row(n: int, now: datetime) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "name": f"bulk-{n:08d}",
        "email": f"bulk-{n}@example.org",
        "enabled": True,
        "description": None,
        "created_at": now,
        "updated_at": now,
    }


def _copy_postgresql(engine: sa.Engine, start: int, count: int, now: datetime) -> None:
    """``COPY users (...) FROM STDIN`` through psycopg; ``seq`` comes from its sequence."""
    naive = now.astimezone(UTC).replace(tzinfo=None)  # stored as naive UTC (schema.UTCDateTime)
    columns = "id, name, email, enabled, description, created_at, updated_at"
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        with cursor.copy(f"COPY users ({columns}) FROM STDIN") as copy:
            for n in range(start, start + count):
                copy.write_row(
                    (str(uuid.uuid4()), f"bulk-{n:08d}", f"bulk-{n}@example.org", True, None)
                    + (naive, naive)
                )
        raw.commit()
    finally:
        raw.close()


def deep_marker(url: str) -> tuple[int, str]:
    """(rows stored, id of the user ``DEEP_FROM_END`` rows before the end by ``seq``)."""
    from myservice.storage.schema import users

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(users)).scalar_one()
            marker = conn.execute(
                sa.select(users.c.id).order_by(users.c.seq.desc()).offset(DEEP_FROM_END).limit(1)
            ).scalar_one()
    finally:
        engine.dispose()
    return total, marker


def deep_plan(url: str, marker: str) -> str:
    """The database's plan of the deep page's query (as the driver issues it, keyset on
    ``seq``), one line: evidence that no OFFSET scan happens."""
    from myservice.storage.schema import users

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            after = conn.execute(sa.select(users.c.seq).where(users.c.id == marker)).scalar_one()
            query = f"SELECT id FROM users WHERE seq > {int(after)} ORDER BY seq LIMIT 100"
            prefix = "EXPLAIN QUERY PLAN" if engine.dialect.name == "sqlite" else "EXPLAIN"
            rows = conn.execute(sa.text(f"{prefix} {query}")).all()
    finally:
        engine.dispose()
    if engine.dialect.name == "sqlite":
        return "; ".join(str(row[-1]) for row in rows)
    if engine.dialect.name == "postgresql":
        return "; ".join(str(row[0]).strip() for row in rows)
    keys = rows[0]._mapping
    return ", ".join(f"{k}={keys[k]}" for k in ("type", "key", "rows", "Extra") if k in keys)


# -- in-process ------------------------------------------------------------------------------


class Names:
    """Unique user names for POST, thread-safe."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._n = 0
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            self._n += 1
            return f"{self.prefix}-{self._n}"


def post_body(name: str) -> bytes:
    return json.dumps({"user": {"name": name, "email": "bench@example.org"}}).encode()


class InProcess:
    """Calls the application like a server: fresh environ, body, iterate, close."""

    def __init__(self, app: Any, token: str, names: Names) -> None:
        self.app = app
        self.token = token
        self.names = names
        self.status = ""

    def _start(self, status: str, headers: list, exc_info: Any = None) -> None:
        self.status = status

    def call(self, method: str, path: str, body: bytes = b"") -> tuple[str, bytes]:
        path, _, query = path.partition("?")
        env = c.make_environ(path, self.token, method)
        env["QUERY_STRING"] = query
        env["wsgi.input"] = io.BytesIO(body)
        if body:
            env["CONTENT_TYPE"] = "application/json"
            env["CONTENT_LENGTH"] = str(len(body))
        data = c.call_wsgi(self.app, env, self._start)
        return self.status, data

    def per_request_us(self, case: str, paths: dict[str, str], loops: int) -> float:
        expected = "201 Created" if case == "post" else "200 OK"
        began = time.perf_counter()
        for _ in range(loops):
            if case == "post":
                status, data = self.call("POST", "/v1/users", post_body(self.names.next()))
            else:
                status, data = self.call("GET", paths[case])
            if status != expected:
                raise SystemExit(f"in-process {case}: {status} {data[:300]!r}")
        return (time.perf_counter() - began) / loops * 1e6


# -- over HTTP -------------------------------------------------------------------------------


def http_run(
    port: int, token: str, case: str, paths: dict[str, str], names: Names, clients: int, each: int
) -> tuple[float, float]:
    """(requests/s, median ms) of ``clients`` keep-alive connections x ``each`` requests."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    headers = {"X-Auth-Token": token, "Accept": "application/json"}

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine: list[float] = []
        try:
            for _ in range(each):
                t0 = time.perf_counter()
                if case == "post":
                    conn.request(
                        "POST",
                        "/v1/users",
                        body=post_body(names.next()),
                        headers={**headers, "Content-Type": "application/json"},
                    )
                else:
                    conn.request("GET", paths[case], headers=headers)
                res = conn.getresponse()
                data = res.read()
                mine.append(time.perf_counter() - t0)
                if res.status not in (200, 201):
                    errors.append(f"{res.status} {data[:300]!r}")
                    return
        except OSError as exc:
            errors.append(repr(exc))
        finally:
            conn.close()
            with lock:
                latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise SystemExit(f"HTTP {case}: {errors[:3]}")
    return len(latencies) / elapsed, statistics.median(latencies) * 1000


@contextmanager
def served(ws: c.Workspace, log: Path) -> Iterator[int]:
    """``myservice-api --port N api-paste.ini`` in the workspace; its port."""
    port = c.free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(c.VENV_BIN / "myservice-api"), "--port", str(port), "api-paste.ini"],
            cwd=ws.dir,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while not c.healthcheck_ok(port, timeout=2):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"myservice-api did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(15)


# -- one driver ------------------------------------------------------------------------------


def configure(ws: c.Workspace, driver: str, url: str) -> None:
    """Point the workspace's ``myservice.conf`` at ``url`` (schema created on start)."""
    ws.conf.write_text(
        "[DEFAULT]\nstate_path = %(here)s/state\n\n"
        f"[storage]\ndriver = {driver}\nconnection = {url}\nauto_upgrade = true\n",
        encoding="utf-8",
    )


def measure_size(
    label: str,
    caller: InProcess,
    port: int,
    token: str,
    url: str,
    names: Names,
    args: argparse.Namespace,
    results: dict[tuple[str, str], dict[str, float]],
) -> None:
    total, marker = deep_marker(url)
    status, data = caller.call("GET", "/v1/users?limit=1")
    user_id = json.loads(data)["users"][0]["id"]
    paths = {
        "get": f"/v1/users/{user_id}",
        "list first": "/v1/users?limit=100",
        "list deep": f"/v1/users?limit=100&marker={marker}",
    }
    status, data = caller.call("GET", paths["list deep"])
    if status != "200 OK" or len(json.loads(data)["users"]) != 100:
        raise SystemExit(f"the deep page is not a full page: {status} {data[:300]!r}")
    loops = {"get": args.loops, "post": args.loops // 2, "list first": args.loops // 4}
    loops["list deep"] = loops["list first"]
    for case in CASES:  # warm-up
        caller.per_request_us(case, paths, max(5, loops[case] // 10))
    samples: dict[str, list[float]] = {case: [] for case in CASES}
    for _ in range(args.repeats):  # interleaved
        for case in CASES:
            samples[case].append(caller.per_request_us(case, paths, loops[case]))
    http: dict[str, list[tuple[float, float]]] = {case: [] for case in CASES}
    for _ in range(args.http_repeats):  # interleaved too
        for case in CASES:
            http[case].append(
                http_run(port, token, case, paths, names, args.clients, args.http_requests)
            )
    for case in CASES:
        rps = statistics.median(r for r, _ in http[case])
        median_ms = statistics.median(ms for _, ms in http[case])
        done = results[(case, label)] = {
            "stored": total,
            "min": min(samples[case]),
            "median": statistics.median(samples[case]),
            "rps": rps,
            "http_ms": median_ms,
        }
        print(
            f"  {label:>5} {case:<10} stored {total:>9,}: in-process min {done['min']:8.1f} µs "
            f"median {done['median']:8.1f} µs; HTTP {rps:7.0f} req/s, median {median_ms:6.2f} ms",
            flush=True,
        )


def run_driver(driver: str, args: argparse.Namespace) -> dict[str, Any]:
    from myservice.wsgi.loader import load_app

    print(f"{driver}:", flush=True)
    out: dict[str, Any] = {"results": {}, "loads": []}
    with c.Workspace() as ws, store(driver, args.urls, ws.dir) as url:
        configure(ws, driver, url)
        app = load_app(ws.ini)  # creates the schema (auto_upgrade)
        try:
            names = Names(f"post-{uuid.uuid4().hex[:8]}")
            caller = InProcess(app, ws.token, names)
            seconds = bulk_load(url, 0, args.small)
            out["loads"].append((args.small, seconds))
            with served(ws, ws.dir / "server.log") as port:
                measure_size("small", caller, port, ws.token, url, names, args, out["results"])
                print(f"  loading {args.large - args.small:,} more users...", flush=True)
                seconds = bulk_load(url, args.small, args.large - args.small)
                out["loads"].append((args.large - args.small, seconds))
                print(f"  loaded in {seconds:.1f} s", flush=True)
                measure_size("large", caller, port, ws.token, url, names, args, out["results"])
                out["plan"] = deep_plan(url, deep_marker(url)[1])
                print(f"  plan of the deep page: {out['plan']}", flush=True)
        finally:
            app.close()
    return out


# -- report ----------------------------------------------------------------------------------


def report(all_results: dict[str, dict[str, Any]], args: argparse.Namespace) -> str:
    rows = []
    for driver, data in all_results.items():
        res = data["results"]
        for case in CASES:
            small, large = res[(case, "small")], res[(case, "large")]
            rows.append(
                [
                    f"{driver} {case}",
                    f"{small['min']:.0f}",
                    f"{small['median']:.0f}",
                    f"{large['min']:.0f}",
                    f"{large['median']:.0f}",
                    f"{large['min'] / small['min']:.2f}",
                    f"{large['median'] / small['median']:.2f}",
                    f"{small['rps']:.0f}",
                    f"{large['rps']:.0f}",
                    f"{large['rps'] / small['rps']:.2f}",
                ]
            )
    small_n, large_n = f"{args.small:,}", f"{args.large:,}"
    header = [
        "driver, request",
        f"{small_n}: min µs",
        f"{small_n}: median µs",
        f"{large_n}: min µs",
        f"{large_n}: median µs",
        "large/small (min)",
        "large/small (median)",
        f"{small_n}: HTTP req/s",
        f"{large_n}: HTTP req/s",
        "large/small (req/s)",
    ]
    lines = [c.table(header, rows), ""]
    base = all_results.get("sqlite")
    if base:
        vs = []
        for driver, data in all_results.items():
            if driver == "sqlite":
                continue
            for case in CASES:
                ours = data["results"][(case, "small")]
                ref = base["results"][(case, "small")]
                vs.append(
                    [
                        f"{driver} {case}",
                        f"{ours['median'] / ref['median']:.2f}",
                        f"{ours['rps'] / ref['rps']:.2f}",
                    ]
                )
        if vs:
            lines += [
                c.table(
                    ["driver, request (small table)", "x sqlite µs (median)", "x sqlite req/s"],
                    vs,
                ),
                "",
            ]
    for driver, data in all_results.items():
        loads = ", ".join(f"{n:,} rows in {s:.1f} s" for n, s in data["loads"])
        lines.append(f"- bulk load, {driver}: {loads}")
    for driver, data in all_results.items():
        lines.append(f"- plan of the deep page, {driver}: `{data.get('plan', '?')}`")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drivers", default="sqlite,postgresql,mysql")
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--loops", type=int, default=200, help="GET by id calls per repeat")
    parser.add_argument("--clients", type=int, default=2, help="HTTP keep-alive connections")
    parser.add_argument("--http-requests", type=int, default=150, help="per connection, run")
    parser.add_argument("--http-repeats", type=int, default=3, help="HTTP runs per case")
    parser.add_argument("--postgresql-url", default=DEFAULT_URLS["postgresql"])
    parser.add_argument("--mysql-url", default=DEFAULT_URLS["mysql"])
    args = parser.parse_args(argv)
    args.drivers = [d.strip() for d in args.drivers.split(",") if d.strip()]
    unknown = sorted(set(args.drivers) - {"sqlite", "postgresql", "mysql"})
    if unknown:
        parser.error(f"--drivers: unknown {unknown}; expected sqlite, postgresql, mysql")
    if not 0 < args.small + DEEP_FROM_END + 100 <= args.large:
        parser.error("--large must exceed --small by at least 300 (the deep page)")
    args.urls = {"postgresql": args.postgresql_url, "mysql": args.mysql_url}
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    info = c.machine()
    c.apply_shipped_logging(c.SHIPPED_INI)
    all_results = {driver: run_driver(driver, args) for driver in args.drivers}
    print()
    print(
        f"Measured {info['date']}; {info['machine']}, nproc {info['nproc']}, Python "
        f"{info['python']}; load average at start {info['loadavg']}"
    )
    print(
        f"{args.repeats} repeats in-process (interleaved); HTTP: median of {args.http_repeats} "
        f"runs of {args.clients} keep-alive clients x {args.http_requests} requests, "
        f"myservice-api (waitress threads "
        f"{c.ini_threads(c.SHIPPED_INI)})"
    )
    print()
    print(report(all_results, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
