"""hooks.base.to_jsonable: the JSON-ready deep copy each hook gets of a resource."""

from __future__ import annotations

import collections
import datetime as dt
import decimal
import enum
import json
import uuid

from myservice.hooks.base import Event, to_jsonable


class Colour(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


UUID = uuid.UUID("0b3c6a7e-1b7f-4a8e-9d55-2f9a1e3c4b5d")
PARIS = dt.timezone(dt.timedelta(hours=1))


def test_flat_resource_is_an_equal_but_separate_copy():
    user = {"id": "u1", "name": "alice", "email": None, "enabled": True, "n": 3, "x": 1.5}
    copy = to_jsonable(user)
    assert copy == user and copy is not user
    user["name"] = "changed"
    assert copy["name"] == "alice"


def test_nested_and_non_json_values_of_a_dict():
    value = {
        1: "int key",
        UUID: "uuid key",
        "when": dt.datetime(2024, 5, 1, 13, 0, tzinfo=PARIS),
        "naive": dt.datetime(2024, 5, 1, 12, 0),
        "day": dt.date(2024, 5, 1),
        "colour": Colour.RED,
        "level": Level.HIGH,
        "price": decimal.Decimal("1.10"),
        "id": UUID,
        "raw": b"caf\xc3\xa9",
        "tags": ("a", "b"),
        "set": {"b", "a"},
        "inner": {"list": [{"deep": dt.date(2024, 1, 2)}]},
        "ordered": collections.OrderedDict([("z", 1), ("a", dt.date(2024, 1, 3))]),
    }
    assert to_jsonable(value) == {
        "1": "int key",
        str(UUID): "uuid key",
        "when": "2024-05-01T12:00:00+00:00",
        "naive": "2024-05-01T12:00:00",
        "day": "2024-05-01",
        "colour": "red",
        "level": 3,
        "price": "1.10",
        "id": str(UUID),
        "raw": "café",
        "tags": ["a", "b"],
        "set": ["a", "b"],
        "inner": {"list": [{"deep": "2024-01-02"}]},
        "ordered": {"z": 1, "a": "2024-01-03"},
    }
    json.dumps(to_jsonable(value))  # and it serialises


def test_nested_containers_are_copies_too():
    inner = {"k": [1, 2]}
    copy = to_jsonable({"inner": inner})
    inner["k"].append(3)
    assert copy == {"inner": {"k": [1, 2]}}


def test_event_as_dict_is_json_ready():
    event = Event(
        name="user.create",
        resource={"id": "u1", "created_at": dt.datetime(2024, 5, 1, tzinfo=dt.UTC)},
        request_id="req-1",
        user_id="u",
        project_id="p",
        timestamp=dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC),
    )
    assert event.as_dict() == {
        "event": "user.create",
        "timestamp": "2024-05-01T12:00:00+00:00",
        "request_id": "req-1",
        "user_id": "u",
        "project_id": "p",
        "resource": {"id": "u1", "created_at": "2024-05-01T00:00:00+00:00"},
    }
