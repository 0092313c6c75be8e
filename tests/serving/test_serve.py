"""End to end: the shipped ``etc/api-paste.ini`` served by ``paster serve`` (also with
``--reload``), ``gunicorn --paste``, and ``myservice-api`` (also with ``--reload``), each
as a subprocess on a free loopback port with its state in ``tmp_path``; start-up errors of
``myservice-api``; and concurrent writes against the served sqlite application.
"""

from __future__ import annotations

import re
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from myservice.middleware.request_id import is_request_id

from .helpers import (
    BIN,
    REPO,
    REQUEST_ID_HEADER,
    Server,
    answers,
    bump_mtime,
    child_env,
    copy_etc,
    create_token,
    create_users_concurrently,
    free_port,
    list_all_users,
    serving,
    wait_until,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return copy_etc(tmp_path / "etc")


def _assert_error(res, status: int) -> None:
    assert res.status == status, res.body
    rid = res.headers[REQUEST_ID_HEADER]
    assert is_request_id(rid)
    error = res.json["errors"][0]
    assert error["status"] == status
    assert error["request_id"] == rid


def exercise(server: Server, site: Path) -> None:
    """The same conversation with every server."""
    anonymous = server.client()
    try:
        res = anonymous.request("GET", "/")
        assert res.status == 200, res.body
        assert is_request_id(res.headers[REQUEST_ID_HEADER])
        assert "v1" in res.body.decode()

        res = anonymous.request("GET", "/healthcheck")
        assert res.status == 200, res.body
        assert is_request_id(res.headers[REQUEST_ID_HEADER])

        res = anonymous.request("GET", "/v1/users")
        _assert_error(res, 401)
        assert "www-authenticate" in res.headers

        _assert_error(anonymous.request("GET", "/no-such-thing"), 404)
    finally:
        anonymous.close()

    token = create_token(site / "myservice.conf", "admin")
    client = server.client(token)
    try:
        # the auth filter re-reads the token file at most once a second
        wait_until(
            lambda: client.request("GET", "/v1/users?limit=1").status == 200,
            server.proc,
            server.log,
            "waiting for the new token to be accepted",
        )
        name = f"user-{uuid.uuid4()}"
        res = client.request("POST", "/v1/users", {"user": {"name": name}})
        assert res.status == 201, res.body
        user = res.json["user"]
        assert user["name"] == name

        res = client.request("GET", f"/v1/users/{user['id']}")
        assert res.status == 200, res.body
        assert res.json["user"]["id"] == user["id"]

        listed = {u["id"]: u["name"] for u in list_all_users(client)}
        assert listed[user["id"]] == name
    finally:
        client.close()
    # the state lives in the copy of etc/, nowhere else
    assert (site / "state").is_dir()
    # the ini's logging sections are applied: myservice.log.Formatter puts the request id
    # on the access log lines (logged by the filter's thread within [access_log] interval,
    # written by the batching console handler within its 50 ms)
    access_line = re.compile(r" INFO myservice\.access \[req-[0-9a-f-]{36}\] ")
    wait_until(
        lambda: access_line.search(server.output()), server.proc, server.log, "the access log"
    )


def _count(server: Server, text: str) -> int:
    return server.output().count(text)


def _reload_and_exercise(server: Server, site: Path, started: str) -> None:
    before = _count(server, started)
    assert before >= 1, server.output()
    # Paste's reloader records a file's mtime on its first poll that sees the file, up to one
    # poll interval (1 s) after the child started, and only a later change restarts it; a
    # change made before that first record is never seen. Let two intervals pass first.
    time.sleep(2.5)
    bump_mtime(site / "api-paste.ini")
    wait_until(
        lambda: _count(server, started) > before,
        server.proc,
        server.log,
        "waiting for the restart",
    )
    wait_until(lambda: answers(server.port), server.proc, server.log, "after the restart")
    exercise(server, site)


# -- the servers ----------------------------------------------------------------------------


def test_paster_serve(site):
    port = free_port()
    command = [str(BIN / "paster"), "serve", "api-paste.ini", f"http_port={port}"]
    with serving(command, site, port) as server:
        exercise(server, site)
        assert re.search(
            rf" INFO waitress \[-\] Serving on http://127\.0\.0\.1:{port}", server.output()
        )


def test_paster_serve_from_the_source_tree(site):
    # The README's first command runs paster in the checkout, beside the myservice.egg-info
    # that `pip install -e .` leaves there; PasteScript then resolves myservice and every one of
    # its dependencies through pkg_resources, which must find them all (an old pkg_resources
    # misses distributions whose dist-info names were normalised, e.g. repoze_lru for Routes).
    assert (REPO / "myservice.egg-info").is_dir(), "pip install -e . leaves it in the checkout"
    port = free_port()
    command = [str(BIN / "paster"), "serve", str(site / "api-paste.ini"), f"http_port={port}"]
    with serving(command, REPO, port, log_dir=site) as server:
        exercise(server, site)


def test_paster_serve_reload(site):
    port = free_port()
    command = [str(BIN / "paster"), "serve", "--reload", "api-paste.ini", f"http_port={port}"]
    with serving(command, site, port, patient=True) as server:
        exercise(server, site)
        _reload_and_exercise(server, site, "Starting server in PID")


def test_gunicorn_paste_two_workers(site):
    port = free_port()
    command = [
        str(BIN / "gunicorn"),
        "--paste",
        "api-paste.ini",
        "-w",
        "2",
        "-b",
        f"127.0.0.1:{port}",
    ]
    with serving(command, site, port) as server:
        exercise(server, site)
        assert _count(server, "Booting worker") == 2, server.output()


def test_myservice_api(site):
    port = free_port()
    command = [str(BIN / "myservice-api"), "--port", str(port), "api-paste.ini"]
    with serving(command, site, port) as server:
        exercise(server, site)
        assert f"Serving on http://127.0.0.1:{port}" in server.output()


def test_myservice_api_reload(site):
    port = free_port()
    command = [str(BIN / "myservice-api"), "--reload", "--port", str(port), "api-paste.ini"]
    with serving(command, site, port, patient=True) as server:
        exercise(server, site)
        _reload_and_exercise(server, site, f"Serving on http://127.0.0.1:{port}")
        assert f"{site / 'api-paste.ini'}" in server.output()
        assert "changed; restarting" in server.output()


def test_myservice_api_default_ini_is_etc_api_paste_ini(tmp_path):
    copy_etc(tmp_path / "etc")
    port = free_port()
    with serving([str(BIN / "myservice-api"), "--port", str(port)], tmp_path, port) as server:
        res = server.client().request("GET", "/healthcheck")
        assert res.status == 200
    assert (tmp_path / "etc" / "state").is_dir()


# -- start-up errors --------------------------------------------------------------------------


def _start_fails(site: Path, *extra: str, port: int | None = None) -> str:
    """Run myservice-api in ``site``; it must exit 2 without a traceback; its last line."""
    port = free_port() if port is None else port
    done = subprocess.run(
        [str(BIN / "myservice-api"), *extra, "--port", str(port), "api-paste.ini"],
        cwd=site,
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env(site),
        check=False,
    )
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines, "no message on stderr"
    # log lines written while starting may precede it; the error is the last line
    return lines[-1]


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize("reload", [False, True], ids=["plain", "reload"])
def test_misspelled_filter(site, reload):
    _edit(site / "api-paste.ini", "use = egg:myservice#request_id", "use = egg:myservice#requst_id")
    line = _start_fails(site, *(["--reload"] if reload else []))
    ini = (site / "api-paste.ini").resolve()
    assert line.startswith(
        f"myservice-api: error: {ini} [filter:request_id]: use = egg:myservice#requst_id: "
        "no filter 'requst_id' in namespace myservice.middleware; did you mean 'request_id'? "
        "(known: "
    ), line
    known = line.split("(known: ", 1)[1].rstrip(")").split(", ")
    assert {"request_id", "auth", "sizelimit", "catch_errors", "cors"} <= set(known)


def _runner_fails(site: Path, command: list[str]) -> subprocess.CompletedProcess:
    done = subprocess.run(
        command, cwd=site, capture_output=True, text=True, timeout=120, env=child_env(site)
    )
    assert "Traceback" not in done.stdout + done.stderr, (done.stdout, done.stderr)
    return done


def test_paster_serve_prints_a_start_up_error_without_a_traceback(site):
    _edit(site / "myservice.conf", "driver = sqlite", "driver = sqlit")
    done = _runner_fails(
        site, [str(BIN / "paster"), "serve", "api-paste.ini", f"http_port={free_port()}"]
    )
    assert done.returncode == 2, (done.stdout, done.stderr)
    conf_file = (site / "myservice.conf").resolve()
    # PasteScript prints the message of its BadCommand on stdout, alone
    assert done.stdout.startswith(
        f"{conf_file}: [storage] driver = sqlit: no such storage driver; did you mean "
        "'sqlite'? (installed in 'myservice.storage': "
    ), done.stdout
    assert done.stdout.count("\n") == 1, done.stdout


def test_gunicorn_paste_prints_a_start_up_error_without_a_traceback(site):
    _edit(site / "api-paste.ini", "use = egg:myservice#request_id", "use = egg:myservice#requst_id")
    # one worker: with several, gunicorn 27's arbiter may reap a second failed worker while
    # halting and print its own HaltServer traceback (after our line) -- gunicorn's, not ours
    command = [str(BIN / "gunicorn"), "--paste", "api-paste.ini", "-w", "1"]
    done = _runner_fails(site, [*command, "-b", f"127.0.0.1:{free_port()}"])
    # gunicorn prints an AppImportError's message and stops: "App failed to load", status 4
    assert done.returncode == 4, done.stderr
    ini = (site / "api-paste.ini").resolve()
    message = (
        f"{ini} [filter:request_id]: use = egg:myservice#requst_id: no filter 'requst_id' in "
        "namespace myservice.middleware; did you mean 'request_id'?"
    )
    assert any(line.startswith(message) for line in done.stderr.splitlines()), done.stderr
    assert "Reason: App failed to load." in done.stderr


def test_unknown_storage_driver(site):
    _edit(site / "myservice.conf", "driver = sqlite", "driver = sqlit")
    line = _start_fails(site)
    conf_file = (site / "myservice.conf").resolve()
    assert line.startswith(
        f"myservice-api: error: {conf_file}: [storage] driver = sqlit: no such storage driver; "
        "did you mean 'sqlite'? (installed in 'myservice.storage': "
    ), line


def test_bad_config_value(site):
    _edit(site / "myservice.conf", "driver = sqlite", "driver = sqlite\npool_size = lots")
    line = _start_fails(site)
    conf_file = (site / "myservice.conf").resolve()
    assert line == (
        f"myservice-api: error: {conf_file}: [storage] pool_size: expected an integer, got 'lots'"
    )


def test_missing_config_file(site):
    (site / "myservice.conf").unlink()
    line = _start_fails(site)
    conf_file = (site / "myservice.conf").resolve()
    assert line == f"myservice-api: error: {conf_file}: configuration file not found"


def test_missing_ini(site):
    (site / "api-paste.ini").unlink()
    line = _start_fails(site)
    assert line == f"myservice-api: error: {(site / 'api-paste.ini').resolve()}: " + (
        "paste deploy file not found"
    )


def test_bad_server_option(site):
    _edit(site / "api-paste.ini", "threads = 8", "threads = many")
    line = _start_fails(site)
    ini = (site / "api-paste.ini").resolve()
    assert line.startswith(f"myservice-api: error: {ini} [server:main]: "), line
    assert "many" in line


def test_port_in_use(site):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        line = _start_fails(site, port=port)
    assert line.startswith(
        f"myservice-api: error: {(site / 'api-paste.ini').resolve()} [server:main]: "
        f"cannot listen on 127.0.0.1:{port}: "
    ), line


# -- concurrency ------------------------------------------------------------------------------


def test_concurrent_creates_against_served_sqlite(site):
    port = free_port()
    command = [str(BIN / "myservice-api"), "--port", str(port), "api-paste.ini"]
    with serving(command, site, port) as server:
        token = create_token(site / "myservice.conf", "admin")
        probe = server.client(token)
        wait_until(
            lambda: probe.request("GET", "/v1/users?limit=1").status == 200,
            server.proc,
            server.log,
            "waiting for the new token to be accepted",
        )
        probe.close()
        create_users_concurrently(server, token, "c")
