"""Shared helpers of the request-path benchmarks (never imported by the test suite).

* :class:`Workspace`: a temporary directory holding a copy of the shipped ``etc/api-paste.ini``
  next to a ``myservice.conf`` with ``[storage] driver = memory``, and a token made with
  ``myservice-manage token create`` (the real command).
* The applications compared: a raw WSGI app, a ``webob.dec.wsgify`` app, a Flask app and a
  Routes router, all doing the same lookup as ours (``MemoryDriver.get_user`` and
  :func:`myservice.api.users.view`, so every body is byte-identical), plus the filter stacks
  of oslo.middleware and ours, and our whole pipeline built from the ini.
* Timing helpers (interleaved repeats, min and median) and the machine description.
"""

from __future__ import annotations

import configparser
import contextlib
import http.client
import io
import json
import logging
import logging.config
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_INI = ROOT / "etc" / "api-paste.ini"
VENV_BIN = Path(sys.executable).parent

WSGIApp = Callable[[dict, Callable[..., Any]], Iterable[bytes]]

USER_FIELDS = {
    "name": "alice",
    "email": "alice@example.com",
    "enabled": True,
    "description": "benchmark user",
}

PACKAGES = ("WebOb", "oslo.middleware", "Flask", "waitress", "gunicorn", "Routes", "PasteDeploy")


# -- workspace ------------------------------------------------------------------------------


class Workspace:
    """A temporary copy of the shipped ini with a memory-driver ``myservice.conf`` and a token.

    The ini is copied byte for byte; only the ``myservice.conf`` next to it differs from
    ``etc/`` (``[storage] driver = memory``, ``state_path`` in the temporary directory).
    Use as a context manager; the directory is removed on exit.
    """

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="myservice-bench-"))
        self.ini = self.dir / "api-paste.ini"
        self.conf = self.dir / "myservice.conf"
        shutil.copyfile(SHIPPED_INI, self.ini)
        self.conf.write_text(
            "[DEFAULT]\nstate_path = %(here)s/state\n\n[storage]\ndriver = memory\n",
            encoding="utf-8",
        )
        out = subprocess.run(
            [
                str(VENV_BIN / "myservice-manage"),
                "--config-file",
                str(self.conf),
                "token",
                "create",
                "--user-id",
                "u",
                "--project-id",
                "p",
                "--role",
                "admin",
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        self.token = out.stdout.split()[0]

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def apply_shipped_logging(ini: Path) -> Any:
    """Apply the logging sections of ``ini`` (as ``paster serve`` / ``gunicorn --paste`` do)
    with ``sys.stderr`` pointing at ``/dev/null`` while the handlers are built, so the console
    handler of the shipped file writes every access-log line to ``/dev/null``.  Returns the
    ``/dev/null`` file (kept open for the life of the process)."""
    devnull = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - lives as long as logging
    saved = sys.stderr
    sys.stderr = devnull
    try:
        logging.config.fileConfig(str(ini), disable_existing_loggers=False)
    finally:
        sys.stderr = saved
    return devnull


# -- the applications -------------------------------------------------------------------------


def dump(body: Any) -> bytes:
    """Compact UTF-8 JSON, exactly as our ``Reply`` writes it."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class Lookup:
    """The users lookup every peer shares: the same driver instance, the same view, the same
    create path: the JSON body validated against the same JSON Schema by the same two
    validators as ours (the compiled ``fastjsonschema`` check first, ``jsonschema`` only when
    it rejects), so POST compares frameworks, not validation libraries."""

    def __init__(self, driver: Any) -> None:
        from myservice.api import schemas, users
        from myservice.storage.base import Conflict, NotFound

        self.driver = driver
        self.view = users.view
        self.not_found = NotFound
        self.conflict = Conflict
        self.validator = schemas.user_create
        self.jsonschema_valid = schemas.user_create.is_valid
        self.fast_valid = schemas.user_create_fast

    def show(self, user_id: str) -> bytes | None:
        try:
            user = self.driver.get_user(user_id)
        except self.not_found:
            return None
        return dump({"user": self.view(user)})

    def create(self, raw: bytes) -> tuple[int, bytes]:
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, b'{"error":"invalid JSON"}'
        if not (self.fast_valid(body) or self.jsonschema_valid(body)):
            return 400, b'{"error":"invalid user"}'
        fields = body["user"]
        values = {
            "name": fields["name"],
            "email": fields.get("email"),
            "enabled": fields.get("enabled", True),
            "description": fields.get("description"),
        }
        try:
            user = self.driver.create_user(values)
        except self.conflict:
            return 409, b'{"error":"conflict"}'
        return 201, dump({"user": self.view(user)})


PREFIX = "/v1/users/"
JSON_HEADERS = "application/json"


def raw_app(lookup: Lookup) -> WSGIApp:
    """(a) A raw WSGI callable: GET /v1/users/{id}, POST /v1/users."""
    statuses = {200: "200 OK", 201: "201 Created", 400: "400 Bad Request", 409: "409 Conflict"}

    def app(environ: dict, start_response: Callable[..., Any]) -> list[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ["REQUEST_METHOD"]
        if method == "GET" and path.startswith(PREFIX) and "/" not in path[10:]:
            data = lookup.show(path[10:])
            if data is not None:
                start_response(
                    "200 OK",
                    [("Content-Type", JSON_HEADERS), ("Content-Length", str(len(data)))],
                )
                return [data]
        elif method == "POST" and path == "/v1/users":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            status, data = lookup.create(environ["wsgi.input"].read(length))
            start_response(
                statuses[status],
                [("Content-Type", JSON_HEADERS), ("Content-Length", str(len(data)))],
            )
            return [data]
        start_response("404 Not Found", [("Content-Length", "0")])
        return []

    return app


#: environment variable giving ``spin_app``'s loop length (``http_bench.py --spin``)
SPIN_ENV = "MYSERVICE_BENCH_SPIN"


def spin_app(lookup: Lookup) -> WSGIApp:
    """A reference, not a peer: :func:`raw_app` behind a pure-Python loop of
    ``$MYSERVICE_BENCH_SPIN`` empty iterations.  The loop touches no data and makes no call,
    so it adds only CPU time, the same on every request; served next to ``raw`` and ``ours``
    it shows what a given amount of in-process work costs over HTTP."""
    inner = raw_app(lookup)
    spins = range(int(os.environ.get(SPIN_ENV, "0")))

    def app(environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        for _ in spins:
            pass
        return inner(environ, start_response)

    return app


def wsgify_app(lookup: Lookup) -> WSGIApp:
    """(b) The same as a ``webob.dec.wsgify`` application."""
    import webob
    import webob.dec
    import webob.exc

    @webob.dec.wsgify
    def app(req: webob.Request) -> webob.Response:
        path = req.path_info
        if req.method == "GET" and path.startswith(PREFIX) and "/" not in path[10:]:
            data = lookup.show(path[10:])
            if data is not None:
                return webob.Response(body=data, content_type=JSON_HEADERS, charset=None)
        elif req.method == "POST" and path == "/v1/users":
            status, data = lookup.create(req.body)
            return webob.Response(body=data, status=status, content_type=JSON_HEADERS, charset=None)
        return webob.exc.HTTPNotFound()

    return app


def flask_app(lookup: Lookup) -> WSGIApp:
    """(f) The same in Flask."""
    import flask

    app = flask.Flask("bench_flask")

    @app.get("/v1/users/<user_id>")
    def show(user_id: str) -> Any:
        data = lookup.show(user_id)
        if data is None:
            flask.abort(404)
        return flask.Response(data, content_type=JSON_HEADERS)

    @app.post("/v1/users")
    def create() -> Any:
        status, data = lookup.create(flask.request.get_data())
        return flask.Response(data, status=status, content_type=JSON_HEADERS)

    return app


def routes_app(lookup: Lookup) -> WSGIApp:
    """(g) The classic OpenStack router: ``routes.middleware.RoutesMiddleware`` over a
    ``Mapper``, dispatching to a ``wsgify`` controller (nova/keystone ``wsgi.Router``)."""
    import routes
    import routes.middleware
    import webob
    import webob.dec
    import webob.exc

    class UsersController:
        @webob.dec.wsgify
        def __call__(self, req: webob.Request) -> webob.Response:
            args = dict(req.environ["wsgiorg.routing_args"][1])
            action = args.pop("action")
            args.pop("controller", None)
            return getattr(self, action)(req, **args)

        def show(self, req: webob.Request, user_id: str) -> webob.Response:
            data = lookup.show(user_id)
            if data is None:
                return webob.exc.HTTPNotFound()
            return webob.Response(body=data, content_type=JSON_HEADERS, charset=None)

        def create(self, req: webob.Request) -> webob.Response:
            status, data = lookup.create(req.body)
            return webob.Response(body=data, status=status, content_type=JSON_HEADERS, charset=None)

    mapper = routes.Mapper()
    controller = UsersController()
    mapper.connect(
        "/v1/users/{user_id}",
        controller=controller,
        action="show",
        conditions={"method": ["GET"]},
    )
    mapper.connect(
        "/v1/users", controller=controller, action="create", conditions={"method": ["POST"]}
    )

    @webob.dec.wsgify
    def dispatch(req: webob.Request) -> Any:
        match = req.environ["wsgiorg.routing_args"][1]
        if not match:
            return webob.exc.HTTPNotFound()
        return match["controller"]

    return routes.middleware.RoutesMiddleware(dispatch, mapper)


def oslo_stack(app: WSGIApp) -> WSGIApp:
    """(c)/(g) ``app`` behind oslo.middleware's four filters, outermost first
    http_proxy_to_wsgi, request_id, catch_errors, sizelimit; proxy-header parsing on.

    The options come from a private ``oslo_config.cfg.ConfigOpts`` (as when they are set in
    the service's config file), not from a paste ``local_conf`` dict: with a dict,
    oslo.middleware calls ``set_override`` on every request, which would flatter us."""
    from oslo_config import cfg
    from oslo_middleware import catch_errors, http_proxy_to_wsgi, request_id, sizelimit

    conf = cfg.ConfigOpts()
    conf([], project="bench", default_config_files=[], default_config_dirs=[])
    inner = sizelimit.RequestBodySizeLimiter(app, conf)
    conf.set_override("max_request_body_size", 114688, group="oslo_middleware")
    inner = catch_errors.CatchErrors(inner, conf)
    inner = request_id.RequestId(inner, conf)
    inner = http_proxy_to_wsgi.HTTPProxyToWSGI(inner, conf)
    conf.set_override("enable_proxy_headers_parsing", True, group="oslo_middleware")
    return inner


def our_stack(app: WSGIApp, conf_file: Path) -> WSGIApp:
    """(d) ``app`` behind OUR four filters, same order and settings as :func:`oslo_stack`,
    each built by its paste ``filter_factory``."""
    from myservice.middleware import catch_errors, http_proxy_to_wsgi, request_id, sizelimit

    global_conf = {"config_file": str(conf_file), "here": str(conf_file.parent)}
    inner = sizelimit.filter_factory(global_conf, max_request_body_size="114688")(app)
    inner = catch_errors.filter_factory(global_conf)(inner)
    inner = request_id.filter_factory(global_conf)(inner)
    return http_proxy_to_wsgi.filter_factory(global_conf, enable_proxy_headers_parsing="true")(
        inner
    )


def ours_full(ws: Workspace) -> Any:
    """(e) Our whole application from the copied shipped ini (memory driver)."""
    from myservice.wsgi.loader import load_app

    return load_app(ws.ini)


def seed(driver: Any) -> str:
    """Create the benchmark user; its id."""
    return driver.create_user(dict(USER_FIELDS))["id"]


# -- calling and timing -----------------------------------------------------------------------


def make_environ(path: str, token: str | None = None, method: str = "GET") -> dict:
    """A prepared environ as waitress would hand it (plus ``X-Forwarded-For``)."""
    environ = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8790",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_HOST": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8790",
        "HTTP_ACCEPT": "application/json",
        "HTTP_USER_AGENT": "bench/1.0",
        "HTTP_X_FORWARDED_FOR": "203.0.113.7, 10.0.0.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if token:
        environ["HTTP_X_AUTH_TOKEN"] = token
    return environ


def call_wsgi(app: WSGIApp, environ: dict, start_response: Callable[..., Any]) -> bytes:
    """Call ``app`` once as a WSGI server would: the joined body, ``close()`` always called.

    ``environ`` is used as given (the caller prepares ``wsgi.input`` and copies it if needed).
    """
    result = app(environ, start_response)
    try:
        return b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()


def background_work(app: Any) -> Callable[[], None]:
    """A function that finishes, on the calling thread, what ``app`` left to its background
    threads: the queued lines of every ``access_log`` filter reachable from it (through
    ``URLMap`` prefixes and filters' ``app``) and the queued event hooks of its context.
    Timed loops call it at their end, so the background work of their requests is in their
    time (and not in the next case's)."""
    from myservice.middleware.access_log import AccessLog

    flushes: list[Callable[[], Any]] = []
    stack, seen = [app], set()
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, AccessLog):
            flushes.append(node.flush)
        stack.append(getattr(node, "app", None))
        stack.extend(sub for _prefix, sub in getattr(node, "_prefixes", ()))
        stack.append(getattr(node, "_root", None))
    hooks = getattr(getattr(app, "context", None), "hooks", None)
    if hooks is not None and hasattr(hooks, "flush"):
        flushes.append(lambda: hooks.flush(60))

    def finish() -> None:
        for flush in flushes:
            flush()

    return finish


@contextlib.contextmanager
def pinned_to_one_cpu(pin: bool = True) -> Iterator[int | None]:
    """Bind this process (and every thread it has or starts) to the first CPU it may use, so
    background threads' work is done on the same CPU as the timed loop and counted in its
    wall time; yields the CPU (None where affinity cannot be set, or ``pin`` is false) and
    gives the process back every CPU it had on exit (``run.py`` starts the HTTP servers and
    wrk afterwards, which inherit the affinity)."""
    if not pin or not hasattr(os, "sched_setaffinity"):
        yield None
        return
    before = os.sched_getaffinity(0)
    cpu = min(before)
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, before)


class Caller:
    """Calls a WSGI app like a server: fresh environ copy, start_response, iterate, close.
    ``settle`` finishes the app's background work (see :func:`background_work`)."""

    def __init__(self, app: WSGIApp, environ: dict) -> None:
        self.app = app
        self.environ = environ
        self.status: str | None = None
        self.headers: list = []
        self.settle: Callable[[], None] = background_work(app)

    def start_response(self, status: str, headers: list, exc_info: Any = None) -> None:
        self.status = status
        self.headers = headers

    def once(self) -> tuple[str | None, bytes]:
        env = dict(self.environ)
        env["wsgi.input"] = io.BytesIO(b"")
        body = call_wsgi(self.app, env, self.start_response)
        return self.status, body

    def loop(self, n: int) -> None:
        app, base, sr, new_input = self.app, self.environ, self.start_response, io.BytesIO
        for _ in range(n):
            env = dict(base)
            env["wsgi.input"] = new_input(b"")
            result = app(env, sr)
            for _chunk in result:
                pass
            close = getattr(result, "close", None)
            if close is not None:
                close()


class PostCaller(Caller):
    """Like :class:`Caller` for ``POST /v1/users``: every call sends a new JSON body with a
    unique name (``Content-Type: application/json``), as ``http_bench``'s wrk script does."""

    def __init__(self, app: WSGIApp, environ: dict, tag: str = "p") -> None:
        super().__init__(app, environ)
        self.tag = tag
        self.count = 0
        self.environ = dict(environ, CONTENT_TYPE="application/json")

    def _body(self) -> bytes:
        self.count += 1
        return b'{"user":{"name":"bench-%s-%d","email":"b@example.com"}}' % (
            self.tag.encode(),
            self.count,
        )

    def once(self) -> tuple[str | None, bytes]:
        env = dict(self.environ)
        data = self._body()
        env["wsgi.input"] = io.BytesIO(data)
        env["CONTENT_LENGTH"] = str(len(data))
        body = call_wsgi(self.app, env, self.start_response)
        return self.status, body

    def loop(self, n: int) -> None:
        app, base, sr, new_input = self.app, self.environ, self.start_response, io.BytesIO
        for _ in range(n):
            env = dict(base)
            data = self._body()
            env["wsgi.input"] = new_input(data)
            env["CONTENT_LENGTH"] = str(len(data))
            result = app(env, sr)
            for _chunk in result:
                pass
            close = getattr(result, "close", None)
            if close is not None:
                close()


# -- loopback servers -------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def healthcheck_ok(port: int, timeout: float) -> bool:
    """Whether ``GET /healthcheck`` on ``127.0.0.1:port`` answers 200 within ``timeout`` s.

    Any connection error (refused, reset, timed out) counts as not healthy, never raises.
    """
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        conn.request("GET", "/healthcheck")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


def summary(values: list[float]) -> tuple[float, float]:
    return min(values), statistics.median(values)


# -- reporting --------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    """Date, architecture, cores, Python and the versions of the packages compared."""
    date = subprocess.run(["date", "-u"], capture_output=True, text=True).stdout.strip()
    info = {
        "date": date,
        "machine": platform.machine(),
        "nproc": str(os.cpu_count()),
        "python": platform.python_version(),
    }
    for name in PACKAGES:
        try:
            info[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            info[name] = "absent"
    try:
        out = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
        info["wrk"] = (out.stdout or out.stderr).split()[1]
    except (OSError, IndexError):
        info["wrk"] = "absent"
    info["loadavg"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return info


def machine_line(info: dict[str, str]) -> str:
    pkgs = ", ".join(f"{k} {info[k]}" for k in (*PACKAGES, "wrk"))
    return (
        f"{info['date']}; {info['machine']}, nproc {info['nproc']} (shared), Python "
        f"{info['python']}; {pkgs}; load average at start {info['loadavg']}"
    )


def table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table (numbers right-aligned)."""
    out = ["| " + " | ".join(header) + " |"]
    out.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|")
    out.extend("| " + " | ".join(row) + " |" for row in rows)
    return "\n".join(out)


def ini_threads(ini: Path) -> str:
    parser = configparser.RawConfigParser(strict=False)
    parser.read(ini, encoding="utf-8")
    return parser.get("server:main", "threads", fallback="?")


# -- applications served in their own process (http_bench) -----------------------------------

WORKSPACE_ENV = "MYSERVICE_BENCH_WORKSPACE"


def server_app(kind: str) -> WSGIApp:
    """The application ``kind`` (``ours``, ``flask``, ``raw``, ``spin``) for a server process,
    over the workspace directory named by ``$MYSERVICE_BENCH_WORKSPACE``; one user is created
    and its id written to ``<workspace>/<kind>.id``.  ``ours`` is built from the copied shipped
    ini with its logging sections applied (console handler on ``/dev/null``); the peers get a
    ``MemoryDriver`` of their own.  Usable as a gunicorn factory (``_common:server_app('ours')``,
    with ``--preload`` so every worker inherits the seeded user)."""
    workdir = Path(os.environ[WORKSPACE_ENV])
    if kind == "ours":
        from myservice.wsgi.loader import load_app

        apply_shipped_logging(workdir / "api-paste.ini")
        app = load_app(workdir / "api-paste.ini")
        driver = app.context.storage
    else:
        from myservice import conf
        from myservice.storage.memory import MemoryDriver

        driver = MemoryDriver(conf.load(workdir / "myservice.conf"))
        driver.start()
        lookup = Lookup(driver)
        app = {"flask": flask_app, "raw": raw_app, "spin": spin_app}[kind](lookup)
    (workdir / f"{kind}.id").write_text(seed(driver), encoding="utf-8")
    return app
