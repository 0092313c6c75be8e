"""Behind a reverse proxy on waitress: what the README says to set is what makes it work.

waitress removes ``Forwarded`` and ``X-Forwarded-For/-Host/-Proto`` itself unless
``[server:main] clear_untrusted_proxy_headers = false``; with that and
``[http_proxy_to_wsgi] enable_proxy_headers_parsing = true``, the filter reads the element the
nearest proxy appended.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import BIN, copy_etc, create_token, free_port, serving

#: as nginx with $proxy_add_x_forwarded_for sends it: the client's own value, then the
#: address the proxy saw
FORWARDED = {
    "X-Forwarded-For": "127.0.0.9, 198.51.100.23",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "api.example.com",
}


def _site(tmp_path: Path, keep_proxy_headers: bool) -> Path:
    site = copy_etc(tmp_path / "etc")
    with open(site / "myservice.conf", "a", encoding="utf-8") as conf:
        conf.write("\n[http_proxy_to_wsgi]\nenable_proxy_headers_parsing = true\n")
    if keep_proxy_headers:
        ini = (site / "api-paste.ini").read_text(encoding="utf-8")
        ini = ini.replace(
            "ident = myservice\n", "ident = myservice\nclear_untrusted_proxy_headers = false\n", 1
        )
        assert "clear_untrusted_proxy_headers = false" in ini
        (site / "api-paste.ini").write_text(ini, encoding="utf-8")
    return site


@pytest.mark.parametrize("keep_proxy_headers", [True, False])
def test_proxy_headers_reach_the_filter_only_when_waitress_keeps_them(tmp_path, keep_proxy_headers):
    site = _site(tmp_path, keep_proxy_headers)
    token = create_token(site / "myservice.conf", "admin")
    port = free_port()
    command = [str(BIN / "myservice-api"), "--port", str(port), "api-paste.ini"]
    with serving(command, site, port) as server:
        client = server.client(token)
        res = client.request("POST", "/v1/users", {"user": {"name": "proxied"}}, FORWARDED)
        assert res.status == 201, res.body
        location = res.headers["location"]
        client.close()
        server.proc.terminate()  # flush the access log
        server.proc.wait(timeout=60)
        log = server.output()
    line = next(line for line in log.splitlines() if '"POST /v1/users" status 201' in line)
    if keep_proxy_headers:
        assert location.startswith("https://api.example.com/v1/users/")
        assert " 198.51.100.23 " in line  # the proxy's element, not the client's 127.0.0.9
    else:
        assert location.startswith(f"http://127.0.0.1:{port}/v1/users/")
        assert " 127.0.0.1 " in line
