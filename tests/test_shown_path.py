"""``faults.shown_path``: the path of a request as messages and log lines show it."""

from __future__ import annotations

import pytest

from myservice.wsgi.faults import shown_path


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("/v1/users", "/v1/users"),
        ("/v1/caf\xc3\xa9", "/v1/café"),  # UTF-8 bytes as a WSGI server passes them
        ("/v1/caf\xe9", "/v1/caf%E9"),  # a byte that is not UTF-8
        ("/v1/\xff", "/v1/%FF"),
        ("/a\nb", "/a%0Ab"),  # a control character
        ("/v1/\u043a\u043b\u044e\u0447", "/v1/\u043a\u043b\u044e\u0447"),  # text already
    ],
)
def test_shown_path(raw, shown):
    assert shown_path(raw) == shown
