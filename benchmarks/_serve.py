"""Serve one benchmark application on waitress (started by http_bench.py, not by hand).

``_serve.py KIND PORT THREADS``: binds 127.0.0.1:PORT, prints ``READY`` once listening.
The workspace comes from ``$MYSERVICE_BENCH_WORKSPACE`` (see ``_common.server_app``).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402
import waitress  # noqa: E402


def main() -> None:
    kind, port, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    app = c.server_app(kind)
    server = waitress.create_server(app, host="127.0.0.1", port=port, threads=threads)
    print("READY", flush=True)
    server.run()


if __name__ == "__main__":
    main()
