"""One conformance suite for every storage driver, by its entry-point name.

Every test runs against ``memory``, ``sqlite``, ``postgresql`` and ``mysql``.  A third-party
driver joins by name: add it to :data:`DRIVERS` (and, if it needs a URL, a fixture name to
:data:`CONNECTION_FIXTURES`), or run with ``MYSERVICE_TEST_EXTRA_DRIVERS=name1,name2`` and
``MYSERVICE_TEST_<NAME>_URL`` for its ``[storage] connection``.

Tests never assume an empty store: each one works with users of its own (a unique name
prefix), so the same schema can serve a whole session.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from myservice.plugins import DriverManager
from myservice.plugins.discovery import get_entry_points
from myservice.storage.base import (
    Conflict,
    MarkerNotFound,
    NotFound,
    StorageDriver,
)

#: fixture giving the ``[storage] connection`` of a driver (none: the driver's default)
CONNECTION_FIXTURES: dict[str, str] = {"postgresql": "postgresql_url", "mysql": "mysql_url"}
#: drivers whose data lives in the process only
PROCESS_LOCAL = {"memory"}
_MARKS = {"postgresql": [pytest.mark.postgresql], "mysql": [pytest.mark.mysql]}

#: third-party drivers joining the suite when installed (looked up by entry-point name, nothing
#: imported): ``jsonfile`` from ``examples/myservice_contrib`` (tests/examples/test_contrib.py
#: installs it in a fresh venv and runs this suite there with ``-k jsonfile``)
OPTIONAL_DRIVERS = ("jsonfile",)
_INSTALLED = {ep.name for ep in get_entry_points("myservice.storage")}

DRIVERS: list[str] = (
    ["memory", "sqlite", "postgresql", "mysql"]
    + [name for name in OPTIONAL_DRIVERS if name in _INSTALLED]
    + [
        name.strip()
        for name in os.environ.get("MYSERVICE_TEST_EXTRA_DRIVERS", "").split(",")
        if name.strip()
    ]
)

USER_KEYS = {"id", "name", "email", "enabled", "description", "created_at", "updated_at"}


def _connection(request: pytest.FixtureRequest, name: str) -> str:
    if name in CONNECTION_FIXTURES:
        return request.getfixturevalue(CONNECTION_FIXTURES[name])
    return os.environ.get(f"MYSERVICE_TEST_{name.upper()}_URL", "")


@pytest.fixture
def driver_conf(request: pytest.FixtureRequest, tmp_path, make_conf):
    name = request.param
    return make_conf(tmp_path, name, _connection(request, name), auto_upgrade=True)


def start_driver(conf) -> StorageDriver:
    """Load the driver named in ``conf`` through the plugin manager, as the service does."""
    driver = DriverManager(
        "myservice.storage", conf.storage.driver, invoke_on_load=True, invoke_args=(conf,)
    ).driver
    driver.start()
    return driver


@pytest.fixture
def driver(driver_conf) -> Iterator[StorageDriver]:
    driver = start_driver(driver_conf)
    yield driver
    driver.close()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "driver_conf" in metafunc.fixturenames:
        metafunc.parametrize(
            "driver_conf",
            [pytest.param(name, id=name, marks=_MARKS.get(name, [])) for name in DRIVERS],
            indirect=True,
        )


# -- helpers ------------------------------------------------------------------------------


class Users:
    """Makes users whose names share a prefix unique to one test."""

    def __init__(self, driver: StorageDriver) -> None:
        self.driver = driver
        self.prefix = f"t{uuid.uuid4().hex[:10]}-"

    def values(self, suffix: str, **overrides: Any) -> dict[str, Any]:
        values = {
            "name": self.prefix + suffix,
            "email": None,
            "enabled": True,
            "description": None,
        }
        values.update(overrides)
        return values

    def create(self, suffix: str, **overrides: Any) -> dict[str, Any]:
        return self.driver.create_user(self.values(suffix, **overrides))

    def listed(self, page: int = 7) -> list[dict[str, Any]]:
        """This test's users, by paging through every user of the store."""
        out: list[dict[str, Any]] = []
        marker = None
        while True:
            batch = self.driver.list_users(page, marker=marker)
            assert len(batch) <= page
            out.extend(u for u in batch if u["name"].startswith(self.prefix))
            if len(batch) < page:
                return out
            marker = batch[-1]["id"]


@pytest.fixture
def users(driver) -> Users:
    return Users(driver)


def _is_utc_aware(value: datetime) -> bool:
    return value.tzinfo is not None and value.utcoffset() == timedelta(0)


# -- create / get ---------------------------------------------------------------------------


def test_create_returns_the_stored_user(driver, users):
    before = datetime.now(UTC)
    user = users.create("a", email="a@example.org", enabled=False, description="first")
    after = datetime.now(UTC)
    assert set(user) == USER_KEYS
    assert user["name"] == users.prefix + "a"
    assert user["email"] == "a@example.org"
    assert user["enabled"] is False
    assert user["description"] == "first"
    assert str(uuid.UUID(user["id"])) == user["id"]
    assert user["created_at"] == user["updated_at"]
    assert before <= user["created_at"] <= after
    assert driver.get_user(user["id"]) == user


def test_ids_are_distinct(driver, users):
    ids = {users.create(str(i))["id"] for i in range(20)}
    assert len(ids) == 20


def test_timestamps_are_timezone_aware_utc_with_microseconds(driver, users):
    created = users.create("ts")
    fetched = driver.get_user(created["id"])
    for user in (created, fetched):
        assert _is_utc_aware(user["created_at"])
        assert _is_utc_aware(user["updated_at"])
    # exact round trip: no precision lost in storage
    assert fetched["created_at"] == created["created_at"]
    assert fetched["created_at"].microsecond == created["created_at"].microsecond
    listed = driver.list_users(1, name=created["name"])[0]
    assert _is_utc_aware(listed["created_at"]) and listed == fetched


def test_unknown_id_is_not_found(driver):
    missing = str(uuid.uuid4())
    with pytest.raises(NotFound):
        driver.get_user(missing)
    with pytest.raises(NotFound):
        driver.update_user(missing, {"email": "x@example.org"})
    with pytest.raises(NotFound):
        driver.delete_user(missing)


HOSTILE_IDS = [
    "../x",
    "' OR 1=1 --",
    '" OR ""="',
    "%",
    "_",
    "*",
    "",
    " ",
    "\x00",
    "a" * 37,
    "a" * 5000,
    "𝔘🙂",
    "\udc80",  # a lone surrogate: not even encodable
]


def test_ids_are_matched_verbatim(driver, users):
    user = users.create("victim")
    variants = [user["id"].upper(), user["id"] + " ", " " + user["id"], user["id"][:-1]]
    for bad in HOSTILE_IDS + [v for v in variants if v != user["id"]]:
        with pytest.raises(NotFound):
            driver.get_user(bad)
        with pytest.raises(NotFound):
            driver.update_user(bad, {"description": "hacked"})
        with pytest.raises(NotFound):
            driver.delete_user(bad)
        with pytest.raises(NotFound):
            driver.get_metadata(bad)
        with pytest.raises(NotFound):
            driver.set_metadata_item(bad, "k", "v")
        with pytest.raises(NotFound):
            driver.delete_metadata_item(bad, "k")
        with pytest.raises(MarkerNotFound):
            driver.list_users(5, marker=bad)
    assert driver.get_user(user["id"]) == user
    assert driver.get_metadata(user["id"]) == {}


# -- list -----------------------------------------------------------------------------------


def test_list_pages_follow_creation_order_across_boundaries(driver, users):
    # names in reverse alphabetical order and random ids: the order must be creation order
    made = [users.create(f"{9 - i}") for i in range(7)]
    first = made[0]
    rest = made[1:]
    assert driver.list_users(3, marker=first["id"]) == rest[0:3]
    assert driver.list_users(3, marker=rest[2]["id"]) == rest[3:6]
    assert driver.list_users(3, marker=rest[5]["id"]) == []
    assert driver.list_users(1, marker=first["id"]) == rest[:1]
    assert driver.list_users(100, marker=rest[3]["id"]) == rest[4:]
    # a full walk with several page sizes sees each of our users once, in order
    for page in (1, 2, 3, 50):
        assert users.listed(page) == made
    # without a marker the first page is the oldest users of the store
    everything = driver.list_users(10_000)
    assert driver.list_users(2) == everything[:2]
    assert [u for u in everything if u["name"].startswith(users.prefix)] == made


def test_list_order_survives_updates_and_deletes(driver, users):
    made = [users.create(str(i)) for i in range(5)]
    driver.update_user(made[1]["id"], {"name": users.prefix + "zz"})
    driver.delete_user(made[2]["id"])
    later = users.create("later")
    names = [u["name"] for u in users.listed(2)]
    expected = [users.prefix + s for s in ("0", "zz", "3", "4", "later")]
    assert names == expected
    assert driver.list_users(2, marker=made[3]["id"]) == [driver.get_user(made[4]["id"]), later]


def test_list_is_stable_across_driver_instances(driver, driver_conf, users):
    made = [users.create(str(i)) for i in range(4)]
    other = start_driver(driver_conf)
    try:
        if driver_conf.storage.driver in PROCESS_LOCAL:
            # no shared data: another instance is a separate, independent store
            assert Users.listed(_with_prefix(other, users.prefix), 3) == []
            return
        assert other.list_users(2, marker=made[0]["id"]) == made[1:3]
        assert Users.listed(_with_prefix(other, users.prefix), 3) == made
    finally:
        other.close()


def _with_prefix(driver: StorageDriver, prefix: str) -> Users:
    helper = Users(driver)
    helper.prefix = prefix
    return helper


def test_unknown_marker(driver, users):
    user = users.create("gone")
    driver.delete_user(user["id"])
    with pytest.raises(MarkerNotFound):
        driver.list_users(10, marker=user["id"])
    with pytest.raises(MarkerNotFound):
        driver.list_users(10, marker=str(uuid.uuid4()))


def test_name_filter_is_exact(driver, users):
    a = users.create("alpha")
    b = users.create("alpha%")
    users.create("alphabet")
    users.create("ALPHA")
    assert driver.list_users(10, name=a["name"]) == [a]
    assert driver.list_users(10, name=b["name"]) == [b]
    assert driver.list_users(10, name=users.prefix + "alph%") == []
    assert driver.list_users(10, name=users.prefix + "alph_") == []
    assert driver.list_users(10, name=users.prefix + "alpha ") == []
    assert driver.list_users(10, name=users.prefix + "missing") == []
    assert driver.list_users(10, name="x" * 300) == []
    # combined with a marker: only users after it
    assert driver.list_users(10, name=b["name"], marker=a["id"]) == [b]
    assert driver.list_users(10, name=a["name"], marker=b["id"]) == []
    with pytest.raises(MarkerNotFound):
        driver.list_users(10, name=a["name"], marker="../x")


# -- update / delete ------------------------------------------------------------------------


def test_update_changes_only_given_keys(driver, users):
    user = users.create("u", email="u@example.org", description="d")
    updated = driver.update_user(user["id"], {"enabled": False})
    assert updated["enabled"] is False
    assert {k: updated[k] for k in ("id", "name", "email", "description", "created_at")} == {
        k: user[k] for k in ("id", "name", "email", "description", "created_at")
    }
    assert _is_utc_aware(updated["updated_at"])
    assert updated["updated_at"] >= user["updated_at"]
    assert driver.get_user(user["id"]) == updated

    renamed = driver.update_user(
        user["id"], {"name": users.prefix + "v", "email": None, "description": None}
    )
    assert (renamed["name"], renamed["email"], renamed["description"]) == (
        users.prefix + "v",
        None,
        None,
    )
    assert driver.get_user(user["id"]) == renamed
    assert driver.list_users(5, name=users.prefix + "u") == []
    assert driver.list_users(5, name=users.prefix + "v") == [renamed]


def test_update_to_own_name_is_not_a_conflict(driver, users):
    user = users.create("same")
    assert driver.update_user(user["id"], {"name": user["name"]})["name"] == user["name"]


def test_delete(driver, users):
    user = users.create("del")
    driver.delete_user(user["id"])
    with pytest.raises(NotFound):
        driver.get_user(user["id"])
    with pytest.raises(NotFound):
        driver.delete_user(user["id"])
    # the name is free again
    again = users.create("del")
    assert again["id"] != user["id"]


# -- uniqueness -----------------------------------------------------------------------------


def test_duplicate_name_conflicts(driver, users):
    first = users.create("dup")
    with pytest.raises(Conflict):
        users.create("dup", email="other@example.org")
    assert driver.list_users(10, name=first["name"]) == [first]
    other = users.create("other")
    with pytest.raises(Conflict):
        driver.update_user(other["id"], {"name": first["name"]})
    assert driver.get_user(other["id"]) == other


def test_names_are_case_and_space_and_normalisation_sensitive(driver, users):
    # distinct strings are distinct names on every backend (no case folding, no padding,
    # no Unicode normalisation)
    suffixes = ["a", "A", "a ", "é", "e\u0301", "ß", "ss"]
    made = [users.create(s) for s in suffixes]
    for user in made:
        assert driver.list_users(10, name=user["name"]) == [user]


def _race_create(users: Users, suffix: str) -> list[str]:
    """Two threads create the same name at once; returns their outcomes."""
    barrier = threading.Barrier(2)
    outcomes: list[str] = []
    lock = threading.Lock()

    def create() -> None:
        barrier.wait()
        try:
            users.create(suffix)
            result = "ok"
        except Conflict:
            result = "conflict"
        except Exception as exc:  # recorded, so the assertion shows it
            result = repr(exc)
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=create) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_concurrent_creates_of_one_name_give_one_success(driver, users):
    for round_ in range(8):
        assert sorted(_race_create(users, f"race{round_}")) == ["conflict", "ok"]
        assert len(driver.list_users(10, name=users.prefix + f"race{round_}")) == 1


def test_many_threads_create_without_loss(driver, users):
    threads_n, per_thread = 8, 200
    errors: list[BaseException] = []
    created: list[list[str]] = [[] for _ in range(threads_n)]

    def work(t: int) -> None:
        try:
            for i in range(per_thread):
                created[t].append(users.create(f"{t}-{i}")["id"])
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    ids = [i for per in created for i in per]
    assert len(ids) == len(set(ids)) == threads_n * per_thread
    listed = users.listed(page=500)
    assert len(listed) == threads_n * per_thread
    assert {u["id"] for u in listed} == set(ids)
    # each thread's users appear in the order that thread created them
    for t in range(threads_n):
        mine = [u["id"] for u in listed if u["name"].startswith(f"{users.prefix}{t}-")]
        assert mine == created[t]


# -- Unicode and limits ---------------------------------------------------------------------


def test_unicode_names_including_four_byte_characters(driver, users):
    for suffix in ["𝔘𝔫𝔦🙂", "名前", "Ærøskøbing", "עברית", "🙂" * 3]:
        user = users.create(suffix, description="🙂 desc 𝔘", email="ü@exämple.org")
        fetched = driver.get_user(user["id"])
        assert fetched == user
        assert fetched["name"] == users.prefix + suffix
        assert driver.list_users(2, name=users.prefix + suffix) == [user]
    with pytest.raises(Conflict):
        users.create("𝔘𝔫𝔦🙂")


def test_maximum_lengths(driver, users):
    four_byte = "🙂" * 255
    user = driver.create_user(
        {
            "name": four_byte,
            "email": "e" * 243 + "@example.org",
            "enabled": True,
            "description": "𝔘" * 1024,
        }
    )
    try:
        fetched = driver.get_user(user["id"])
        assert fetched["name"] == four_byte
        assert fetched["description"] == "𝔘" * 1024
        assert len(fetched["email"]) == 255
        ascii_user = users.create("n" * (255 - len(users.prefix)), description="d" * 1024)
        assert len(driver.get_user(ascii_user["id"])["name"]) == 255
    finally:
        driver.delete_user(user["id"])


# -- metadata -------------------------------------------------------------------------------


def test_metadata_set_get_replace_delete(driver, users):
    user = users.create("meta")
    assert driver.get_metadata(user["id"]) == {}
    driver.set_metadata_item(user["id"], "color", "blue")
    driver.set_metadata_item(user["id"], "Color", "RED")
    driver.set_metadata_item(user["id"], "🔑", "𝔳𝔞𝔩🙂")
    assert driver.get_metadata(user["id"]) == {"color": "blue", "Color": "RED", "🔑": "𝔳𝔞𝔩🙂"}
    driver.set_metadata_item(user["id"], "color", "green")
    assert driver.get_metadata(user["id"])["color"] == "green"
    driver.delete_metadata_item(user["id"], "color")
    assert driver.get_metadata(user["id"]) == {"Color": "RED", "🔑": "𝔳𝔞𝔩🙂"}
    with pytest.raises(NotFound):
        driver.delete_metadata_item(user["id"], "color")
    with pytest.raises(NotFound):
        driver.delete_metadata_item(user["id"], "\x00")
    with pytest.raises(NotFound):
        driver.delete_metadata_item(user["id"], "k" * 300)


def test_metadata_limits(driver, users):
    user = users.create("meta-max")
    key, value = "🔑" * 255, "🙂" * 1024
    driver.set_metadata_item(user["id"], key, value)
    assert driver.get_metadata(user["id"]) == {key: value}


def test_metadata_is_per_user_and_deleted_with_the_user(driver, users):
    a = users.create("ma")
    b = users.create("mb")
    driver.set_metadata_item(a["id"], "k", "a")
    driver.set_metadata_item(b["id"], "k", "b")
    assert driver.get_metadata(a["id"]) == {"k": "a"}
    driver.delete_user(a["id"])
    for call in (
        lambda: driver.get_metadata(a["id"]),
        lambda: driver.set_metadata_item(a["id"], "k", "v"),
        lambda: driver.delete_metadata_item(a["id"], "k"),
    ):
        with pytest.raises(NotFound):
            call()
    assert driver.get_metadata(b["id"]) == {"k": "b"}
    # a new user of the same name starts with no metadata
    again = users.create("ma")
    assert driver.get_metadata(again["id"]) == {}


def test_concurrent_metadata_writes_of_one_key(driver, users):
    user = users.create("meta-race")
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        barrier.wait()
        try:
            driver.set_metadata_item(user["id"], "k", f"v{n}")
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert driver.get_metadata(user["id"])["k"] in {"v0", "v1", "v2", "v3"}


def test_check_passes_on_a_healthy_backend(driver):
    driver.check()
