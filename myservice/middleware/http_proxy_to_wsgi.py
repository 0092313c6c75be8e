"""``http_proxy_to_wsgi``: make the environ reflect the client's view behind a reverse proxy.

Off unless ``[http_proxy_to_wsgi] enable_proxy_headers_parsing`` is true (then the factory
returns the application itself: no cost at all).  When on:

* ``proxy_headers`` names the one family of headers the proxy in front sets:
  ``x-forwarded`` (the default: ``X-Forwarded-For``/``-Proto``/``-Host``, nginx and HAProxy)
  or ``forwarded`` (RFC 7239 ``Forwarded``).  The other family is ignored entirely: a proxy
  passes through what it does not set, so a client could otherwise choose it.
* Each proxy appends one element to ``X-Forwarded-For`` (nginx's
  ``$proxy_add_x_forwarded_for``, HAProxy's ``option forwardfor``) or ``Forwarded``, after
  whatever the client sent.  So the element ``trusted_proxies`` from the right is read
  (default 1: the one the proxy nearest the service added, which a client cannot forge);
  elements further left are the client's own and are ignored, and a header with fewer
  elements is ignored as a whole.  ``Forwarded`` is read from the right, only as far as
  that element (quoted strings with their escapes; an element longer than
  :data:`_MAX_ELEMENT` is not read): what the client put further left, an open quote
  included, is never scanned.
* ``forwarded``: from that element ``proto`` sets ``wsgi.url_scheme``, ``host`` sets
  ``HTTP_HOST``, ``SERVER_NAME`` and ``SERVER_PORT``, ``for`` sets ``REMOTE_ADDR``.
* ``x-forwarded``: ``X-Forwarded-For`` sets ``REMOTE_ADDR`` as above; ``X-Forwarded-Proto``
  and ``X-Forwarded-Host``, which proxies set (replace) rather than append to, are read as
  their last element; so is ``X-Forwarded-Prefix``, prepended to ``SCRIPT_NAME`` unless
  ``[api] public_endpoint`` is set (which holds the prefix then).  A header of the other
  family is warned about once.

The proxy must set or remove ``X-Forwarded-Proto``, ``-Host`` and ``-Prefix`` (nginx
passes a client's own through unless told otherwise).  Values that are not valid are
ignored: a scheme other than http/https, a ``for`` or ``X-Forwarded-For`` that is not an IP
address (``unknown``, obfuscated, a name, an IPv6 zone id), a host that is not an RFC 3986
host with an optional port, a prefix that is not a plain absolute path (``//host/x``,
``../x``, spaces or quotes).
"""

from __future__ import annotations

import ipaddress
import logging
import re
import string
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from myservice.middleware._common import service_config

LOG = logging.getLogger(__name__)

WSGIApp = Callable[[dict, Callable[..., Any]], Iterable[bytes]]

SECTION = "http_proxy_to_wsgi"
_SCHEMES = {"http": "http", "https": "https"}
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def parse_forwarded(value: str, hops: int = 1) -> dict[str, str]:
    """The parameters of the element ``hops`` from the right of an RFC 7239 ``Forwarded``
    header value (1: the last), lowercase names, unquoted values; ``{}`` when there are
    fewer elements, nothing usable, or a quoted string left open in that element.  Read from
    the right and only as far as that element: what the client sent further left, however
    long or malformed (an open quote), is never scanned."""
    elements = _split_from_right(value, ",", hops)
    pairs = _split_from_right(elements[0], ";") if elements else None
    params: dict[str, str] = {}
    for pair in pairs or ():
        name, sep, val = pair.partition("=")
        if not sep:
            continue
        val = val.strip()
        if len(val) >= 2 and val[0] == '"' and val[-1] == '"':
            val = _UNESCAPE.sub(r"\1", val[1:-1])
        params.setdefault(name.strip().lower(), val)
    return params


#: a quoted-pair of RFC 9110 (backslash and the character it escapes)
_UNESCAPE = re.compile(r"\\(.)")


#: longest ``Forwarded`` element read (a proxy's is a few dozen characters)
_MAX_ELEMENT = 1024


def _split_from_right(value: str, sep: str, count: int | None = None) -> list[str] | None:
    """The last ``count`` parts of ``value`` (all when ``None``), left to right, split at
    each ``sep`` outside a quoted string (whose quotes may be escaped by a backslash),
    scanning from the right and stopping there; ``None`` when there are fewer parts, a quote
    of the part scanned is left open, or a part on the way is longer than
    :data:`_MAX_ELEMENT`."""
    parts: list[str] = []
    end, quoted = len(value), False
    for i in range(len(value) - 1, -1, -1):
        ch = value[i]
        if ch == sep and not quoted:
            parts.append(value[i + 1 : end])
            if len(parts) == count:
                return parts[::-1]
            end = i
            continue
        if end - i > _MAX_ELEMENT:  # no proxy writes such an element: not worth scanning
            return None
        if ch == '"':
            start = i
            while start > 0 and value[start - 1] == "\\" and i - start <= _MAX_ELEMENT:
                start -= 1  # (a longer run is refused for its length at the next step)
            if (i - start) % 2 == 0:  # an even run of backslashes before it: not escaped
                quoted = not quoted
    parts.append(value[:end])
    if quoted or (count is not None and len(parts) < count):
        return None
    return parts[::-1]


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
    if "%" in value:  # an IPv6 zone id: any text, and meaningless off the proxy's host
        return None
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
    elements = value.rsplit(",", hops)  # only as far as needed, from the right
    return elements[-hops].strip() if len(elements) >= hops else None


#: an RFC 3986 host (a name of unreserved characters or pct-encodings, or an IP literal in
#: brackets) and an optional port of ASCII digits
_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~%-]+)(?::[0-9]{1,5})?", re.ASCII)


def _valid_host(host: str) -> bool:
    return _HOST.fullmatch(host) is not None


#: the values of ``proxy_headers``: which family of headers the proxy in front sets
FAMILIES = ("x-forwarded", "forwarded")


class HTTPProxyToWSGI:
    """The filter (always on; the factory decides whether to install it).  ``hops``:
    ``trusted_proxies`` (>= 1); ``family``: ``proxy_headers``, one of :data:`FAMILIES`."""

    __slots__ = ("app", "hops", "rfc7239", "with_prefix", "_warned")

    def __init__(
        self,
        app: WSGIApp,
        hops: int = 1,
        family: str = "x-forwarded",
        with_prefix: bool = True,
    ) -> None:
        if hops < 1:
            raise ValueError(f"HTTPProxyToWSGI: hops must be >= 1, got {hops!r}")
        if family not in FAMILIES:
            raise ValueError(f"HTTPProxyToWSGI: family must be one of {FAMILIES}, got {family!r}")
        self.app = app
        #: which element, from the right, of an appended-to header is read
        self.hops = hops
        #: True: read Forwarded only; False: X-Forwarded-For/-Proto/-Host only
        self.rfc7239 = family == "forwarded"
        #: whether X-Forwarded-Prefix is read (see :func:`filter_factory`)
        self.with_prefix = with_prefix
        self._warned = False

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        hops = self.hops
        if self.rfc7239:
            forwarded = environ.get("HTTP_FORWARDED")
            params = parse_forwarded(forwarded, hops) if forwarded else {}
            proto = params.get("proto")
            host = params.get("host")
            addr = params.get("for")
            if not self._warned and "HTTP_X_FORWARDED_FOR" in environ:
                self._warn_other_family("X-Forwarded-For", "x-forwarded")
        else:  # set (replaced) by the proxy: its value is the last one
            proto = nth_from_right(environ.get("HTTP_X_FORWARDED_PROTO"), 1)
            host = nth_from_right(environ.get("HTTP_X_FORWARDED_HOST"), 1)
            addr = nth_from_right(environ.get("HTTP_X_FORWARDED_FOR"), hops)
            if not self._warned and "HTTP_FORWARDED" in environ:
                self._warn_other_family("Forwarded", "forwarded")
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
        prefix = environ.get("HTTP_X_FORWARDED_PREFIX") if self.with_prefix else None
        if prefix:
            prefix = forwarded_prefix(nth_from_right(prefix, 1) or "")
            if prefix is not None:
                environ["SCRIPT_NAME"] = prefix + environ.get("SCRIPT_NAME", "")
        return self.app(environ, start_response)

    def _warn_other_family(self, header: str, family: str) -> None:
        """Say once that a header of the family not read came: a proxy that sets it (after
        an upgrade from a version that read both) needs ``proxy_headers`` changed."""
        self._warned = True
        LOG.warning(
            "http_proxy_to_wsgi: a %s header came and is ignored ([http_proxy_to_wsgi] "
            "proxy_headers names the other family); if the proxy in front sets it, set "
            "proxy_headers = %s (said once)",
            header,
            family,
        )

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
    """Paste filter factory; options ``enable_proxy_headers_parsing`` (bool, default off),
    ``proxy_headers`` (``x-forwarded`` or ``forwarded``) and ``trusted_proxies`` (int,
    default 1)."""
    service = service_config(global_conf, local_conf, SECTION)
    options = service.sections[SECTION]
    enabled, hops = options.enable_proxy_headers_parsing, options.trusted_proxies
    family = options.proxy_headers
    # the prefix is part of a configured public endpoint: a client must not add one
    with_prefix = family == "x-forwarded" and not service.api.public_endpoint

    def _filter(app: WSGIApp) -> WSGIApp:
        if not enabled:
            LOG.debug("http_proxy_to_wsgi: proxy headers parsing is off; filter not installed")
            return app
        return HTTPProxyToWSGI(app, hops, family, with_prefix)

    return _filter
