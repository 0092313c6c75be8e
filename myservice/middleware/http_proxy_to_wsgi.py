"""``http_proxy_to_wsgi``: make the environ reflect the client's view behind a reverse proxy.

Off unless ``[http_proxy_to_wsgi] enable_proxy_headers_parsing`` is true (then the factory
returns the application itself: no cost at all).  When on:

* An RFC 7239 ``Forwarded`` header wins: from its first element (the one the proxy nearest
  the client added) ``proto`` sets ``wsgi.url_scheme``, ``host`` sets ``HTTP_HOST``,
  ``SERVER_NAME`` and ``SERVER_PORT``, ``for`` sets ``REMOTE_ADDR``.
* Without ``Forwarded``: ``X-Forwarded-Proto``, ``X-Forwarded-Host`` and
  ``X-Forwarded-For`` do the same; of ``X-Forwarded-For`` ONLY the first address is used.
* ``X-Forwarded-Prefix`` (either way) is prepended to ``SCRIPT_NAME``.

Values that are not valid are ignored: a scheme other than http/https, a ``for`` or
``X-Forwarded-For`` that is not an IP address (``unknown``, obfuscated, a name), a host with
spaces or a slash, a prefix that is not a plain absolute path (``//host/x``, ``../x``, spaces
or quotes).  Only enable this when the proxy in front strips
these headers from clients: otherwise clients can spoof their address and scheme.
"""

from __future__ import annotations

import ipaddress
import logging
import string
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from myservice.middleware._common import section_config

LOG = logging.getLogger(__name__)

WSGIApp = Callable[[dict, Callable[..., Any]], Iterable[bytes]]

SECTION = "http_proxy_to_wsgi"
_SCHEMES = {"http": "http", "https": "https"}
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def parse_forwarded(value: str) -> dict[str, str]:
    """The parameters of the first element of an RFC 7239 ``Forwarded`` header value,
    lowercase names, unquoted values (``{}`` when there is nothing usable)."""
    first = _split_first(value, ",")
    params: dict[str, str] = {}
    for pair in _split_all(first, ";"):
        name, sep, val = pair.partition("=")
        if not sep:
            continue
        val = val.strip()
        if len(val) >= 2 and val[0] == '"' and val[-1] == '"':
            val = val[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        params.setdefault(name.strip().lower(), val)
    return params


def _split_first(value: str, sep: str) -> str:
    """``value`` up to the first ``sep`` outside a quoted string."""
    quoted = False
    for i, ch in enumerate(value):
        if ch == '"':
            quoted = not quoted
        elif ch == sep and not quoted:
            return value[:i]
    return value


def _split_all(value: str, sep: str) -> list[str]:
    parts = []
    while value:
        part = _split_first(value, sep)
        parts.append(part)
        value = value[len(part) + 1 :]
    return parts


def node_address(value: str) -> str | None:
    """The IP address of an RFC 7239 node (``192.0.2.1:80``, ``[2001:db8::1]:80``,
    ``2001:db8::1``), without the port, in its canonical text; ``None`` for anything that is
    not an IP address (``unknown``, an obfuscated ``_hidden``, a name, text with spaces or
    quotes), so nothing but an address reaches ``REMOTE_ADDR`` and the access log."""
    value = value.strip()
    if value[:1] == "[":
        end = value.find("]")
        value = value[1:end] if end > 0 else ""
    elif value.count(":") == 1:  # IPv4 with a port
        value = value.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


#: what a path segment of X-Forwarded-Prefix may hold (RFC 3986 pchar, "%" for pct-encoded)
_PREFIX_CHARS = frozenset(string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@%")


def forwarded_prefix(value: str) -> str | None:
    """``X-Forwarded-Prefix`` as a ``SCRIPT_NAME`` prefix (``/identity``, no trailing
    slash), or ``None`` when it is empty or not a plain absolute path: each segment
    non-empty, of RFC 3986 path characters, neither ``.`` nor ``..`` (so no ``//host``
    that a link would take for another server, no dot segments, no spaces or quotes)."""
    path = value.strip().rstrip("/")
    if not path:
        return None
    for segment in path.removeprefix("/").split("/"):
        if segment in ("", ".", "..") or not _PREFIX_CHARS.issuperset(segment):
            return None
    return path if path[0] == "/" else "/" + path


def _valid_host(host: str) -> bool:
    return bool(host) and host.isprintable() and " " not in host and "/" not in host


class HTTPProxyToWSGI:
    """The filter (always on; the factory decides whether to install it)."""

    __slots__ = ("app",)

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        forwarded = environ.get("HTTP_FORWARDED")
        if forwarded:
            params = parse_forwarded(forwarded)
            proto = params.get("proto")
            host = params.get("host")
            addr = node_address(params["for"]) if "for" in params else None
        else:
            proto = environ.get("HTTP_X_FORWARDED_PROTO")
            host = environ.get("HTTP_X_FORWARDED_HOST")
            addr = environ.get("HTTP_X_FORWARDED_FOR")
            if proto:
                proto = proto.split(",", 1)[0]
            if host:
                host = host.split(",", 1)[0]
            if addr:
                addr = node_address(addr.split(",", 1)[0])
        if proto:
            scheme = _SCHEMES.get(proto.strip().lower())
            if scheme is not None:
                environ["wsgi.url_scheme"] = scheme
        if host:
            host = host.strip()
            if _valid_host(host):
                self._set_host(environ, host)
        if addr:
            environ["REMOTE_ADDR"] = addr
        prefix = environ.get("HTTP_X_FORWARDED_PREFIX")
        if prefix:
            prefix = forwarded_prefix(prefix)
            if prefix is not None:
                environ["SCRIPT_NAME"] = prefix + environ.get("SCRIPT_NAME", "")
        return self.app(environ, start_response)

    @staticmethod
    def _set_host(environ: dict, host: str) -> None:
        environ["HTTP_HOST"] = host
        if host[0] == "[":  # [v6] or [v6]:port
            end = host.find("]")
            name, port = host[: end + 1], host[end + 2 :]
        else:
            name, _, port = host.partition(":")
        environ["SERVER_NAME"] = name
        environ["SERVER_PORT"] = (
            port if port.isdigit() else _DEFAULT_PORTS.get(environ.get("wsgi.url_scheme"), "80")
        )


def filter_factory(global_conf: Mapping[str, Any], **local_conf: str) -> Callable[[WSGIApp], Any]:
    """Paste filter factory; option ``enable_proxy_headers_parsing`` (bool, default off)."""
    enabled = section_config(global_conf, local_conf, SECTION).enable_proxy_headers_parsing

    def _filter(app: WSGIApp) -> WSGIApp:
        if not enabled:
            LOG.debug("http_proxy_to_wsgi: proxy headers parsing is off; filter not installed")
            return app
        return HTTPProxyToWSGI(app)

    return _filter
