"""The 403 detail names the request's path as a person reads it (as the 404 does)."""

from __future__ import annotations

import pytest

from tests.api.conftest import READER, envelope_of


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("/v1/users/caf%C3%A9", "/v1/users/café"),  # UTF-8 text, not latin-1 mojibake
        ("/v1/users/x%0D%0Ay", "/v1/users/x%0D%0Ay"),  # control characters escaped
    ],
)
def test_403_detail_shows_the_path_as_sent(api, raw, shown):
    res = api.delete(raw, headers=READER, status=403)
    assert envelope_of(res)["detail"] == (
        f"DELETE {shown} requires the 'admin' role (policy rule 'write')."
    )
