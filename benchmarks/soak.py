"""Soak the served application: mixed writes and reads from many clients, with faults.

Usage (a documented command, never part of pytest)::

    .venv/bin/python benchmarks/soak.py [--driver sqlite|postgresql] [--seconds 60]
        [--clients 16] [--kill | --db-outage [--outage-seconds 10]] [--postgresql-url URL]

What it does:

* copies the shipped ``etc/api-paste.ini`` and ``etc/myservice.conf`` into a temporary
  directory (state there too), sets ``[storage] driver`` (PostgreSQL: a throw-away schema of
  ``--postgresql-url``, default ``$MYSERVICE_TEST_POSTGRESQL_URL`` or
  ``postgresql+psycopg://postgres@127.0.0.1:5432/test``), creates an admin token, and serves
  it with ``myservice-api`` on a free 127.0.0.1 port (its output goes to ``server.log`` there);
* ``--clients`` threads, each with one keep-alive ``http.client`` connection, loop for
  ``--seconds``: create 30 %, read 25 %, update 15 %, delete 10 %, list 20 % (each client
  updates and deletes only users it created, so it knows what every acknowledged write left);
* then lists every user and checks: every acknowledged (2xx) create not acknowledged deleted
  is there with its last acknowledged description, nothing else is there except users whose
  create had no answer or a 503 ``myservice.outcome_unknown`` ("in doubt"); a write answered
  503 ``myservice.service_unavailable`` (the driver vouches nothing was written) left nothing:
  such a create is absent, such an update or delete did not happen; no 5xx other than the
  outage's 503s; the audit log is valid JSON Lines;
* reports requests/s, p50/p99 latency, status counts, rows expected vs found, resident memory
  of the server process (``VmRSS``) at start and at end.

``--kill``: ``kill -9`` the server half-way, start it again on the same state (no repair
step), the clients reconnect; requests cut by the kill are "in doubt".  ``--db-outage``
(PostgreSQL only): the server reaches the database through a TCP forwarder
(``tests/storage/forwarder.Forwarder``) that is stopped for ``--outage-seconds`` half-way;
requests meanwhile must get 503 in the error envelope (counted), and the service must recover
by itself.  Exit status 0 when every check passes, 1 otherwise.  Loopback only.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402

BIN = Path(sys.executable).parent
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
#: operation mix, weights in percent
MIX = (("create", 30), ("read", 25), ("update", 15), ("delete", 10), ("list", 20))
START_DEADLINE = 120.0


# -- server ---------------------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    """``VmRSS`` of ``pid`` in KiB (from ``/proc/PID/status``)."""
    text = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    match = re.search(r"^VmRSS:\s+(\d+) kB$", text, re.M)
    if not match:
        raise RuntimeError(f"no VmRSS in /proc/{pid}/status")
    return int(match.group(1))


class Served:
    """``myservice-api`` on ``site/api-paste.ini``, in its own process group."""

    def __init__(self, site: Path, port: int) -> None:
        self.site = site
        self.port = port
        self.log = site / "server.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> float:
        """Start and wait until ``/healthcheck`` answers 200; returns the seconds it took."""
        began = time.monotonic()
        env = dict(os.environ, MYSERVICE_PLUGIN_CACHE_DIR=str(self.site / "plugin-cache"))
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [str(BIN / "myservice-api"), "--port", str(self.port), "api-paste.ini"],
                cwd=self.site,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        while not c.healthcheck_ok(self.port, timeout=5):
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; see {self.log}")
            if time.monotonic() - began > START_DEADLINE:
                raise RuntimeError(f"server not healthy after {START_DEADLINE:.0f}s; {self.log}")
            time.sleep(0.1)
        return time.monotonic() - began

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill9(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(15)


# -- load -----------------------------------------------------------------------------------


@dataclass
class Owned:
    """A user one client created: what its acknowledged writes left, and what is in doubt."""

    name: str
    user_id: str | None
    description: str | None = None
    doubtful_descriptions: set[str] = field(default_factory=set)
    deleted: bool = False
    delete_in_doubt: bool = False


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)  # connection-level failures, by op
    outage_503: int = 0
    unknown_503: int = 0  # of outage_503: writes answered myservice.outcome_unknown
    bad_503: list[str] = field(default_factory=list)  # a 503 not in the error envelope
    other_5xx: list[str] = field(default_factory=list)
    users: list[Owned] = field(default_factory=list)
    acked_writes: int = 0  # 2xx creates, updates and deletes: one audit line each
    in_doubt_creates: list[str] = field(default_factory=list)
    unwritten_creates: list[str] = field(default_factory=list)  # 503 service_unavailable


class LoadClient(threading.Thread):
    def __init__(self, index: int, port: int, token: str, stop_at: float, seed: int) -> None:
        super().__init__(name=f"soak-{index}", daemon=True)
        self.index = index
        self.port = port
        self.token = token
        self.stop_at = stop_at
        self.random = random.Random(seed)
        self.stats = Stats()
        self.conn: http.client.HTTPConnection | None = None
        self.counter = 0

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any] | None:
        """(status, parsed body or None); (0, None) if the connection was refused (not sent);
        None if it was sent and no answer came (outcome unknown)."""
        headers = {"X-Auth-Token": self.token, "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        began = time.perf_counter()
        try:
            self.conn.request(method, path, body=data, headers=headers)
            res = self.conn.getresponse()
            payload = res.read()
        except ConnectionRefusedError:
            # nothing listens (the server is restarting): the request was never sent
            self.stats.errors["refused"] += 1
            self.conn.close()
            self.conn = None
            time.sleep(0.05)
            return 0, None
        except (OSError, http.client.HTTPException):
            # sent, no answer: the server may or may not have done it
            self.stats.errors[f"{method} cut"] += 1
            self.conn.close()
            self.conn = None
            time.sleep(0.05)
            return None
        self.stats.latencies.append(time.perf_counter() - began)
        self.stats.statuses[res.status] += 1
        if res.will_close:
            self.conn.close()
            self.conn = None
        parsed = json.loads(payload) if payload else None
        if res.status == 503:
            code = error_code(parsed, 503)
            if code in OUTAGE_CODES:
                self.stats.outage_503 += 1
                self.stats.unknown_503 += code == UNKNOWN
            else:
                self.stats.bad_503.append(f"{method} {path}: {payload[:200]!r}")
        elif res.status >= 500:
            self.stats.other_5xx.append(f"{method} {path} {res.status}: {payload[:300]!r}")
        return res.status, parsed

    def alive(self) -> list[Owned]:
        return [u for u in self.stats.users if u.user_id and not u.deleted]

    def run(self) -> None:
        ops = [name for name, weight in MIX for _ in range(weight)]
        while time.monotonic() < self.stop_at:
            op = self.random.choice(ops)
            mine = self.alive()
            if op in ("read", "update", "delete") and not mine:
                op = "create"
            getattr(self, f"op_{op}")(mine)
        if self.conn is not None:
            self.conn.close()

    def op_create(self, _mine: list[Owned]) -> None:
        self.counter += 1
        name = f"soak-{self.index}-{self.counter}-{uuid.uuid4().hex[:6]}"
        answer = self.call("POST", "/v1/users", {"user": {"name": name}})
        if answer is not None and answer[0] == 201:
            self.stats.users.append(Owned(name, answer[1]["user"]["id"]))
            self.stats.acked_writes += 1
        elif unwritten(answer):
            self.stats.unwritten_creates.append(name)
        elif answer is None or answer[0] == 503:
            self.stats.in_doubt_creates.append(name)

    def op_read(self, mine: list[Owned]) -> None:
        user = self.random.choice(mine)
        self.call("GET", f"/v1/users/{user.user_id}")

    def op_update(self, mine: list[Owned]) -> None:
        user = self.random.choice(mine)
        text = uuid.uuid4().hex
        answer = self.call("PATCH", f"/v1/users/{user.user_id}", {"user": {"description": text}})
        if answer is not None and answer[0] == 200:
            user.description = text
            user.doubtful_descriptions.clear()
            self.stats.acked_writes += 1
        elif answer is None or (answer[0] == 503 and not unwritten(answer)):
            user.doubtful_descriptions.add(text)

    def op_delete(self, mine: list[Owned]) -> None:
        user = self.random.choice(mine)
        answer = self.call("DELETE", f"/v1/users/{user.user_id}")
        if answer is not None and answer[0] == 204:
            user.deleted = True
            self.stats.acked_writes += 1
        elif answer is None or (answer[0] == 503 and not unwritten(answer)):
            user.delete_in_doubt = True
            user.deleted = True  # no further writes to it: its fate is unknown

    def op_list(self, _mine: list[Owned]) -> None:
        self.call("GET", f"/v1/users?limit={self.random.choice((10, 50))}")


UNAVAILABLE = "myservice.service_unavailable"  # nothing was written
UNKNOWN = "myservice.outcome_unknown"  # a write that may or may not have been saved
OUTAGE_CODES = (UNAVAILABLE, UNKNOWN)


def error_code(parsed: Any, status: int) -> str | None:
    """The ``code`` of an error envelope whose ``status`` is ``status``; else ``None``."""
    if not isinstance(parsed, dict):
        return None
    error = parsed.get("errors", [{}])[0]
    return error.get("code") if error.get("status") == status else None


def unwritten(answer: tuple[int, Any] | None) -> bool:
    """A 503 ``myservice.service_unavailable``: the write certainly changed nothing."""
    return answer is not None and error_code(answer[1], 503) == UNAVAILABLE


def all_users(port: int, token: str) -> list[dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    users: list[dict] = []
    path = "/v1/users?limit=1000"
    while path:
        conn.request("GET", path, headers={"X-Auth-Token": token})
        res = conn.getresponse()
        page = json.loads(res.read())
        if res.status != 200:
            raise RuntimeError(f"listing users: {res.status} {page}")
        users.extend(page["users"])
        nexts = [link["href"] for link in page.get("links", []) if link.get("rel") == "next"]
        path = ""
        if nexts:
            parts = urlsplit(nexts[0])
            path = parts.path + ("?" + parts.query if parts.query else "")
    conn.close()
    return users


# -- checks ---------------------------------------------------------------------------------


def verify_rows(clients: list[LoadClient], found: list[dict]) -> dict[str, Any]:
    by_name = {u["name"]: u for u in found}
    expected, problems = {}, []
    doubtful_creates: set[str] = set()
    doubtful_deletes: set[str] = set()
    unwritten_creates: set[str] = set()
    for client in clients:
        doubtful_creates.update(client.stats.in_doubt_creates)
        unwritten_creates.update(client.stats.unwritten_creates)
        for user in client.stats.users:
            if user.delete_in_doubt:
                doubtful_deletes.add(user.name)
            elif not user.deleted:
                expected[user.name] = user
    for name, user in expected.items():
        row = by_name.get(name)
        if row is None:
            problems.append(f"acknowledged user {name} ({user.user_id}) is missing")
            continue
        allowed = {user.description, *user.doubtful_descriptions}
        if row.get("description") not in allowed:
            problems.append(f"{name}: description {row.get('description')!r}, acked {allowed}")
    may_exist = doubtful_creates | doubtful_deletes
    unexpected = [n for n in by_name if n not in expected and n not in may_exist]
    problems += [f"user {name} exists but was never acknowledged" for name in unexpected]
    problems += [
        f"user {name} exists, its create was answered 503 service_unavailable (nothing written)"
        for name in sorted(unwritten_creates & by_name.keys())
    ]
    return {
        "expected": len(expected),
        "found": len(found),
        "in_doubt": len(may_exist),
        "creates_in_doubt": len(doubtful_creates),
        "creates_in_doubt_present": len(doubtful_creates & by_name.keys()),
        "deletes_in_doubt": len(doubtful_deletes),
        "deletes_in_doubt_present": len(doubtful_deletes & by_name.keys()),
        "creates_unwritten": len(unwritten_creates),
        "problems": problems,
    }


def verify_audit(path: Path) -> tuple[int, list[str]]:
    if not path.exists():
        return 0, [f"{path} does not exist"]
    problems, count = [], 0
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.endswith("\n"):
                problems.append(f"{path}:{number}: torn line (no newline)")
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(f"{path}:{number}: not JSON: {exc}")
                continue
            if record.get("event") not in ("user.create", "user.update", "user.delete"):
                problems.append(f"{path}:{number}: unexpected event {record.get('event')!r}")
            count += 1
    return count, problems


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# -- the run --------------------------------------------------------------------------------


def prepare_site(args: argparse.Namespace, work: Path, db_url: str | None) -> tuple[Path, str]:
    from myservice import conf as config
    from myservice.tokens import TokenStore

    site = work / "etc"
    site.mkdir()
    for name in ("api-paste.ini", "myservice.conf"):
        shutil.copy(REPO / "etc" / name, site / name)
    lines = ["[DEFAULT]", "state_path = %(here)s/state", "", "[storage]", f"driver = {args.driver}"]
    if db_url:
        lines += [f"connection = {db_url}", "auto_upgrade = true"]
    (site / "myservice.conf").write_text("\n".join(lines) + "\n", encoding="utf-8")
    token_file = config.load(site / "myservice.conf").auth.token_file
    token, _ = TokenStore(token_file).create("soak", "soak", ["admin"])
    return site, token


@contextlib.contextmanager
def postgresql_schema(base_url: str):
    import sqlalchemy as sa

    name = f"soak_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(base_url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
    try:
        yield sa.make_url(base_url).update_query_dict({"options": f"-csearch_path={name}"})
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        engine.dispose()


def run(args: argparse.Namespace, work: Path, db_url: Any, forwarder: Any) -> dict[str, Any]:
    url_text = db_url.render_as_string(hide_password=False) if db_url is not None else None
    site, token = prepare_site(args, work, url_text)
    port = c.free_port()
    served = Served(site, port)
    report: dict[str, Any] = {"startup_s": served.start()}
    report["rss_start_kib"] = rss_kib(served.pid)
    began = time.monotonic()
    stop_at = began + args.seconds
    clients = [LoadClient(i, port, token, stop_at, args.seed + i) for i in range(args.clients)]
    for client in clients:
        client.start()
    events: list[str] = []
    if args.kill or args.db_outage:
        time.sleep(args.seconds / 2)
    if args.kill:
        old = served.pid
        served.kill9()
        events.append(f"kill -9 {old} at {time.monotonic() - began:.1f}s")
        report["restart_s"] = served.start()
        events.append(f"restarted as {served.pid}, healthy after {report['restart_s']:.2f}s")
    if args.db_outage:
        forwarder.stop()
        events.append(f"database cut at {time.monotonic() - began:.1f}s")
        time.sleep(args.outage_seconds)
        forwarder.start()
        back = time.monotonic()
        events.append(f"database back at {back - began:.1f}s")
        while not c.healthcheck_ok(port, timeout=5):
            if time.monotonic() - back > START_DEADLINE:
                events.append("NOT recovered")
                break
            time.sleep(0.05)
        report["recovery_s"] = time.monotonic() - back
    for client in clients:
        client.join()
    elapsed = time.monotonic() - began
    report["rss_end_kib"] = rss_kib(served.pid)
    found = all_users(port, token)
    served.stop()
    report["clean_exit"] = served.proc is not None and served.proc.returncode == 0

    stats = [client.stats for client in clients]
    latencies = [v for s in stats for v in s.latencies]
    statuses: Counter = sum((s.statuses for s in stats), Counter())
    errors: Counter = sum((s.errors for s in stats), Counter())
    report.update(
        events=events,
        seconds=elapsed,
        requests=len(latencies),
        rps=len(latencies) / elapsed,
        p50_ms=percentile(latencies, 0.50) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        statuses=dict(sorted(statuses.items())),
        connection_failures=dict(errors),
        outage_503=sum(s.outage_503 for s in stats),
        outage_503_unknown=sum(s.unknown_503 for s in stats),
        bad_503=[x for s in stats for x in s.bad_503][:5],
        other_5xx=[x for s in stats for x in s.other_5xx][:5],
        other_5xx_count=sum(len(s.other_5xx) for s in stats),
        rows=verify_rows(clients, found),
    )
    audit_lines, audit_problems = verify_audit(site / "state" / "audit.jsonl")
    acked = sum(s.acked_writes for s in stats)
    report.update(audit_lines=audit_lines, acked_writes=acked, audit_problems=audit_problems[:5])
    failures = []
    if report["other_5xx_count"] or report["bad_503"]:
        failures.append("5xx answers other than the outage's 503 envelope")
    if report["outage_503"] and not args.db_outage:
        failures.append("503 answers without an outage")
    if args.db_outage and (not report["outage_503"] or "NOT recovered" in events):
        failures.append("the outage was not seen as 503s, or the service did not recover")
    if report["rows"]["problems"]:
        failures.append("rows found differ from the acknowledged writes")
    if not (args.kill or args.db_outage) and report["rows"]["in_doubt"]:
        failures.append("writes without an answer in a run without faults")
    if not (args.kill or args.db_outage) and audit_lines != acked:
        failures.append(f"{audit_lines} audit lines for {acked} acknowledged writes")
    if audit_problems:
        failures.append("audit log is not valid JSON Lines")
    report["failures"] = failures
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--driver", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    faults = parser.add_mutually_exclusive_group()
    faults.add_argument("--kill", action="store_true", help="kill -9 the server half-way")
    faults.add_argument(
        "--db-outage", action="store_true", help="cut the database half-way (postgresql)"
    )
    parser.add_argument("--outage-seconds", type=float, default=10.0)
    parser.add_argument(
        "--postgresql-url",
        default=os.environ.get("MYSERVICE_TEST_POSTGRESQL_URL") or DEFAULT_PG,
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    if args.db_outage and args.driver != "postgresql":
        parser.error("--db-outage needs --driver postgresql")

    work = Path(tempfile.mkdtemp(prefix="myservice-soak-"))
    try:
        with contextlib.ExitStack() as stack:
            db_url, forwarder = None, None
            if args.driver == "postgresql":
                db_url = stack.enter_context(postgresql_schema(args.postgresql_url))
                if args.db_outage:
                    from tests.storage.forwarder import Forwarder

                    forwarder = Forwarder(db_url.port or 5432)
                    forwarder.start()
                    stack.callback(forwarder.stop)
                    db_url = db_url.set(host="127.0.0.1", port=forwarder.port)
            report = run(args, work, db_url, forwarder)
    finally:
        if args.keep:
            print(f"work directory kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)

    mode = "kill -9" if args.kill else "db outage" if args.db_outage else "steady"
    report["mode"] = mode
    report["driver"] = args.driver
    report["clients"] = args.clients
    report["machine"] = f"{platform.machine()}, nproc {os.cpu_count()}, Python "
    report["machine"] += platform.python_version()
    print(json.dumps(report, indent=2, default=str))
    rows = report["rows"]
    print(
        f"\n| {args.driver} | {mode} | {args.clients} | {report['seconds']:.0f} | "
        f"{report['rps']:.0f} | {report['p50_ms']:.1f} | {report['p99_ms']:.1f} | "
        f"{report['other_5xx_count']} | {report['outage_503']} | "
        f"{rows['expected']} / {rows['found']} ({rows['in_doubt']} in doubt) | "
        f"{report['rss_start_kib'] / 1024:.1f} → {report['rss_end_kib'] / 1024:.1f} | "
        f"{'PASS' if not report['failures'] else 'FAIL: ' + '; '.join(report['failures'])} |"
    )
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
