"""``myservice-manage token create|list|revoke`` through ``myservice.cmd.manage.main``."""

from __future__ import annotations

import json
import os
import stat
import time

import pytest

from myservice import tokens
from myservice.cmd.manage import main


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "myservice.conf"
    path.write_text("[auth]\ntoken_file = %(here)s/secrets/tokens.json\n")
    return path


@pytest.fixture
def token_file(tmp_path):
    return tmp_path / "secrets" / "tokens.json"


def run(config, capsys, *argv):
    code = main(["--config-file", str(config), "token", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def create(config, capsys, *extra):
    return run(
        config,
        capsys,
        "create",
        "--user-id",
        "alice",
        "--project-id",
        "p1",
        "--role",
        "admin",
        *extra,
    )


def test_create_prints_the_token_once_and_stores_its_hash(config, capsys, token_file):
    code, out, err = create(config, capsys, "--role", "reader", "--expires-in", "3600")
    assert code == 0
    token = out.strip()
    assert out.count("\n") == 1  # the token alone, for TOKEN=$(...)
    token_id, secret = token.split(".")
    assert token_id in err and "only this once" in err
    assert secret not in err
    text = token_file.read_text()
    assert secret not in text
    record = json.loads(text)["tokens"][token_id]
    assert record["user_id"] == "alice" and record["project_id"] == "p1"
    assert record["roles"] == ["admin", "reader"]
    assert record["expires_at"] is not None
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    assert tokens.verify(tokens.TokenStore(token_file).load(), token).user_id == "alice"


def test_list_shows_no_secrets(config, capsys):
    _, out, _ = create(config, capsys)
    token_id, secret = out.strip().split(".")
    code, listing, _ = run(config, capsys, "list")
    assert code == 0
    header, row = listing.splitlines()
    assert header.split() == ["ID", "USER", "PROJECT", "ROLES", "CREATED", "EXPIRES", "STATUS"]
    cells = row.split()
    assert cells[:4] == [token_id, "alice", "p1", "admin"]
    assert cells[5:] == ["never", "active"]
    assert secret not in listing
    assert tokens.hash_secret(secret) not in listing


def test_revoke(config, capsys, token_file):
    _, out, _ = create(config, capsys)
    token = out.strip()
    token_id = token.split(".")[0]
    code, out, _ = run(config, capsys, "revoke", token_id)
    assert code == 0 and token_id in out
    assert tokens.verify(tokens.TokenStore(token_file).load(), token) is None
    _, listing, _ = run(config, capsys, "list")
    assert listing.splitlines()[1].split()[-1] == "revoked"


def test_revoke_unknown_is_one_line_exit_2(config, capsys):
    create(config, capsys)
    code, out, err = run(config, capsys, "revoke", "ffffffffffffffff")
    assert code == 2
    assert err.count("\n") == 1
    assert "no token with id 'ffffffffffffffff'" in err and "Traceback" not in err


def test_revoke_given_a_whole_token_does_not_echo_its_secret(config, capsys):
    _, out, _ = create(config, capsys)
    token_id, secret = out.strip().split(".")
    code, out, err = run(config, capsys, "revoke", f"{token_id}.{secret}")
    assert code == 0
    assert secret not in out + err


def test_bad_role_is_one_line_exit_2(config, capsys):
    code, _, err = create(config, capsys, "--role", "a,b")
    assert code == 2 and err.count("\n") == 1 and "without commas" in err


def test_bad_expiry_is_an_argument_error(config, capsys):
    with pytest.raises(SystemExit) as exc:
        create(config, capsys, "--expires-in", "-5")
    assert exc.value.code == 2
    assert "positive number of seconds" in capsys.readouterr().err


def test_missing_config_file_is_one_line_exit_2(tmp_path, capsys):
    code, _, err = run(tmp_path / "nope.conf", capsys, "list")
    assert code == 2 and err.count("\n") == 1 and "configuration file not found" in err


def test_corrupt_token_file_is_one_line_exit_2(config, capsys, token_file):
    token_file.parent.mkdir()
    token_file.write_text("[]")
    code, _, err = run(config, capsys, "list")
    assert code == 2 and err.count("\n") == 1 and str(token_file) in err


def test_list_empty(config, capsys):
    code, out, _ = run(config, capsys, "list")
    assert code == 0 and out.splitlines()[0].startswith("ID")


def test_a_role_no_rule_knows_is_warned_with_the_closest(config, capsys, token_file):
    code, out, err = create(config, capsys, "--role", "Readr")
    assert code == 0  # roles are free-form: an extension may use it
    token_id = out.strip().split(".")[0]
    assert err.startswith(
        "warning: role 'Readr' is granted nothing by the built-in policy rules (roles admin, "
        "reader); did you mean 'reader'? An API extension may use it, so the token is created "
        "anyway.\n"
    )
    assert json.loads(token_file.read_text())["tokens"][token_id]["roles"] == ["admin", "Readr"]


def test_known_roles_get_no_warning(config, capsys):
    _, _, err = create(config, capsys, "--role", "Reader")
    assert "warning" not in err


def test_purge_removes_revoked_and_expired_tokens_only(config, capsys, token_file, monkeypatch):
    ids = {}
    for name, extra in (("kept", ()), ("revoked", ()), ("expired", ("--expires-in", "60"))):
        _, out, _ = create(config, capsys, *extra)
        ids[name] = out.strip().split(".")[0]
    run(config, capsys, "revoke", ids["revoked"])
    later = time.time() + 120  # the 60-second token has expired by then
    monkeypatch.setattr("myservice.cmd.manage_token.time.time", lambda: later)
    code, out, err = run(config, capsys, "purge")
    assert code == 0
    lines = out.splitlines()  # one per token (in creation order: here one second, any)
    assert len(lines) == 2
    assert f"Removed token {ids['revoked']} (user alice; revoked)." in lines
    expired = f"Removed token {ids['expired']} (user alice; expired "
    assert [line for line in lines if line.startswith(expired)]
    assert err == f"2 token(s) removed from {token_file}.\n"
    assert set(json.loads(token_file.read_text())["tokens"]) == {ids["kept"]}
    mtime = token_file.stat().st_mtime_ns
    code, out, err = run(config, capsys, "purge")  # nothing left to remove: file untouched
    assert (code, out, err) == (0, "", f"0 token(s) removed from {token_file}.\n")
    assert token_file.stat().st_mtime_ns == mtime
