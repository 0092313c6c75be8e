"""auth: tokens from the store, 401 envelope, identity headers, reload on change."""

from __future__ import annotations

import json
import logging
import os
import stat

import pytest
from webtest import TestApp

from myservice import log, tokens
from myservice.conf import ConfigError
from myservice.middleware import auth, catch_errors, request_id
from tests.middleware.util import assert_envelope, build, echo_app


class FakeClock:
    """Monotonic clock the tests advance by hand (no sleeping)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def token_file(tmp_path):
    return tmp_path / "state" / "tokens.json"


@pytest.fixture
def store(token_file):
    return tokens.TokenStore(token_file)


@pytest.fixture
def clock():
    return FakeClock()


def make_app(store, clock, realm="myservice"):
    filtered = auth.TokenAuth(echo_app, store, realm, clock=clock)
    return TestApp(request_id.RequestId(catch_errors.CatchErrors(filtered)))


@pytest.fixture
def admin(store):
    token, _ = store.create("u1", "p1", ["admin", "reader"])
    return token


def assert_401(resp):
    error = assert_envelope(resp, 401, resp.headers["X-OpenStack-Request-ID"])
    assert resp.headers["WWW-Authenticate"] == 'Token realm="myservice"'
    return error


def test_valid_token_sets_identity_headers(store, clock, admin):
    resp = make_app(store, clock).get("/", headers={"X-Auth-Token": admin})
    data = resp.json
    assert data["HTTP_X_IDENTITY_STATUS"] == "Confirmed"
    assert data["HTTP_X_USER_ID"] == "u1"
    assert data["HTTP_X_PROJECT_ID"] == "p1"
    assert data["HTTP_X_ROLES"] == "admin,reader"


def test_bearer_authorization_is_accepted(store, clock, admin):
    resp = make_app(store, clock).get("/", headers={"Authorization": f"Bearer {admin}"})
    assert resp.json["HTTP_X_USER_ID"] == "u1"


def test_client_identity_headers_are_stripped(store, clock, admin):
    resp = make_app(store, clock).get(
        "/",
        headers={
            "X-Auth-Token": admin,
            "X-Identity-Status": "Confirmed",
            "X-User-Id": "root",
            "X-Project-Id": "other",
            "X-Roles": "admin,superuser",
            "X-User-Name": "root",
            "X-Service-Roles": "service",
            "X-Service-Token": "abc",
        },
    )
    data = resp.json
    assert data["HTTP_X_USER_ID"] == "u1"
    assert data["HTTP_X_PROJECT_ID"] == "p1"
    assert data["HTTP_X_ROLES"] == "admin,reader"
    assert data["HTTP_X_USER_NAME"] is None
    assert data["HTTP_X_SERVICE_ROLES"] is None
    assert data["HTTP_X_SERVICE_TOKEN"] is None


def wrong_secret(token):
    token_id, secret = token.split(".")
    return f"{token_id}.{secret[:-1]}{'A' if secret[-1] != 'A' else 'B'}"


@pytest.mark.parametrize(
    "make_headers",
    [
        lambda t: {},
        lambda t: {"X-Auth-Token": ""},
        lambda t: {"X-Auth-Token": "nonsense"},
        lambda t: {"X-Auth-Token": "0123456789abcdef.secret"},
        lambda t: {"X-Auth-Token": wrong_secret(t)},
        lambda t: {"X-Auth-Token": t.split(".")[0]},
        lambda t: {"Authorization": f"Basic {t}"},
        # spoofed identity without a token is not enough
        lambda t: {"X-Identity-Status": "Confirmed", "X-User-Id": "u1", "X-Roles": "admin"},
    ],
)
def test_bad_or_missing_token_is_401_saying_nothing(store, clock, admin, make_headers):
    resp = make_app(store, clock).get("/", headers=make_headers(admin), status=401)
    error = assert_401(resp)
    assert error["detail"] == auth.UNAUTHORIZED_DETAIL
    assert admin.split(".")[0] not in resp.text


def test_expired_token_is_rejected(store, clock, monkeypatch):
    token, record = store.create("u1", "p1", ["reader"], expires_in=60, now=1_000_000.0)
    app = make_app(store, clock)
    monkeypatch.setattr(tokens.time, "time", lambda: 1_000_059.0)
    app.get("/", headers={"X-Auth-Token": token})
    monkeypatch.setattr(tokens.time, "time", lambda: 1_000_060.0)
    assert_401(app.get("/", headers={"X-Auth-Token": token}, status=401))


def test_revocation_applies_after_reload_interval(store, clock, admin):
    app = make_app(store, clock)
    app.get("/", headers={"X-Auth-Token": admin})
    store.revoke(admin.split(".")[0])
    # within the interval the filter has not looked at the file again
    clock.now += auth.RELOAD_INTERVAL / 2
    app.get("/", headers={"X-Auth-Token": admin})
    clock.now += auth.RELOAD_INTERVAL
    assert_401(app.get("/", headers={"X-Auth-Token": admin}, status=401))


def test_new_token_and_file_creation_are_picked_up(store, clock, caplog):
    with caplog.at_level(logging.WARNING):
        app = make_app(store, clock)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "does not exist" in warnings[0] and "myservice-manage" in warnings[0]
    assert "token create" in warnings[0]
    token, _ = store.create("u2", "p2", ["reader"])
    # no waiting for the reload interval: an id the filter has not seen makes it look now
    assert app.get("/", headers={"X-Auth-Token": token}).json["HTTP_X_USER_ID"] == "u2"


def test_a_token_created_after_start_works_at_once_in_every_process(store, clock, admin):
    # two filters over one file stand for two gunicorn workers
    first, second = make_app(store, clock), make_app(store, clock)
    for app in (first, second):
        app.get("/", headers={"X-Auth-Token": admin})
    token, _ = store.create("u3", "p3", ["admin"])
    assert first.get("/", headers={"X-Auth-Token": token}).json["HTTP_X_USER_ID"] == "u3"
    assert second.get("/", headers={"X-Auth-Token": token}).json["HTTP_X_USER_ID"] == "u3"


def test_an_unknown_token_id_costs_one_stat_and_no_reload_when_unchanged(
    store, clock, admin, monkeypatch
):
    app = make_app(store, clock)
    stats, loads = [], []
    stamp, load = store.stamp, store.load
    monkeypatch.setattr(store, "stamp", lambda: stats.append(1) or stamp())
    monkeypatch.setattr(store, "load", lambda: loads.append(1) or load())
    for _ in range(3):
        assert_401(app.get("/", headers={"X-Auth-Token": "0123456789abcdef.secret"}, status=401))
    assert (len(stats), len(loads)) == (3, 0)


def test_file_is_not_statted_on_every_request(store, clock, admin, monkeypatch):
    app = make_app(store, clock)
    calls = []
    original = store.stamp
    monkeypatch.setattr(store, "stamp", lambda: calls.append(1) or original())
    for _ in range(5):
        app.get("/", headers={"X-Auth-Token": admin})
    assert calls == []
    clock.now += auth.RELOAD_INTERVAL
    for _ in range(5):
        app.get("/", headers={"X-Auth-Token": admin})
    assert calls == [1]


def test_broken_file_on_reload_keeps_previous_tokens(store, clock, admin, token_file, caplog):
    app = make_app(store, clock)
    token_file.write_text("{not json")
    clock.now += auth.RELOAD_INTERVAL
    with caplog.at_level(logging.ERROR):
        app.get("/", headers={"X-Auth-Token": admin})
    assert any(str(token_file) in r.getMessage() for r in caplog.records)


def test_a_broken_file_is_read_and_logged_once_per_change(
    store, clock, admin, token_file, caplog, monkeypatch
):
    app = make_app(store, clock)
    token_file.write_text("{not json")
    loads = []
    load = store.load
    monkeypatch.setattr(store, "load", lambda: loads.append(1) or load())
    unknown = {"X-Auth-Token": "0123456789abcdef.secret"}  # each asks for a reload
    with caplog.at_level(logging.ERROR):
        for _ in range(5):
            assert_401(app.get("/", headers=unknown, status=401))
        clock.now += auth.RELOAD_INTERVAL
        app.get("/", headers={"X-Auth-Token": admin})  # the previous tokens still work
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1 and len(loads) == 1
        assert "Token file not reloaded, keeping the previous tokens" in errors[0].getMessage()
        token_file.write_text("{still not json}")  # another version: read and said again
        app.get("/", headers=unknown, status=401)
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 2 and len(loads) == 2
    token_file.unlink()  # mended (here: removed, i.e. no tokens)
    new, _ = store.create("u9", "p9", ["admin"])
    assert app.get("/", headers={"X-Auth-Token": new}).json["HTTP_X_USER_ID"] == "u9"


def test_tokens_never_logged_and_request_id_in_log_lines(store, clock, admin, caplog):
    caplog.handler.addFilter(log.RequestIdFilter())
    app = make_app(store, clock)
    with caplog.at_level(logging.DEBUG):
        bad = app.get("/", headers={"X-Auth-Token": wrong_secret(admin)}, status=401)
        app.get("/", headers={"X-Auth-Token": admin})
        store.revoke(admin.split(".")[0])
        clock.now += auth.RELOAD_INTERVAL
        app.get("/", headers={"X-Auth-Token": admin}, status=401)
    secret = admin.split(".")[1]
    text = caplog.text + " ".join(str(r.__dict__) for r in caplog.records)
    assert secret not in text
    assert wrong_secret(admin).split(".")[1] not in text
    rid = bad.headers["X-OpenStack-Request-ID"]
    assert any(getattr(r, "request_id", None) == rid for r in caplog.records)


def test_factory_uses_conf_and_paste_options(paste_conf, tmp_path):
    path = tmp_path / "elsewhere.json"
    token, _ = tokens.TokenStore(path).create("u", "p", ["reader"])
    wrapped = build(auth, echo_app, paste_conf, token_file=str(path), www_authenticate_realm="r1")
    app = TestApp(wrapped)
    assert app.get("/", headers={"X-Auth-Token": token}).json["HTTP_X_USER_ID"] == "u"
    resp = app.get("/", status=401)
    assert resp.headers["WWW-Authenticate"] == 'Token realm="r1"'


def test_default_token_file_is_in_the_state_dir(paste_conf, tmp_path):
    token, _ = tokens.TokenStore(tmp_path / "state" / "tokens.json").create("u", "p", ["r"])
    app = TestApp(build(auth, echo_app, paste_conf))
    assert app.get("/", headers={"X-Auth-Token": token}).json["HTTP_X_ROLES"] == "r"


def test_bad_realm_is_a_config_error(paste_conf):
    with pytest.raises(ConfigError, match="www_authenticate_realm"):
        auth.filter_factory(paste_conf, www_authenticate_realm='a"b')


def test_malformed_token_file_stops_start_up_with_its_name(paste_conf, tmp_path):
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps({"version": 1, "tokens": {"abc": {"user_id": "u"}}}))
    with pytest.raises(ConfigError) as err:
        auth.filter_factory(paste_conf, token_file=str(path))
    assert str(path) in str(err.value) and "'abc'" in str(err.value)
    assert "secret_sha256" in str(err.value)


# -- the store -------------------------------------------------------------------------------


def test_store_keeps_only_a_hash_with_mode_0600(store, token_file, admin):
    token_id, secret = admin.split(".")
    text = token_file.read_text()
    assert secret not in text
    data = json.loads(text)["tokens"][token_id]
    assert data["secret_sha256"] == tokens.hash_secret(secret)
    assert data["roles"] == ["admin", "reader"]
    assert data["revoked"] is False and data["expires_at"] is None
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    assert not [p for p in token_file.parent.iterdir() if p.name.endswith(".tmp")]


def test_store_verify(store, admin):
    records = store.load()
    assert tokens.verify(records, admin).user_id == "u1"
    assert tokens.verify(records, wrong_secret(admin)) is None
    assert tokens.verify(records, "x") is None
    store.revoke(admin.split(".")[0])
    assert tokens.verify(store.load(), admin) is None


def test_store_revoke_unknown_names_closest(store, admin):
    token_id = admin.split(".")[0]
    with pytest.raises(tokens.TokenStoreError, match=f"did you mean '{token_id}'"):
        store.revoke(token_id[:-1] + ("0" if token_id[-1] != "0" else "1"))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"roles": []}, "at least one role"),
        ({"roles": ["a,b"]}, "without commas"),
        ({"user_id": ""}, "user id"),
        ({"expires_in": 0}, "positive"),
    ],
)
def test_store_create_validates(store, kwargs, match):
    args = {"user_id": "u", "project_id": "p", "roles": ["reader"], **kwargs}
    with pytest.raises(tokens.TokenStoreError, match=match):
        store.create(**args)


def test_concurrent_writers_lose_no_token(store):
    import threading

    def work():
        for _ in range(10):
            store.create("u", "p", ["reader"])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.load()) == 40


def test_start_up_warning_names_the_config_file(tmp_path, caplog):
    cfg = tmp_path / "myservice.conf"
    cfg.write_text("[DEFAULT]\nstate_path = %(here)s/st\n")
    with caplog.at_level(logging.WARNING):
        build(auth, echo_app, {"here": str(tmp_path), "config_file": str(cfg)})
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"--config-file {cfg}" in warning
    assert str(tmp_path / "st" / "tokens.json") in warning


def test_a_verified_token_is_remembered_until_the_file_changes(store, clock, admin, monkeypatch):
    calls = []
    real_verify = tokens.verify
    monkeypatch.setattr(tokens, "verify", lambda *a, **k: calls.append(1) or real_verify(*a, **k))
    app = make_app(store, clock)
    for _ in range(3):
        assert app.get("/", headers={"X-Auth-Token": admin}).json["HTTP_X_ROLES"] == "admin,reader"
    assert len(calls) == 1  # one SHA-256 for three requests
    # the same id with another secret is not the remembered token
    assert_401(app.get("/", headers={"X-Auth-Token": wrong_secret(admin)}, status=401))
    # a reload (here: a new token written to the file) starts over with the new records
    store.create("u2", "p2", ["reader"])
    clock.now += auth.RELOAD_INTERVAL
    calls.clear()
    app.get("/", headers={"X-Auth-Token": admin})
    assert len(calls) == 1


def test_the_memo_of_verified_tokens_is_bounded(store, clock, monkeypatch):
    monkeypatch.setattr(auth, "VERIFIED_MEMO_SIZE", 2)
    made = [store.create(f"u{i}", "p", ["reader"])[0] for i in range(5)]
    filtered = auth.TokenAuth(echo_app, store, "myservice", clock=clock)
    app = TestApp(filtered)
    for token in made + made:
        assert app.get("/", headers={"X-Auth-Token": token}).json["HTTP_X_USER_ID"]
    assert len(filtered._verified[1]) <= 2


def test_a_token_file_that_cannot_be_statted_keeps_the_tokens_and_is_retried(
    store, clock, admin, monkeypatch, caplog
):
    app = make_app(store, clock)
    stamp = store.stamp

    def unreadable():
        raise tokens.TokenFileUnreadable(f"{store.path}: cannot read token file: [Errno 13]")

    monkeypatch.setattr(store, "stamp", unreadable)
    clock.now += auth.RELOAD_INTERVAL
    with caplog.at_level(logging.ERROR):
        assert app.get("/", headers={"X-Auth-Token": admin}).status_int == 200
        clock.now += auth.RELOAD_INTERVAL
        app.get("/", headers={"X-Auth-Token": admin})
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "[Errno 13]" in errors[0].getMessage()
    monkeypatch.setattr(store, "stamp", stamp)  # readable again: the next check reloads
    new, _ = store.create("u7", "p7", ["admin"])
    clock.now += auth.RELOAD_INTERVAL
    assert app.get("/", headers={"X-Auth-Token": new}).json["HTTP_X_USER_ID"] == "u7"


def test_a_load_that_failed_to_read_is_tried_again_at_the_next_check(
    store, clock, admin, monkeypatch
):
    app = make_app(store, clock)
    revoked_id = admin.split(".")[0]
    store.revoke(revoked_id)
    load = store.load
    failures = [1]

    def flaky_load():
        if failures:
            failures.pop()
            raise tokens.TokenFileUnreadable(f"{store.path}: cannot read token file: EMFILE")
        return load()

    monkeypatch.setattr(store, "load", flaky_load)
    clock.now += auth.RELOAD_INTERVAL
    app.get("/", headers={"X-Auth-Token": admin})  # the reload failed: old tokens kept
    clock.now += auth.RELOAD_INTERVAL
    assert_401(app.get("/", headers={"X-Auth-Token": admin}, status=401))  # revocation seen


def test_a_token_file_that_is_not_utf8_is_read_once_per_change(
    store, clock, admin, token_file, monkeypatch
):
    app = make_app(store, clock)
    with open(token_file, "ab") as handle:
        handle.write(b"\xff" * 1000)
    loads = []
    load = store.load
    monkeypatch.setattr(store, "load", lambda: loads.append(1) or load())
    unknown = {"X-Auth-Token": "0123456789abcdef.secret"}  # each asks for a reload
    for _ in range(20):
        assert_401(app.get("/", headers=unknown, status=401))
    assert len(loads) == 1
    clock.now += auth.RELOAD_INTERVAL  # its content is at fault: not read again unchanged
    assert app.get("/", headers={"X-Auth-Token": admin}).status_int == 200  # kept
    assert len(loads) == 1


def test_an_unreadable_file_is_not_retried_before_the_interval(store, clock, admin, monkeypatch):
    app = make_app(store, clock)
    store.create("u8", "p8", ["reader"])  # the file changed: the next check reloads it
    loads = []

    def unreadable():
        loads.append(1)
        raise tokens.TokenFileUnreadable(f"{store.path}: cannot read token file: EMFILE")

    monkeypatch.setattr(store, "load", unreadable)
    unknown = {"X-Auth-Token": "0123456789abcdef.secret"}
    for _ in range(20):
        assert_401(app.get("/", headers=unknown, status=401))
    assert len(loads) == 1
    clock.now += auth.RELOAD_INTERVAL
    app.get("/", headers=unknown, status=401)
    assert len(loads) == 2


def test_a_second_failure_after_a_good_read_is_said_again(store, clock, admin, monkeypatch, caplog):
    app = make_app(store, clock)
    stamp = store.stamp

    def unreadable():
        raise tokens.TokenFileUnreadable(f"{store.path}: cannot read token file: [Errno 5]")

    with caplog.at_level(logging.ERROR):
        for broken in (True, False, True):
            monkeypatch.setattr(store, "stamp", unreadable if broken else stamp)
            clock.now += auth.RELOAD_INTERVAL
            app.get("/", headers={"X-Auth-Token": admin})
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 2
