"""Fixtures of the v1 API tests: the real factories over a config file written to tmp_path.

``api`` is a WebTest ``TestApp`` over ``api_v1_factory`` mounted at ``/v1`` the way the urlmap
composite mounts it (``/v1`` moves to ``SCRIPT_NAME``), built from a ``global_conf`` whose
``config_file`` says ``[storage] driver = memory``.  Requests send the headers the ``auth``
filter would set (:data:`ADMIN`, :data:`READER`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import webtest

from myservice.api import policy
from myservice.wsgi import context as context_mod
from myservice.wsgi.app import api_v1_factory

ADMIN = {
    "X-Identity-Status": "Confirmed",
    "X-User-Id": "user-admin",
    "X-Project-Id": "project-1",
    "X-Roles": "admin",
}
READER = {**ADMIN, "X-User-Id": "user-reader", "X-Roles": "reader"}
#: ``extra_environ`` of a TestApp standing for the ``auth`` filter in front of the API: with
#: it, the identity headers a test sends (ADMIN, READER) count; without it they do not
BEHIND_AUTH = {policy.AUTHENTICATED_BY: "tests.api.conftest"}


def mount(prefix: str, app: Callable) -> Callable:
    """Serve ``app`` under ``prefix`` as a urlmap would; other paths are a bare 404.

    It also stands for the ``auth`` filter in front of the API: it marks each request
    authenticated (``policy.AUTHENTICATED_BY``), so the identity headers a test sends
    (:data:`ADMIN`, :data:`READER`) are what the API sees as the caller."""

    def mounted(environ: dict, start_response: Callable) -> Any:
        environ.update(BEHIND_AUTH)
        path = environ.get("PATH_INFO", "")
        if path != prefix and not path.startswith(prefix + "/"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"outside the mount"]
        environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + prefix
        environ["PATH_INFO"] = path[len(prefix) :]
        return app(environ, start_response)

    return mounted


class RecordingHooks:
    """A hooks dispatcher that records every ``fire`` call."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict, dict]] = []

    def fire(self, event, resource, *, request_id, user_id, project_id) -> None:
        self.events.append(
            (
                event,
                dict(resource),
                {"request_id": request_id, "user_id": user_id, "project_id": project_id},
            )
        )


@pytest.fixture(params=["memory", "sqlite"])
def global_conf(
    request: pytest.FixtureRequest, tmp_path: Path, make_conf: Callable[..., Any]
) -> dict[str, Any]:
    """``global_conf`` as Paste Deploy passes it, ``config_file`` naming a config of the
    ``memory`` driver, then of the embedded ``sqlite`` one, with small page sizes (default 3,
    max 5)."""
    conf = make_conf(tmp_path, request.param, api={"default_limit": 3, "max_limit": 5})
    ini = tmp_path / "api-paste.ini"
    ini.write_text("[DEFAULT]\n")
    return {"here": str(tmp_path), "__file__": str(ini), "config_file": str(conf.path)}


@pytest.fixture
def ctx(global_conf: dict[str, Any]) -> Iterator[context_mod.ServiceContext]:
    """A real context with :class:`RecordingHooks`, shared through
    ``global_conf["myservice.context"]`` like the urlmap composite does; closed afterwards."""
    built = context_mod.from_global_conf(global_conf)
    built.hooks.close()  # the real dispatcher; this one records instead
    built.hooks = RecordingHooks()
    global_conf[context_mod.CONTEXT_KEY] = built
    yield built
    built.close()


@pytest.fixture
def api(ctx: context_mod.ServiceContext, global_conf: dict[str, Any]) -> webtest.TestApp:
    return webtest.TestApp(mount("/v1", api_v1_factory(global_conf)))


def envelope_of(response: webtest.TestResponse) -> dict[str, Any]:
    """The single error of an envelope response, after checking the envelope's shape."""
    assert response.content_type == "application/json"
    body = response.json
    assert set(body) == {"errors"}
    assert len(body["errors"]) == 1
    error = body["errors"][0]
    assert set(error) == {"status", "code", "title", "detail", "request_id"}
    assert error["status"] == response.status_int
    assert error["code"].startswith("myservice.")
    return error
