"""http_proxy_to_wsgi: Forwarded first, else X-Forwarded-*; off unless enabled."""

from __future__ import annotations

import logging

import pytest
from webtest import TestApp

from myservice.conf import ConfigError
from myservice.middleware import http_proxy_to_wsgi
from tests.middleware.util import build, echo_app

BASE = {"REMOTE_ADDR": "10.0.0.1", "HTTP_HOST": "10.0.0.5:8790"}


@pytest.fixture
def app(paste_conf):
    wrapped = build(http_proxy_to_wsgi, echo_app, paste_conf, enable_proxy_headers_parsing="true")
    return TestApp(wrapped, extra_environ=BASE)


def _assert_seen(app: TestApp, headers: dict[str, str], expected: dict[str, str]) -> None:
    """``GET /`` with ``headers``: the environ the wrapped app saw holds every ``expected`` key
    with that value (keys not named are not checked)."""
    data = app.get("/", headers=headers).json
    assert {key: data.get(key) for key in expected} == expected


def test_off_by_default_installs_nothing(paste_conf):
    assert build(http_proxy_to_wsgi, echo_app, paste_conf) is echo_app
    app = TestApp(build(http_proxy_to_wsgi, echo_app, paste_conf), extra_environ=BASE)
    _assert_seen(
        app,
        {"X-Forwarded-Proto": "https", "X-Forwarded-For": "1.2.3.4"},
        {"wsgi.url_scheme": "http", "REMOTE_ADDR": "10.0.0.1"},
    )


def test_enabled_from_service_config(tmp_path):
    cfg = tmp_path / "myservice.conf"
    cfg.write_text("[http_proxy_to_wsgi]\nenable_proxy_headers_parsing = yes\n")
    wrapped = build(http_proxy_to_wsgi, echo_app, {"here": str(tmp_path), "config_file": str(cfg)})
    assert isinstance(wrapped, http_proxy_to_wsgi.HTTPProxyToWSGI)


def test_x_forwarded_headers(app):
    _assert_seen(
        app,
        {
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "api.example.com",
            "X-Forwarded-For": "203.0.113.7",
            "X-Forwarded-Prefix": "/identity/",
        },
        {
            "wsgi.url_scheme": "https",
            "HTTP_HOST": "api.example.com",
            "SERVER_NAME": "api.example.com",
            "SERVER_PORT": "443",
            "REMOTE_ADDR": "203.0.113.7",
            "SCRIPT_NAME": "/identity",
        },
    )


def _behind(paste_conf, proxies: int, family: str = "x-forwarded") -> TestApp:
    wrapped = build(
        http_proxy_to_wsgi,
        echo_app,
        paste_conf,
        enable_proxy_headers_parsing="true",
        trusted_proxies=str(proxies),
        proxy_headers=family,
    )
    return TestApp(wrapped, extra_environ=BASE)


@pytest.fixture
def rfc7239(paste_conf):
    """The filter told that the proxy sets ``Forwarded``."""
    return _behind(paste_conf, 1, "forwarded")


# a client sent "X-Forwarded-For: 6.6.6.6"; then each proxy appended the address it saw
CHAIN = "6.6.6.6, 203.0.113.7, 10.1.1.1"


@pytest.mark.parametrize(
    ("proxies", "seen"),
    [
        (1, "10.1.1.1"),  # the default: what the proxy nearest the service saw
        (2, "203.0.113.7"),
        (3, "6.6.6.6"),  # told to trust three hops, it reads what the client sent
        (4, "10.0.0.1"),  # fewer elements than proxies: the header is ignored
    ],
)
def test_the_element_added_by_the_trusted_proxies_is_read(paste_conf, proxies, seen):
    _assert_seen(_behind(paste_conf, proxies), {"X-Forwarded-For": CHAIN}, {"REMOTE_ADDR": seen})


def test_a_client_cannot_forge_its_address_by_default(app, rfc7239):
    # nginx's $proxy_add_x_forwarded_for keeps the client's header and appends the address
    _assert_seen(
        app, {"X-Forwarded-For": "127.0.0.1, 198.51.100.23"}, {"REMOTE_ADDR": "198.51.100.23"}
    )
    _assert_seen(
        rfc7239,
        {"Forwarded": "for=127.0.0.1;proto=https, for=198.51.100.23;proto=http"},
        {"REMOTE_ADDR": "198.51.100.23", "wsgi.url_scheme": "http"},
    )


def test_the_family_the_proxy_does_not_set_is_ignored(app, rfc7239):
    # a client's own Forwarded, passed through by a proxy that sets X-Forwarded-*
    _assert_seen(
        app,
        {
            "Forwarded": "for=6.6.6.6;host=evil.example;proto=https",
            "X-Forwarded-For": "198.51.100.23",
        },
        {"REMOTE_ADDR": "198.51.100.23", "HTTP_HOST": "10.0.0.5:8790", "wsgi.url_scheme": "http"},
    )
    # and the other way round
    _assert_seen(
        rfc7239,
        {
            "X-Forwarded-For": "6.6.6.6",
            "X-Forwarded-Host": "evil.example",
            "Forwarded": "for=5.5.5.5",
        },
        {"REMOTE_ADDR": "5.5.5.5", "HTTP_HOST": "10.0.0.5:8790"},
    )


def test_a_quote_left_open_cannot_swallow_the_proxys_element(rfc7239):
    # the client sent 'for=6.6.6.6;host="x', the proxy appended ', for=5.5.5.5': read from
    # the right, the proxy's element is whole, and the client's is never looked at
    for sent in ('for=6.6.6.6;host="x', '"', 'for="6.6.6.6, for=7.7.7.7'):
        _assert_seen(
            rfc7239,
            {"Forwarded": f"{sent}, for=5.5.5.5"},
            {"REMOTE_ADDR": "5.5.5.5", "HTTP_HOST": "10.0.0.5:8790"},
        )


def test_an_element_longer_than_any_proxy_writes_is_not_read(rfc7239):
    limit = http_proxy_to_wsgi._MAX_ELEMENT
    fits = "for=5.5.5.5;x=" + "a" * (limit - len("for=5.5.5.5;x="))
    assert len(fits) == limit
    assert http_proxy_to_wsgi.parse_forwarded(f"junk,{fits}")["for"] == "5.5.5.5"
    assert http_proxy_to_wsgi.parse_forwarded(fits + "a") == {}
    # nor is one further left that hops would need
    assert http_proxy_to_wsgi.parse_forwarded("x" * (limit + 1) + ", for=5.5.5.5", 2) == {}


def test_quoted_strings_keep_their_escapes(rfc7239):
    value = 'for="[2001:db8::1]";host="a\\"b.example", for="198.51.100.7"'
    assert http_proxy_to_wsgi.parse_forwarded(value, 2) == {
        "for": "[2001:db8::1]",
        "host": 'a"b.example',
    }
    _assert_seen(rfc7239, {"Forwarded": value}, {"REMOTE_ADDR": "198.51.100.7"})


def test_x_forwarded_proto_and_host_are_read_as_the_value_the_proxy_set(paste_conf):
    # two proxies: the client's and the outer proxy's values come first, the nearest
    # proxy's last; Host and Proto are replaced rather than appended to, so the last counts
    _assert_seen(
        _behind(paste_conf, 2),
        {
            "X-Forwarded-For": "6.6.6.6, 203.0.113.7, 10.1.1.1",
            "X-Forwarded-Proto": "http, https",
            "X-Forwarded-Host": "evil.example, api.example.com",
        },
        {
            "REMOTE_ADDR": "203.0.113.7",
            "wsgi.url_scheme": "https",
            "HTTP_HOST": "api.example.com",
        },
    )


def test_a_bad_proxy_headers_value_is_a_config_error(paste_conf):
    with pytest.raises(ConfigError, match=r"proxy_headers: expected one of x-forwarded, forwarded"):
        _behind(paste_conf, 1, "x-forwarded-for")


@pytest.mark.parametrize(("hops", "family"), [(0, "x-forwarded"), (1, "X-Forwarded")])
def test_the_class_refuses_what_the_options_refuse(hops, family):
    with pytest.raises(ValueError, match=r"HTTPProxyToWSGI: (hops|family) must be"):
        http_proxy_to_wsgi.HTTPProxyToWSGI(echo_app, hops, family)


def test_trusted_proxies_out_of_range_is_a_config_error(paste_conf):
    with pytest.raises(
        ConfigError, match=r"\[http_proxy_to_wsgi\] trusted_proxies: expected a value >= 1"
    ):
        _behind(paste_conf, 0)


def test_x_forwarded_host_with_port(app):
    _assert_seen(
        app,
        {"X-Forwarded-Host": "api.example.com:8443"},
        {
            "SERVER_NAME": "api.example.com",
            "SERVER_PORT": "8443",
            "HTTP_HOST": "api.example.com:8443",
        },
    )


def test_forwarded_header(paste_conf):
    _assert_seen(
        _behind(paste_conf, 2, "forwarded"),
        {
            "Forwarded": 'for="[2001:db8:cafe::17]:4711";proto=https;host="api.example.com", '
            "for=198.51.100.1;proto=http"
        },
        {
            "wsgi.url_scheme": "https",
            "HTTP_HOST": "api.example.com",
            "SERVER_PORT": "443",
            "REMOTE_ADDR": "2001:db8:cafe::17",
        },
    )


def test_the_prefix_is_read_only_from_a_proxy_setting_x_forwarded_headers(rfc7239, paste_conf):
    # a proxy setting Forwarded passes a client's X-Forwarded-Prefix through
    _assert_seen(
        rfc7239,
        {"Forwarded": "proto=https", "X-Forwarded-Prefix": "api"},
        {"SCRIPT_NAME": "", "wsgi.url_scheme": "https"},
    )
    # of several values (a client's, then the proxy's), the proxy's, the last
    _assert_seen(
        _behind(paste_conf, 1),
        {"X-Forwarded-Prefix": "/evil, /api"},
        {"SCRIPT_NAME": "/api"},
    )


def test_the_prefix_is_not_read_with_a_public_endpoint(tmp_path):
    cfg = tmp_path / "myservice.conf"
    cfg.write_text(
        "[api]\npublic_endpoint = https://api.example.com/compute\n\n"
        "[http_proxy_to_wsgi]\nenable_proxy_headers_parsing = true\n"
    )
    wrapped = build(http_proxy_to_wsgi, echo_app, {"here": str(tmp_path), "config_file": str(cfg)})
    _assert_seen(
        TestApp(wrapped, extra_environ=BASE),
        {"X-Forwarded-Prefix": "/@evil.example", "X-Forwarded-For": "198.51.100.1"},
        {"SCRIPT_NAME": "", "REMOTE_ADDR": "198.51.100.1"},
    )


@pytest.mark.parametrize(
    "host",
    ["h@evil", ":80", "h:\u00b2", "[::1", "a b", "a/b", "a\\b", "h?x", "h#x", "h:123456"],
)
def test_a_host_that_is_not_an_rfc3986_host_and_port_is_ignored(app, host):
    _assert_seen(app, {"X-Forwarded-Host": host}, {"HTTP_HOST": "10.0.0.5:8790"})


@pytest.mark.parametrize("host", ["api.example.com", "api.example.com:8443", "[2001:db8::1]:443"])
def test_rfc3986_hosts_are_taken(app, host):
    _assert_seen(app, {"X-Forwarded-Host": host}, {"HTTP_HOST": host})


def test_an_ipv6_zone_id_is_not_an_address(app):
    _assert_seen(app, {"X-Forwarded-For": "fe80::1%eth0 x"}, {"REMOTE_ADDR": "10.0.0.1"})
    _assert_seen(app, {"X-Forwarded-For": "fe80::1%eth0"}, {"REMOTE_ADDR": "10.0.0.1"})


def test_a_header_of_the_family_not_read_is_warned_about_once(app, rfc7239, caplog):
    with caplog.at_level(logging.WARNING, logger="myservice.middleware.http_proxy_to_wsgi"):
        for _ in range(3):
            app.get("/", headers={"Forwarded": "for=5.5.5.5"})
            rfc7239.get("/", headers={"X-Forwarded-For": "5.5.5.5"})
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "http_proxy_to_wsgi: a Forwarded header came and is ignored ([http_proxy_to_wsgi] "
        "proxy_headers names the other family); if the proxy in front sets it, set "
        "proxy_headers = forwarded (said once)",
        "http_proxy_to_wsgi: a X-Forwarded-For header came and is ignored "
        "([http_proxy_to_wsgi] proxy_headers names the other family); if the proxy in front "
        "sets it, set proxy_headers = x-forwarded (said once)",
    ]


@pytest.mark.parametrize(
    "headers",
    [
        {"Forwarded": "for=unknown;proto=gopher"},
        {"Forwarded": 'for="_hidden"'},
        {"X-Forwarded-Proto": "javascript", "X-Forwarded-For": "unknown"},
        {"X-Forwarded-Host": "evil host/x"},
        {"X-Forwarded-For": '6.6.6.6 "FAKE" status 200'},  # text after an address
        {"X-Forwarded-For": "client.example.org"},  # a name, not an address
        {"Forwarded": 'for="6.6.6.6 x"'},
        {"Forwarded": "for=[2001:db8::zz]"},
        {"X-Forwarded-Prefix": "//evil.example/x"},  # a link would name another host
        {"X-Forwarded-Prefix": "/a/../b"},
        {"X-Forwarded-Prefix": '/a"b'},
        {"X-Forwarded-Prefix": "/a b"},
    ],
)
def test_invalid_values_are_ignored(app, rfc7239, headers):
    filtered = rfc7239 if "Forwarded" in headers else app  # read by the family it belongs to
    _assert_seen(
        filtered,
        headers,
        {
            "wsgi.url_scheme": "http",
            "REMOTE_ADDR": "10.0.0.1",
            "HTTP_HOST": "10.0.0.5:8790",
            "SCRIPT_NAME": "",
        },
    )


@pytest.mark.parametrize(
    ("given", "seen"),
    [
        ("192.0.2.1:4711", "192.0.2.1"),
        ("[2001:DB8::1]:80", "2001:db8::1"),  # canonical text
        ("2001:db8::1", "2001:db8::1"),
    ],
)
def test_addresses_are_read_with_or_without_a_port(app, given, seen):
    _assert_seen(app, {"X-Forwarded-For": given}, {"REMOTE_ADDR": seen})


@pytest.mark.parametrize(
    ("given", "seen"),
    [("identity", "/identity"), ("/a/b/", "/a/b"), ("/v%C3%A9/x~y", "/v%C3%A9/x~y")],
)
def test_prefixes_that_are_plain_paths_are_used(app, given, seen):
    _assert_seen(app, {"X-Forwarded-Prefix": given}, {"SCRIPT_NAME": seen})


def test_no_proxy_headers_changes_nothing(app):
    _assert_seen(app, {}, {"REMOTE_ADDR": "10.0.0.1", "SCRIPT_NAME": ""})


def test_parse_forwarded_unquotes_and_reads_the_element_asked_for():
    value = 'For="a,b";PROTO=https, for=c'
    assert http_proxy_to_wsgi.parse_forwarded(value, 2) == {"for": "a,b", "proto": "https"}
    assert http_proxy_to_wsgi.parse_forwarded(value) == {"for": "c"}
    assert http_proxy_to_wsgi.parse_forwarded(value, 3) == {}


def test_bad_option_value(paste_conf):
    with pytest.raises(ConfigError, match=r"enable_proxy_headers_parsing: expected a boolean"):
        http_proxy_to_wsgi.filter_factory(paste_conf, enable_proxy_headers_parsing="maybe")
