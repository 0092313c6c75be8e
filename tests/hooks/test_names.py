"""Start-up warnings for mistyped hook names: ``[hooks] disabled`` naming no hook, a hook
registered under an event close to one the API fires, two hooks sharing one name."""

from __future__ import annotations

import importlib.metadata
import logging

import pytest

from myservice.hooks import HookDispatcher

HOOKS = """
class Good:
    name = "bh_good"

    def __init__(self, conf):
        pass

    def __call__(self, event):
        pass


class Impostor(Good):
    name = "audit"


class Other(Good):
    name = "other"
"""


@pytest.fixture
def names_site(site):
    site.module("hooks", HOOKS)
    return site


def _warnings(caplog):
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "myservice.hooks.names" and r.levelno == logging.WARNING
    ]


def _dispatch(conf, events):
    with HookDispatcher(conf, events=events) as dispatcher:
        return {event: [h.name for h in dispatcher.hooks(event)] for event in events}


def test_a_mistyped_disabled_name_is_warned_with_the_closest(
    names_site, hook_conf, tmp_path, caplog
):
    names_site.install("acme-hooks", "1.0", [("user.create", "{mod}hooks:Good")])
    caplog.set_level(logging.WARNING, logger="myservice.hooks")
    conf = hook_conf(tmp_path, disabled="bh_gdoo, notify, audit")
    assert _dispatch(conf, ["user.create"]) == {"user.create": ["bh_good"]}
    assert _warnings(caplog) == [
        "[hooks] disabled: no installed event hook is called 'bh_gdoo'; did you mean "
        "'bh_good'? (installed: audit, bh_good, notify)"
    ]


def test_a_hook_under_a_mistyped_event_is_warned(names_site, hook_conf, tmp_path, caplog):
    names_site.install("acme-hooks", "1.0", [("user.craete", "{mod}hooks:Good")])
    prefix = names_site.prefix
    caplog.set_level(logging.WARNING, logger="myservice.hooks")
    assert _dispatch(hook_conf(tmp_path), ["user.craete"]) == {"user.craete": ["bh_good"]}
    assert _warnings(caplog) == [
        f"Event hooks acme-hooks 1.0 ({prefix}hooks:Good) are registered for event "
        "'user.craete', which the API never fires; did you mean 'user.create'? (the API fires "
        "user.create, user.update, user.delete; an extension may fire events of its own)"
    ]


def test_an_event_of_an_extension_is_not_a_typo(names_site, hook_conf, tmp_path, caplog):
    names_site.install("acme-hooks", "1.0", [("acme.ping", "{mod}hooks:Good")])
    caplog.set_level(logging.WARNING, logger="myservice.hooks")
    assert _dispatch(hook_conf(tmp_path), ["acme.ping"]) == {"acme.ping": ["bh_good"]}
    assert _warnings(caplog) == []


def test_two_hooks_of_one_name_are_warned(names_site, hook_conf, tmp_path, caplog):
    names_site.install(
        "acme-hooks",
        "1.0",
        [("user.create", "{mod}hooks:Impostor"), ("user.update", "{mod}hooks:Other")],
    )
    prefix = names_site.prefix
    caplog.set_level(logging.WARNING, logger="myservice.hooks")
    got = _dispatch(hook_conf(tmp_path), ["user.create", "user.update"])
    # third-party entry points come first (discovery order), then myservice's own
    assert got == {"user.create": ["audit", "audit"], "user.update": ["other", "audit"]}
    version = importlib.metadata.version("myservice")
    assert _warnings(caplog) == [
        f"Event hooks acme-hooks 1.0 ({prefix}hooks:Impostor), myservice {version} "
        "(myservice.hooks.audit:AuditHook) are all called 'audit': [hooks] disabled = audit "
        "turns off every one of them"
    ]
