"""What a call that may hang raised or returned, for the tests of hung databases."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

#: a liveness guard, far above any timeout under test: not a time limit
LIVENESS_GUARD = 60.0


def outcome_of(call: Callable[[], Any]) -> BaseException | Any:
    """What ``call()`` raised or returned, run on a thread: a hang fails the test after
    :data:`LIVENESS_GUARD` seconds instead of blocking the run."""
    box: list = []

    def run() -> None:
        try:
            box.append(call())
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(LIVENESS_GUARD)
    assert box, f"the call was still blocked after {LIVENESS_GUARD:g} s"
    return box[0]
