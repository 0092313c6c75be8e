"""``myservice-plugins``: list, check and pipeline, against fake distributions on sys.path.

Each test writes ``NAME-VERSION.dist-info`` directories (METADATA + entry_points.txt) and
the plugin modules into its own temporary directory, puts it on ``sys.path`` and points the
discovery cache at a temporary directory, then calls ``main([...])`` in process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from importlib.metadata import version
from pathlib import Path

import pytest

from myservice.cmd import plugins as cli


class FakeSite:
    """A directory on sys.path holding fake distributions and their modules."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.modules: list[str] = []

    def module(self, source: str) -> str:
        """Write a module with a unique name; return that name."""
        name = f"fakeplug_{uuid.uuid4().hex[:10]}"
        (self.root / f"{name}.py").write_text(textwrap.dedent(source))
        self.modules.append(name)
        return name

    def dist(self, name: str, version: str, entry_points: dict[str, dict[str, str]]) -> None:
        info = self.root / f"{name}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        text = "".join(
            f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()) + "\n"
            for group, eps in entry_points.items()
        )
        (info / "entry_points.txt").write_text(text)


def _marks(out: str) -> list[str]:
    """The ``!`` lines of ``myservice-plugins pipeline`` output, stripped."""
    return [line.strip() for line in out.splitlines() if line.strip().startswith("!")]


def _pipeline_marks(capsys, tmp_path: Path, ini_text: str) -> tuple[int, list[str]]:
    """Run ``pipeline`` on ``ini_text`` written to a file: its exit status and ``!`` lines."""
    path = tmp_path / "paste.ini"
    path.write_text(ini_text)
    code, out, _ = run(capsys, "pipeline", str(path))
    return code, _marks(out)


@pytest.fixture
def site(tmp_path, monkeypatch):
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.setenv("MYSERVICE_PLUGIN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.syspath_prepend(str(root))
    fake = FakeSite(root)
    yield fake
    for name in fake.modules:
        sys.modules.pop(name, None)


@pytest.fixture
def fake_ns(site):
    """Namespace ``fake.ns``: ``good`` loads, ``broken`` imports a missing module."""
    good = site.module("class Good:\n    pass\n")
    site.dist(
        "fakedist",
        "1.0",
        {
            "fake.ns": {"good": f"{good}:Good", "broken": "no_such_module_xyz:Thing"},
            "fake.clean": {"only": f"{good}:Good"},
        },
    )
    return good


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(err: str, *fragments: str) -> None:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0]


# -- list ----------------------------------------------------------------------------------


def test_list_shows_name_target_distribution_and_load_status(capsys, fake_ns):
    code, out, _ = run(capsys, "list", "fake.ns")
    assert code == 0
    assert out.splitlines()[0] == "fake.ns (2 plugins)"
    good = next(line for line in out.splitlines() if line.split()[0] == "good")
    assert good.split() == ["good", f"{fake_ns}:Good", "fakedist", "1.0", "ok"]
    broken = next(line for line in out.splitlines() if line.split()[0] == "broken")
    assert "no_such_module_xyz:Thing" in broken
    assert "fakedist 1.0" in broken
    assert "FAILED ModuleNotFoundError: No module named 'no_such_module_xyz'" in broken


def test_list_json(capsys, fake_ns):
    code, out, _ = run(capsys, "list", "fake.ns", "fake.clean", "--json")
    assert code == 0
    doc = json.loads(out)
    assert [ns["namespace"] for ns in doc["namespaces"]] == ["fake.ns", "fake.clean"]
    plugins = {p["name"]: p for p in doc["namespaces"][0]["plugins"]}
    assert plugins["good"] == {
        "namespace": "fake.ns",
        "name": "good",
        "target": f"{fake_ns}:Good",
        "distribution": "fakedist",
        "version": "1.0",
        "loads": True,
        "error": None,
        "status": "ok",
        "conflict": None,
    }
    assert plugins["broken"]["loads"] is False
    assert plugins["broken"]["status"] == "failed"
    assert plugins["broken"]["error"] == "ModuleNotFoundError: No module named 'no_such_module_xyz'"


def test_list_defaults_to_the_myservice_namespaces(capsys, fake_ns):
    code, out, _ = run(capsys, "list")
    assert code == 0
    headings = [line.split(" (")[0] for line in out.splitlines() if line and line[0] != " "]
    assert headings == list(cli.DEFAULT_NAMESPACES)


def test_list_all_shows_every_group(capsys, fake_ns):
    code, out, _ = run(capsys, "list", "--all", "--json")
    assert code == 0
    names = [ns["namespace"] for ns in json.loads(out)["namespaces"]]
    assert {"fake.ns", "fake.clean", *cli.DEFAULT_NAMESPACES} <= set(names)
    assert names == sorted(names)


def test_list_reports_an_import_error_raised_by_the_plugin_module(capsys, site):
    bad = site.module("raise RuntimeError('db at mysql://app:hunter2@db/x is down')\n")
    site.dist("baddist", "2.3", {"fake.raising": {"boom": f"{bad}:X"}})
    code, out, _ = run(capsys, "list", "fake.raising")
    assert code == 0
    assert "FAILED RuntimeError: db at mysql://app:***@db/x is down" in out
    assert "hunter2" not in out


def test_a_storage_driver_without_its_client_library_is_failed(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg -> ImportError
    code, out, _ = run(capsys, "check", "myservice.storage")
    assert code == 1
    assert "4 plugin(s) in 1 namespace(s): 3 load, 1 fail" in out
    code, out, _ = run(capsys, "list", "myservice.storage")
    assert code == 0
    (row,) = [line for line in out.splitlines() if line.strip().startswith("postgresql ")]
    assert (
        "FAILED StartupError: the postgresql storage driver needs the Python module 'psycopg'"
    ) in row
    assert "install it with: pip install 'myservice[postgresql]'" in row
    others = [line for line in out.splitlines() if line.strip().startswith(("mysql ", "sqlite "))]
    assert len(others) == 2
    assert all(line.rstrip().endswith(" ok") for line in others), others


def test_a_third_party_drivers_own_check_client_library_is_not_called_unbound(capsys, site):
    # an instance method of that name is the driver's business, not a class-level check
    mod = site.module(
        "class OwnDriver:\n"
        "    def check_client_library(self):\n"
        "        raise AssertionError('called without an instance')\n"
    )
    site.dist("owndriver", "1.0", {"myservice.storage": {"own": f"{mod}:OwnDriver"}})
    code, out, _ = run(capsys, "list", "myservice.storage")
    assert code == 0
    (row,) = [line for line in out.splitlines() if line.strip().startswith("own ")]
    assert row.rstrip().endswith(" ok"), row


def test_list_unknown_namespace_is_a_one_line_error_with_the_closest(capsys, fake_ns):
    code, out, err = run(capsys, "list", "fake.nss")
    assert code == 2
    assert out == ""
    assert_one_line_error(err, "unknown namespace 'fake.nss'", "closest: 'fake.ns'", "fake.clean")


# -- check ---------------------------------------------------------------------------------


def test_check_fails_when_a_plugin_does_not_load(capsys, fake_ns):
    code, out, _ = run(capsys, "check", "fake.clean", "fake.ns")
    assert code == 1
    failed = [line for line in out.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1
    assert "fake.ns: broken = no_such_module_xyz:Thing (fakedist 1.0)" in failed[0]
    assert out.splitlines()[-1] == "3 plugin(s) in 2 namespace(s): 2 load, 1 fail"


def test_check_passes_when_every_plugin_loads(capsys, fake_ns):
    code, out, _ = run(capsys, "check", "fake.clean")
    assert code == 0
    assert "FAILED" not in out


def test_check_unknown_namespace(capsys, fake_ns):
    code, _, err = run(capsys, "check", "fake.clen")
    assert code == 2
    assert_one_line_error(err, "unknown namespace 'fake.clen'", "closest: 'fake.clean'")


def test_check_needs_a_namespace(capsys, fake_ns):
    code, _, err = run(capsys, "check")
    assert code == 2
    assert_one_line_error(err, "NAMESPACE")


def test_no_command_is_a_one_line_error(capsys):
    code, _, err = run(capsys)
    assert code == 2
    assert_one_line_error(err, "myservice-plugins: error:")


_CHOICES = "(choose from 'list', 'check', 'pipeline')"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--config-file", "etc/myservice.conf", "list"],
            f"argument COMMAND: invalid choice: 'etc/myservice.conf' {_CHOICES} "
            "('--config-file' is an option of the commands check, list: put it after the "
            "command; did you mean 'myservice-plugins list --config-file etc/myservice.conf'?)",
        ),
        (
            ["--debug", "--config-file", "my.conf", "check", "fake.ns"],
            f"argument COMMAND: invalid choice: 'my.conf' {_CHOICES} "
            "('--config-file' is an option of the commands check, list: put it after the "
            "command; did you mean 'myservice-plugins --debug check --config-file my.conf "
            "fake.ns'?)",
        ),
        (
            ["--config-file=my.conf", "list"],
            "unrecognized arguments: --config-file=my.conf ('--config-file' is an option of "
            "the commands check, list: put it after the command; did you mean "
            "'myservice-plugins list --config-file=my.conf'?)",
        ),
        (
            ["--json", "list"],
            "unrecognized arguments: --json ('--json' is an option of the command list: put it "
            "after the command; did you mean 'myservice-plugins list --json'?)",
        ),
        (
            ["--json", "check", "fake.ns"],
            "unrecognized arguments: --json ('--json' is an option of the command list, not of "
            "check)",
        ),
        (
            ["--config-file", "my.conf"],
            f"argument COMMAND: invalid choice: 'my.conf' {_CHOICES} ('--config-file' is an "
            "option of the commands check, list: put it after the command)",
        ),
    ],
    ids=["before-list", "before-check", "equals", "flag", "not-of-the-command", "no-command"],
)
def test_an_option_of_a_command_before_the_command_says_where_it_belongs(
    capsys, fake_ns, argv, message
):
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "")
    assert err == f"myservice-plugins: error: {message} (see 'myservice-plugins --help')\n"


# -- pipeline ------------------------------------------------------------------------------

PASTE_INI = """\
[DEFAULT]
debug = false
admin_password = topsecret

[composite:main]
use = egg:Paste#urlmap
/ = versions
/v1 = apiv1

[pipeline:apiv1]
pipeline = request_id authtoken sizelimit api_v1

[pipeline:public]
pipeline = egg:fakepaste#request_id versions

[filter:request_id]
use = egg:fakepaste#request_id

[filter:authtoken]
paste.filter_factory = {module}:auth_factory
auth_url = http://keystone:5000/v3
connection = mysql+pymysql://myservice:hunter2@127.0.0.1/db
service_token = tok-123
Secret_Key = abc
log_file = %(here)s/auth.log

[filter:sizelimit]
use = egg:fakepaste#sizelimit
max_request_body_size = 1024

[app:api_v1]
use = egg:fakepaste#api_v1

[app:versions]
paste.app_factory = {module}:versions
"""


@pytest.fixture
def paste_ini(site, tmp_path):
    mod = site.module("def auth_factory(g, **l): pass\ndef versions(g, **l): pass\n")
    site.dist(
        "fakepaste",
        "0.3",
        {
            "paste.filter_factory": {
                "request_id": "fakemw.rid:factory",
                "sizelimit": "fakemw.size:factory",
            },
            "paste.app_factory": {"api_v1": "fakeapp.v1:factory"},
        },
    )
    path = tmp_path / "api-paste.ini"
    path.write_text(PASTE_INI.format(module=mod))
    return path, mod


def test_pipeline_prints_filters_in_order_with_their_factories(capsys, paste_ini):
    path, mod = paste_ini
    code, out, err = run(capsys, "pipeline", str(path))
    assert (code, err) == (0, "")
    lines = [line.strip() for line in out.splitlines()]
    apiv1 = lines[lines.index("[pipeline:apiv1]") : lines.index("[pipeline:public]")]
    steps = [line for line in apiv1 if line[:2] in ("1.", "2.", "3.") or line.startswith("app ")]
    assert steps == [
        "1. filter request_id",
        "2. filter authtoken",
        "3. filter sizelimit",
        "app api_v1",
    ]
    assert "use = egg:fakepaste#request_id -> fakemw.rid:factory" in apiv1
    assert f"paste.filter_factory = {mod}:auth_factory" in apiv1
    assert "max_request_body_size = 1024" in apiv1
    assert "use = egg:fakepaste#sizelimit -> fakemw.size:factory" in apiv1
    assert "use = egg:fakepaste#api_v1 -> fakeapp.v1:factory" in apiv1
    assert f"log_file = {path.parent}/auth.log" in apiv1
    # [DEFAULT] values are not repeated under every filter
    assert not any(line.startswith("debug") for line in apiv1)
    public = lines[lines.index("[pipeline:public]") :]
    assert public[1:3] == ["1. filter egg:fakepaste#request_id", "-> fakemw.rid:factory"]
    assert f"paste.app_factory = {mod}:versions" in public


def test_pipeline_masks_secrets(capsys, paste_ini):
    path, _ = paste_ini
    code, out, _ = run(capsys, "pipeline", str(path))
    assert code == 0
    for secret in ("hunter2", "tok-123", "topsecret", "abc\n"):
        assert secret not in out
    assert "connection = mysql+pymysql://myservice:***@127.0.0.1/db" in out
    assert "service_token = ***" in out
    assert "Secret_Key = ***" in out
    assert "auth_url = http://keystone:5000/v3" in out


def test_pipeline_missing_file(capsys, tmp_path):
    missing = tmp_path / "nope.ini"
    code, out, err = run(capsys, "pipeline", str(missing))
    assert code == 2
    assert out == ""
    assert_one_line_error(err, f"{missing}: no such file")


def test_pipeline_malformed_file(capsys, tmp_path):
    path = tmp_path / "bad.ini"
    path.write_text("pipeline = a b\n")
    code, out, err = run(capsys, "pipeline", str(path))
    assert (code, out) == (2, "")
    assert err == (
        f"myservice-plugins: error: {path}: line 1: 'pipeline = a b' comes before the first "
        "[section] header; expected a [section] line first\n"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # the lines after a header without "]" are read as part of the section above it
        (
            "[filter:a]\nuse = egg:x#a\n\n[filter:b\nuse = egg:x#b\n",
            "line 4: '[filter:b' is not a section header; did you mean [filter:b]? (the lines "
            "after it are read as part of [filter:a], where line 5 sets 'use' a second time)",
        ),
        (
            "[pipeline:main]\npipeline = a b\napp_b]\n",
            "line 3 [pipeline:main]: 'app_b]' is neither a [section] header nor a "
            "'name = value' line; did you mean [app_b]?",
        ),
        (
            "[filter:a]\nuse = egg:x#a\nuse = egg:x#b\n",
            "line 3 [filter:a]: option 'use' is set a second time in this section; keep one "
            "(an option may appear once per section)",
        ),
        # a broken first header with a ':' is an option line before any section
        (
            "[filter:a\nuse = egg:x#a\n",
            "line 1: '[filter:a' comes before the first [section] header; expected a "
            "[section] line first; did you mean [filter:a]?",
        ),
        # read without an error: '[server' = 'main', an option of [DEFAULT]
        (
            "[DEFAULT]\nhttp_port = 8790\n\n[server:main\nuse = egg:waitress#main\n",
            "line 4: '[server:main' is not a section header; did you mean [server:main]? (it "
            "and the lines after it are read as options of [DEFAULT])",
        ),
    ],
    ids=[
        "broken-header",
        "not-name-value",
        "duplicate-option",
        "broken-first-header",
        "broken-header-read-as-an-option",
    ],
)
def test_pipeline_ini_syntax_error_names_the_line_and_its_section(capsys, tmp_path, text, message):
    path = tmp_path / "bad.ini"
    path.write_text(text)
    code, out, err = run(capsys, "pipeline", str(path))
    assert (code, out) == (2, "")
    assert err == f"myservice-plugins: error: {path}: {message}\n"


def _shipped_paste_ini(tmp_path, old: str, new: str) -> Path:
    """A copy of the project's etc/api-paste.ini with the line ``old`` replaced by ``new``."""
    shipped = Path(__file__).resolve().parents[2] / "etc" / "api-paste.ini"
    if not shipped.is_file():
        pytest.skip(f"{shipped} is not there yet")
    text = shipped.read_text()
    if old not in text.splitlines():
        pytest.skip(f"{shipped} has no line {old!r} any more")
    path = tmp_path / "api-paste.ini"
    path.write_text("\n".join(new if line == old else line for line in text.splitlines()))
    return path


def test_pipeline_broken_header_in_the_shipped_paste_ini(capsys, tmp_path):
    path = _shipped_paste_ini(tmp_path, "[filter:cors]", "[filter:cors")
    lineno = path.read_text().splitlines().index("[filter:cors") + 1
    code, out, err = run(capsys, "pipeline", str(path))
    assert (code, out) == (2, "")
    assert err == (
        f"myservice-plugins: error: {path}: line {lineno}: '[filter:cors' is not a section "
        "header; did you mean [filter:cors]? (the lines after it are read as part of "
        f"[filter:catch_errors], where line {lineno + 1} sets 'use' a second time)\n"
    )


def test_pipeline_ending_in_a_filter_says_what_the_service_says(capsys, paste_ini):
    path, _ = paste_ini
    text = path.read_text()
    path.write_text(
        text.replace(
            "pipeline = request_id authtoken sizelimit api_v1",
            "pipeline = request_id authtoken api_v1 sizelimit",
        )
    )
    code, out, err = run(capsys, "pipeline", str(path))
    pipeline = "pipeline = request_id authtoken api_v1 sizelimit"
    fix = "; did you mean 'pipeline = request_id authtoken sizelimit api_v1'?"
    marks = _marks(out)
    assert marks == [
        f"! [pipeline:apiv1] {pipeline}: 'api_v1' is an application ([app:api_v1]): only the last "
        "name of a pipeline may be an application, every name before it must be a filter "
        f"(defined filters: authtoken, request_id, sizelimit){fix}",
        f"! [pipeline:apiv1] {pipeline}: the last name of a pipeline must be an application, but "
        "'sizelimit' is a filter ([filter:sizelimit]); end the pipeline with an application "
        f"(defined: api_v1, apiv1, main, public, versions){fix}",
    ]
    assert code == 1
    assert err == f"myservice-plugins: {path}: 2 problem(s), marked with '!'\n"


def test_pipeline_ending_in_a_filter_of_the_shipped_paste_ini(capsys, tmp_path):
    """The reported case: ``... sizelimit api_v1 auth`` in a copy of etc/api-paste.ini."""
    good = "pipeline = request_id http_proxy_to_wsgi access_log catch_errors cors sizelimit"
    path = _shipped_paste_ini(tmp_path, f"{good} auth api_v1", f"{good} api_v1 auth")
    code, out, _ = run(capsys, "pipeline", str(path))
    assert code == 1
    pipeline = f"{good} api_v1 auth"
    fix = f"; did you mean '{good} auth api_v1'?"
    marks = _marks(out)
    assert marks == [
        f"! [pipeline:api_v1_pipeline] {pipeline}: 'api_v1' is an application ([app:api_v1]): "
        "only the last name of a pipeline may be an application, every name before it must be "
        "a filter (defined filters: access_log, auth, catch_errors, cors, http_proxy_to_wsgi, "
        f"request_id, sizelimit){fix}",
        f"! [pipeline:api_v1_pipeline] {pipeline}: the last name of a pipeline must be an "
        "application, but 'auth' is a filter ([filter:auth]); end the pipeline with an "
        "application (defined: api_v1, api_v1_pipeline, healthcheck, healthcheck_pipeline, "
        f"main, versions, versions_pipeline){fix}",
    ]


def test_pipeline_with_two_applications_gets_no_reordering(capsys, tmp_path):
    code, marks = _pipeline_marks(
        capsys,
        tmp_path,
        "[pipeline:main]\npipeline = versions request_id api\n\n"
        "[filter:request_id]\npaste.filter_factory = x:f\n\n"
        "[app:versions]\npaste.app_factory = x:v\n\n[app:api]\npaste.app_factory = x:a\n",
    )
    assert code == 1
    assert marks == [
        "! [pipeline:main] pipeline = versions request_id api: 'versions' is an application "
        "([app:versions]): only the last name of a pipeline may be an application, every name "
        "before it must be a filter (defined filters: request_id)"
    ]


def test_pipeline_missing_section_is_offered_a_section_of_its_own_kind_only(capsys, tmp_path):
    code, marks = _pipeline_marks(
        capsys,
        tmp_path,
        "[pipeline:main]\npipeline = request_identity api\n\n"
        "[filter:cors]\npaste.filter_factory = x:f\n\n"
        "[app:request_identity2]\npaste.app_factory = x:a\n\n[app:api]\npaste.app_factory = x:a\n",
    )
    assert code == 1
    assert marks == ["! no section [filter:request_identity]"]


def test_pipeline_names_a_missing_filter_section_and_the_closest(capsys, site, tmp_path):
    path = tmp_path / "paste.ini"
    path.write_text(
        "[pipeline:main]\npipeline = request_ids api\n\n"
        "[filter:request_id]\npaste.filter_factory = x:f\n\n[app:api]\npaste.app_factory = x:a\n"
    )
    code, out, err = run(capsys, "pipeline", str(path))
    assert code == 1
    assert "! no section [filter:request_ids] (closest: [filter:request_id])" in out
    assert_one_line_error(err, f"{path}: 1 problem(s)")


def test_pipeline_without_pipeline_sections(capsys, tmp_path):
    path = tmp_path / "paste.ini"
    path.write_text("[app:main]\nuse = egg:x#api\n")
    code, _, err = run(capsys, "pipeline", str(path))
    assert code == 1
    assert_one_line_error(err, f"{path}: no [pipeline:...] section")


# -- masking -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [
        ("password", "x", "***"),
        ("db_PASSWORD", "x", "***"),
        ("auth_token", "x", "***"),
        ("client_secret", "x", "***"),
        ("url", "amqp://guest:guest@127.0.0.1:5672//", "amqp://guest:***@127.0.0.1:5672//"),
        ("url", "postgresql://postgres@127.0.0.1/test", "postgresql://postgres@127.0.0.1/test"),
        ("url", "http://host:8080/path", "http://host:8080/path"),
        ("urls", "a://u:p@h b://v:q@i", "a://u:***@h b://v:***@i"),
        ("name", "plain", "plain"),
    ],
)
def test_mask_value(key, value, shown):
    assert cli.mask_value(key, value) == shown


def test_list_no_load_does_not_import(capsys, site):
    mod = site.module("raise RuntimeError('imported')\n")
    site.dist("lazydist", "1.0", {"fake.lazy": {"p": f"{mod}:X"}})
    code, out, _ = run(capsys, "list", "fake.lazy", "--no-load", "--json")
    assert code == 0
    (plugin,) = json.loads(out)["namespaces"][0]["plugins"]
    assert (plugin["loads"], plugin["error"]) == (None, None)
    assert mod not in sys.modules


def test_output_printed_by_a_plugin_import_does_not_corrupt_json(capsys, site):
    mod = site.module("print('hello from import')\nclass X:\n    pass\n")
    site.dist("chatty", "1.0", {"fake.chatty": {"p": f"{mod}:X"}})
    code, out, _ = run(capsys, "list", "fake.chatty", "--json")
    assert code == 0
    assert json.loads(out)["namespaces"][0]["plugins"][0]["loads"] is True


def test_pipeline_of_the_shipped_paste_ini(capsys):
    """The project's own etc/api-paste.ini: every pipeline shown, no missing section."""
    import configparser

    path = Path(__file__).resolve().parents[2] / "etc" / "api-paste.ini"
    if not path.is_file():
        pytest.skip(f"{path} is not there yet")
    parser = configparser.RawConfigParser()
    parser.read(path)
    pipelines = [s for s in parser.sections() if s.startswith("pipeline:")]
    code, out, err = run(capsys, "pipeline", str(path))
    assert (code, err) == (0, "")
    assert [line for line in out.splitlines() if line.startswith("[pipeline:")] == [
        f"[{s}]" for s in pipelines
    ]
    assert "!" not in out


# -- API extensions are initialised the way the service does it ----------------------------

_EXTENSIONS = "myservice.api.extensions"


@pytest.fixture
def extension_site(site):
    """Three API extensions in a fake distribution: one that works, one whose constructor
    raises, one whose ``add_routes`` raises.  They import fine: only initialising shows the
    two broken ones."""
    mod = site.module(
        """
        from myservice.api import policy
        from myservice.api.extensions import APIExtension

        class Fine(APIExtension):
            alias = "fine_ext"
            name = description = "fine"
            updated = "2026-01-01T00:00:00Z"

            def add_routes(self, router):
                router.add_route("GET", "/fine", lambda req, ctx: None, policy.READ)

        class BadInit(Fine):
            alias = "badinit_ext"

            def __init__(self, conf):
                raise RuntimeError("needs [plugin:badinit_ext] url")

        class BadRoutes(Fine):
            alias = "badroutes_ext"

            def add_routes(self, router):
                raise ValueError("route table is wrong")
        """
    )
    site.dist(
        "extdist",
        "0.3",
        {
            _EXTENSIONS: {
                "fine_ext": f"{mod}:Fine",
                "badinit_ext": f"{mod}:BadInit",
                "badroutes_ext": f"{mod}:BadRoutes",
            }
        },
    )
    return mod


def test_list_shows_extensions_that_fail_to_initialise_as_failed(capsys, extension_site):
    code, out, _ = run(capsys, "list", _EXTENSIONS, "--json")
    assert code == 0
    plugins = {p["name"]: p for p in json.loads(out)["namespaces"][0]["plugins"]}
    assert plugins["fine_ext"]["loads"] is True
    assert plugins["badinit_ext"]["loads"] is False
    assert plugins["badinit_ext"]["error"] == "RuntimeError: needs [plugin:badinit_ext] url"
    assert plugins["badroutes_ext"]["loads"] is False
    assert plugins["badroutes_ext"]["error"] == "ValueError: route table is wrong"


def test_check_fails_on_an_extension_that_fails_to_initialise(capsys, extension_site):
    code, out, _ = run(capsys, "check", _EXTENSIONS)
    assert code == 1
    failed = sorted(line for line in out.splitlines() if line.startswith("FAILED"))
    assert len(failed) == 2
    assert "badinit_ext" in failed[0] and "badroutes_ext" in failed[1]


def test_extensions_are_initialised_with_the_given_config_file(capsys, site, tmp_path):
    mod = site.module(
        """
        from myservice.api.extensions import APIExtension

        class NeedsOption(APIExtension):
            alias = "opt_ext"
            name = description = "needs an option"
            updated = "2026-01-01T00:00:00Z"

            def __init__(self, conf):
                if not conf.plugin_options("opt_ext").get("url"):
                    raise ValueError("[plugin:opt_ext] url is empty")
                super().__init__(conf)

            def add_routes(self, router):
                pass
        """
    )
    site.dist("optdist", "1.0", {_EXTENSIONS: {"opt_ext": f"{mod}:NeedsOption"}})
    conf_file = tmp_path / "myservice.conf"
    conf_file.write_text("[plugin:opt_ext]\nurl = http://example.invalid/\n")
    assert run(capsys, "check", _EXTENSIONS)[0] == 1  # defaults: the option is missing
    code, out, _ = run(capsys, "check", _EXTENSIONS, "--config-file", str(conf_file))
    assert code == 0, out


def test_a_bad_config_file_is_a_one_line_error(capsys, extension_site, tmp_path):
    conf_file = tmp_path / "myservice.conf"
    conf_file.write_text("[storag]\ndriver = memory\n")
    code, _, err = run(capsys, "list", _EXTENSIONS, "--config-file", str(conf_file))
    assert code == 2
    assert_one_line_error(err, "[storag]: unknown section", "did you mean [storage]")


def test_a_plugin_that_calls_sys_exit_on_import_is_a_failure_not_the_end(capsys, site):
    quitter = site.module("import sys\nsys.exit(1)\n")
    good = site.module("class Good:\n    pass\n")
    site.dist("quitdist", "1.0", {"fake.quits": {"quits": f"{quitter}:X", "good": f"{good}:Good"}})
    code, out, _ = run(capsys, "list", "fake.quits", "--json")
    assert code == 0
    plugins = {p["name"]: p for p in json.loads(out)["namespaces"][0]["plugins"]}
    assert plugins["quits"]["loads"] is False
    assert plugins["quits"]["error"] == "SystemExit: 1"
    assert plugins["good"]["loads"] is True


# -- a name provided by two distributions --------------------------------------------------

_MINE = f"myservice {version('myservice')}"


def _conflict(name: str, providers: str, consequence: str) -> str:
    return f"{name!r} is provided by {providers}: {consequence}; uninstall all but one of them"


def test_a_storage_driver_provided_twice_is_a_conflict_that_check_fails_on(
    capsys, site, make_conf, tmp_path
):
    mod = site.module("class OtherSQLite:\n    pass\n")
    site.dist("otherstore", "2.0", {"myservice.storage": {"sqlite": f"{mod}:OtherSQLite"}})
    expected = _conflict(
        "sqlite", f"otherstore 2.0 and {_MINE}", "[storage] driver = sqlite refuses to start"
    )

    code, out, _ = run(capsys, "list", "myservice.storage", "--json")
    assert code == 0  # list reports, check decides
    plugins = json.loads(out)["namespaces"][0]["plugins"]
    sqlite = [p for p in plugins if p["name"] == "sqlite"]
    assert [(p["distribution"], p["status"], p["conflict"]) for p in sqlite] == [
        ("otherstore", "conflict", expected),
        ("myservice", "conflict", expected),
    ]
    assert [p["conflict"] for p in plugins if p["name"] != "sqlite"] == [None, None, None]

    code, out, _ = run(capsys, "list", "myservice.storage")
    rows = [line.split(None, 4) for line in out.splitlines()[2:]]
    assert [row[4] for row in rows if row[0] == "sqlite"] == [f"CONFLICT {expected}"] * 2

    code, out, _ = run(capsys, "check", "myservice.storage")
    assert code == 1
    assert [line for line in out.splitlines() if line.startswith("CONFLICT")] == [
        f"CONFLICT myservice.storage: sqlite = {mod}:OtherSQLite (otherstore 2.0): {expected}",
        "CONFLICT myservice.storage: sqlite = myservice.storage.sql:SQLiteDriver "
        f"({_MINE}): {expected}",
    ]
    assert out.splitlines()[-1] == "5 plugin(s) in 1 namespace(s): 5 load, 0 fail, 2 in conflict"

    # what check reports is what the service does
    from myservice.conf import ConfigError
    from myservice.wsgi.context import load_storage

    with pytest.raises(ConfigError, match="more than one installed package provides"):
        load_storage(make_conf(tmp_path, "sqlite"))


def test_a_middleware_plugin_provided_twice_is_a_conflict(capsys, site):
    mod = site.module("def factory(global_conf, **local_conf):\n    return lambda app: app\n")
    site.dist("acmemw", "1.0", {"myservice.middleware": {"request_id": f"{mod}:factory"}})
    code, out, _ = run(capsys, "check", "myservice.middleware")
    assert code == 1
    consequence = (
        "a [filter:...] with 'use = egg:myservice#plugin' and 'plugin = request_id' refuses to load"
    )
    expected = _conflict("request_id", f"acmemw 1.0 and {_MINE}", consequence)
    assert [line for line in out.splitlines() if line.startswith("CONFLICT")] == [
        f"CONFLICT myservice.middleware: request_id = {mod}:factory (acmemw 1.0): {expected}",
        "CONFLICT myservice.middleware: request_id = "
        f"myservice.middleware.request_id:filter_factory ({_MINE}): {expected}",
    ]

    from myservice.conf import ConfigError
    from myservice.middleware import plugin_filter_factory

    with pytest.raises(ConfigError, match="plugin = request_id"):
        plugin_filter_factory({}, plugin="request_id")


def test_an_api_extension_provided_twice_is_a_conflict(capsys, site):
    mod = site.module(
        """
        from myservice.api.extensions import APIExtension

        class Metadata(APIExtension):
            alias = "user_metadata"
            name = description = "a third-party user_metadata"
            updated = "2026-01-01T00:00:00Z"

            def add_routes(self, router):
                pass
        """
    )
    site.dist("metafork", "0.1", {_EXTENSIONS: {"user_metadata": f"{mod}:Metadata"}})
    code, out, _ = run(capsys, "list", _EXTENSIONS, "--json")
    assert code == 0
    rows = [p for p in json.loads(out)["namespaces"][0]["plugins"] if p["name"] == "user_metadata"]
    assert [(p["distribution"], p["loads"], p["status"]) for p in rows] == [
        ("metafork", True, "conflict"),
        ("myservice", True, "conflict"),
    ]
    assert rows[0]["conflict"] == _conflict(
        "user_metadata",
        f"metafork 0.1 and {_MINE}",
        "the service refuses to start while [api] extensions enables 'user_metadata' "
        "('*', the default, enables every one)",
    )
    assert run(capsys, "check", _EXTENSIONS)[0] == 1

    from myservice import conf as conf_mod
    from myservice.api.extensions.loading import load_extensions

    with pytest.raises(conf_mod.ConfigError, match="more than one installed package"):
        load_extensions(conf_mod.defaults())


HOOK_SOURCE = """
from myservice.hooks.base import HookNotConfigured

class Hook:
    name = "acme"

    def __init__(self, conf):
        pass

    def __call__(self, event):
        pass

class Broken(Hook):
    name = "broken"

    def __init__(self, conf):
        raise ValueError("[plugin:broken] url is required")

class Off(Hook):
    name = "off"

    def __init__(self, conf):
        raise HookNotConfigured("[plugin:off] url is empty")
"""


def test_hooks_are_constructed_as_the_service_does(capsys, site, tmp_path):
    mod = site.module(HOOK_SOURCE)
    targets = {"acme.a": f"{mod}:Broken", "acme.b": f"{mod}:Off", "acme.c": f"{mod}:Hook"}
    site.dist("acmehooks", "1.0", {"myservice.hooks": targets})
    code, out, _ = run(capsys, "list", "myservice.hooks", "--json")
    assert code == 0
    rows = {p["name"]: p for p in json.loads(out)["namespaces"][0]["plugins"]}
    assert (rows["acme.a"]["status"], rows["acme.a"]["error"]) == (
        "failed",
        "ValueError: [plugin:broken] url is required",
    )
    # turned off by its configuration: not a failure, as in the service
    assert (rows["acme.b"]["status"], rows["acme.c"]["status"]) == ("ok", "ok")
    # a hook the configuration disables is not constructed, as in the service
    conf = tmp_path / "myservice.conf"
    conf.write_text("[hooks]\ndisabled = broken\n")
    code, out, _ = run(capsys, "check", "myservice.hooks", "--config-file", str(conf))
    assert code == 0, out


def test_several_hooks_for_one_event_are_not_a_conflict(capsys, site):
    mod = site.module(HOOK_SOURCE)
    site.dist("acmehooks", "1.0", {"myservice.hooks": {"user.create": f"{mod}:Hook"}})
    code, out, _ = run(capsys, "list", "myservice.hooks", "--json")
    assert code == 0
    rows = json.loads(out)["namespaces"][0]["plugins"]
    creates = [(p["distribution"], p["status"]) for p in rows if p["name"] == "user.create"]
    assert creates == [("acmehooks", "ok"), ("myservice", "ok")]
    code, out, _ = run(capsys, "check", "myservice.hooks")
    assert code == 0, out
    assert "CONFLICT" not in out


def test_a_third_party_namespace_with_a_name_provided_twice_is_not_judged(capsys, site):
    mod = site.module("class X:\n    pass\n")
    site.dist("one", "1.0", {"fake.shared": {"same": f"{mod}:X"}})
    site.dist("two", "1.0", {"fake.shared": {"same": f"{mod}:X"}})
    code, out, _ = run(capsys, "check", "fake.shared")
    assert (code, out) == (0, "2 plugin(s) in 1 namespace(s): 2 load, 0 fail\n")


def test_list_no_load_still_shows_a_conflict(capsys, site):
    mod = site.module("raise RuntimeError('imported')\n")
    site.dist("otherstore", "2.0", {"myservice.storage": {"memory": f"{mod}:X"}})
    code, out, _ = run(capsys, "list", "myservice.storage", "--no-load", "--json")
    assert code == 0
    statuses = [(p["name"], p["status"]) for p in json.loads(out)["namespaces"][0]["plugins"]]
    assert statuses == [
        ("memory", "conflict"),
        ("memory", "conflict"),
        ("mysql", "unchecked"),
        ("postgresql", "unchecked"),
        ("sqlite", "unchecked"),
    ]
    assert mod not in sys.modules


# -- pipeline: egg entry points and middleware plugins are resolved -------------------------


def _names(group: str, dist: str | None = None) -> str:
    from myservice.plugins.discovery import get_entry_points

    eps = get_entry_points(group)
    return ", ".join(sorted({ep.name for ep in eps if dist is None or ep.dist.name == dist}))


BROKEN_PASTE_INI = """\
[pipeline:main]
pipeline = request_id acme noplugin twice egg:myservice#sizelimt other bare nothing api

[filter:request_id]
use = egg:myservice#requst_id

[filter:acme]
use = egg:myservice#plugin
plugin = acme_tg

[filter:noplugin]
use = egg:myservice#plugin

[filter:twice]
use = egg:myservice#plugin
plugin = twice_mw

[filter:other]
use = egg:myservise#cors

[filter:bare]
use = request_idd

[filter:nothing]
some_option = 1

[app:api]
use = egg:myservice#api_v2
"""


@pytest.fixture
def middleware_site(site):
    mod = site.module("def factory(global_conf, **local_conf):\n    return lambda app: app\n")
    site.dist(
        "acmedist",
        "1.0",
        {"myservice.middleware": {"acme_tag": f"{mod}:factory", "twice_mw": f"{mod}:factory"}},
    )
    site.dist("acmefork", "1.1", {"myservice.middleware": {"twice_mw": f"{mod}:factory"}})
    return mod


def test_pipeline_marks_every_unresolvable_filter_and_app_with_the_closest(
    capsys, middleware_site, tmp_path
):
    path = tmp_path / "paste.ini"
    path.write_text(BROKEN_PASTE_INI)
    code, out, err = run(capsys, "pipeline", str(path))
    filters = "paste.filter_factory or paste.filter_app_factory"
    my_filters = ", ".join(
        sorted(
            {
                *_names("paste.filter_factory", "myservice").split(", "),
                *(_names("paste.filter_app_factory", "myservice") or "").split(", "),
            }
            - {""}
        )
    )
    my_apps = ", ".join(
        sorted(
            set(_names("paste.app_factory", "myservice").split(", "))
            | set(_names("paste.composite_factory", "myservice").split(", "))
        )
    )
    marks = _marks(out)
    assert marks == [
        f"! [filter:request_id] use = egg:myservice#requst_id: myservice has no {filters} "
        f"entry point 'requst_id'; did you mean 'request_id'? (it has: {my_filters})",
        "! [filter:acme] plugin = acme_tg: no such middleware in namespace "
        "'myservice.middleware'; did you mean 'acme_tag'? "
        f"(installed: {_names('myservice.middleware')})",
        "! [filter:noplugin] 'use = egg:myservice#plugin' needs 'plugin = NAME', the name of "
        "a filter in the 'myservice.middleware' namespace",
        "! [filter:twice] plugin = twice_mw: more than one installed package provides it: "
        "acmedist 1.0 and acmefork 1.1; uninstall all but one of them",
        f"! [pipeline:main] egg:myservice#sizelimt: myservice has no {filters} entry point "
        f"'sizelimt'; did you mean 'sizelimit'? (it has: {my_filters})",
        f"! [filter:other] use = egg:myservise#cors: no installed distribution 'myservise' "
        f"provides {filters} entry points; did you mean 'myservice'?",
        "! [filter:bare] use = request_idd: no section [filter:request_idd] "
        "(closest: [filter:request_id])",
        "! [filter:nothing] has neither 'use' nor paste.filter_factory / paste.filter_app_factory",
        "! [app:api] use = egg:myservice#api_v2: myservice has no paste.app_factory or "
        f"paste.composite_factory entry point 'api_v2'; did you mean 'api_v1'? (it has: {my_apps})",
    ]
    assert code == 1
    assert_one_line_error(err, f"{path}: 9 problem(s), marked with '!'")


def test_pipeline_resolves_a_middleware_plugin(capsys, middleware_site, tmp_path):
    path = tmp_path / "paste.ini"
    path.write_text(
        "[pipeline:main]\npipeline = acme api\n\n"
        "[filter:acme]\nuse = egg:myservice#plugin\nplugin = acme_tag\nlevel = 3\n\n"
        "[app:api]\nuse = egg:myservice#api_v1\n"
    )
    code, out, err = run(capsys, "pipeline", str(path))
    assert (code, err) == (0, "")
    lines = [line.strip() for line in out.splitlines()]
    assert lines[lines.index("1. filter acme") + 1 :][:3] == [
        "use = egg:myservice#plugin -> myservice.middleware:plugin_filter_factory",
        f"plugin = acme_tag -> {middleware_site}:factory (acmedist 1.0)",
        "level = 3",
    ]
    assert "use = egg:myservice#api_v1 -> myservice.wsgi.app:api_v1_factory" in lines


# -- the installed command: exit statuses and a closed stdout ------------------------------


def _command() -> list[str]:
    script = Path(sys.executable).with_name("myservice-plugins")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "myservice.cmd.plugins"]


def _env(site: FakeSite, unbuffered: bool = False) -> dict[str, str]:
    """The environment of an operator's shell: stdout block-buffered into a pipe, unless
    ``unbuffered`` (PYTHONUNBUFFERED, which CI shells may set, is dropped otherwise)."""
    # MYSERVICE_PLUGIN_CACHE_DIR comes from the site fixture (monkeypatch.setenv)
    env = {**os.environ, "PYTHONPATH": str(site.root)}
    env.pop("PYTHONUNBUFFERED", None)
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    return env


def test_exit_statuses_of_the_installed_command(site, fake_ns, tmp_path):
    typo = tmp_path / "paste.ini"
    typo.write_text(
        "[pipeline:main]\npipeline = rid api\n\n[filter:rid]\nuse = egg:myservice#requst_id\n"
        "\n[app:api]\nuse = egg:myservice#api_v1\n"
    )
    cases = [
        (["list", "fake.ns"], 0),  # a FAILED row: list still exits 0
        (["list", "fake.ns", "--json"], 0),
        (["check", "fake.ns"], 1),
        (["check", "fake.clean"], 0),
        (["pipeline", str(typo)], 1),
        (["list", "fake.nss"], 2),
    ]
    seen = []
    for argv, _ in cases:
        proc = subprocess.run(
            _command() + argv, capture_output=True, text=True, env=_env(site), timeout=120
        )
        assert "Traceback" not in proc.stderr
        seen.append((argv, proc.returncode))
    assert seen == [(argv, code) for argv, code in cases]


@pytest.fixture
def many_plugins(site):
    """``fake.many``: 3000 entry points, far more output than a pipe buffer (64 KiB) holds."""
    site.dist(
        "manydist",
        "1.0",
        {"fake.many": {f"plugin_{i:04d}": f"fake_many_module:Plugin{i}" for i in range(3000)}},
    )


@pytest.mark.parametrize("unbuffered", [False, True], ids=["buffered", "unbuffered"])
@pytest.mark.parametrize(
    ("argv", "read", "first"),
    [
        (["list", "fake.many", "--no-load"], lambda f: f.readline(), b"fake.many (3000 plugins)\n"),
        (["list", "fake.many", "--no-load", "--json"], lambda f: f.read(10), b'{\n  "names'),
        (["list", "fake.many", "--no-load"], lambda f: b"", b""),  # closed before any write
        (["list", "--no-load"], lambda f: b"", b""),  # small output, all flushed at the end
    ],
    ids=["head-1", "json-head-c10", "closed-at-once", "closed-small-output"],
)
def test_a_closed_stdout_ends_quietly_with_status_141(
    site, many_plugins, argv, read, first, unbuffered
):
    proc = subprocess.Popen(
        _command() + argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(site, unbuffered),
    )
    try:
        assert read(proc.stdout) == first
        proc.stdout.close()  # as `| head` does when it has what it wants
        err = proc.stderr.read()
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (code, err.decode()) == (cli.EXIT_BROKEN_PIPE, "")
    assert cli.EXIT_BROKEN_PIPE == 141
