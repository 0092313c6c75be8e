"""``http_proxy_to_wsgi``: make the environ reflect the client's view behind a reverse proxy.

Off unless ``[http_proxy_to_wsgi] enable_proxy_headers_parsing`` is true (then the factory
returns the application itself: no cost at all).  When on:

* Each proxy appends one element to ``Forwarded`` and ``X-Forwarded-For`` (nginx's
  ``$proxy_add_x_forwarded_for``, HAProxy's ``option forwardfor``), after whatever the client
  sent.  So of each header the element ``trusted_proxies`` from the right is read (default
  1: the one the proxy nearest the service added, which a client cannot forge); elements
  further left are the client's own and are ignored, and a header with fewer elements than
  ``trusted_proxies`` is ignored as a whole.
* An RFC 7239 ``Forwarded`` header wins: from that element ``proto`` sets
  ``wsgi.url_scheme``, ``host`` sets ``HTTP_HOST``, ``SERVER_NAME`` and ``SERVER_PORT``,
  ``for`` sets ``REMOTE_ADDR``.
* Without ``Forwarded``: ``X-Forwarded-Proto``, ``X-Forwarded-Host`` and
  ``X-Forwarded-For`` do the same, each read the same way.
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


def parse_forwarded(value: str, hops: int = 1) -> dict[str, str]:
    """The parameters of the element ``hops`` from the right of an RFC 7239 ``Forwarded``
    header value (1: the last), lowercase names, unquoted values (``{}`` when there are
    fewer elements, or nothing usable)."""
    elements = _split_all(value, ",")
    if len(elements) < hops:
        return {}
    params: dict[str, str] = {}
    for pair in _split_all(elements[-hops], ";"):
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


def nth_from_right(value: str | None, hops: int) -> str | None:
    """The comma-separated element ``hops`` from the right of a ``X-Forwarded-*`` value,
    stripped; ``None`` when the header is absent or has fewer elements."""
    if not value:
        return None
    elements = value.split(",")
    return elements[-hops].strip() if len(elements) >= hops else None


def _valid_host(host: str) -> bool:
    return bool(host) and host.isprintable() and " " not in host and "/" not in host


class HTTPProxyToWSGI:
    """The filter (always on; the factory decides whether to install it)."""

    __slots__ = ("app", "hops")

    def __init__(self, app: WSGIApp, hops: int = 1) -> None:
        self.app = app
        #: ``trusted_proxies``: which element, from the right, of each header is read
        self.hops = hops

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        hops = self.hops
        forwarded = environ.get("HTTP_FORWARDED")
        if forwarded:
            params = parse_forwarded(forwarded, hops)
            proto = params.get("proto")
            host = params.get("host")
            addr = params.get("for")
        else:
            proto = nth_from_right(environ.get("HTTP_X_FORWARDED_PROTO"), hops)
            host = nth_from_right(environ.get("HTTP_X_FORWARDED_HOST"), hops)
            addr = nth_from_right(environ.get("HTTP_X_FORWARDED_FOR"), hops)
        if addr:
            addr = node_address(addr)
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
    """Paste filter factory; options ``enable_proxy_headers_parsing`` (bool, default off)
    and ``trusted_proxies`` (int, default 1)."""
    options = section_config(global_conf, local_conf, SECTION)
    enabled, hops = options.enable_proxy_headers_parsing, options.trusted_proxies

    def _filter(app: WSGIApp) -> WSGIApp:
        if not enabled:
            LOG.debug("http_proxy_to_wsgi: proxy headers parsing is off; filter not installed")
            return app
        return HTTPProxyToWSGI(app, hops)

    return _filter
