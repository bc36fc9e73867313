"""The outbound address guard: webhook and Slack-webhook URLs may only reach globally routable hosts.

Through the API the ``resolver`` fixture stands in for DNS; numeric host spellings that are not IP
literals (``2130706433``, ``0x7f.1``) go through the real ``system_resolver``, which turns them into
addresses locally (``inet_aton``) without asking DNS.
"""

import pytest

from app.outbound.addresses import (
    BlockedAddress,
    blocked_reason,
    check_url,
    system_resolver,
)
from tests.fixtures import build_app
from tests.watchtools import assert_problem, pointers, watch_body

WATCHES = "/api/v1/watches"


NOT_GLOBAL = [
    "127.0.0.1",  # loopback
    "127.255.255.254",
    "10.0.0.1",  # private
    "172.16.5.4",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata (link-local)
    "169.254.1.1",
    "100.64.0.1",  # carrier-grade NAT
    "100.127.255.254",
    "224.0.0.1",  # multicast
    "239.255.255.250",
    "0.0.0.0",  # noqa: S104 - this network, 0/8: an address to refuse, not to bind
    "0.1.2.3",
    "255.255.255.255",
    "198.18.0.1",  # benchmarking
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "ff02::1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    "2002:c0a8:101::",  # 6to4 of 192.168.1.1
]
GLOBAL = [
    "93.184.216.34",
    "8.8.8.8",
    "2606:2800:220:1:248:1893:25c8:1946",
    "2002:5db8:d822::1",  # 6to4 of 93.184.216.34
    "64:ff9b::5db8:d822",  # NAT64 of 93.184.216.34
]


def url_for_address(address):
    host = f"[{address}]" if ":" in address else address
    return f"https://{host}/hooks/mi"


def target(kind, url):
    return {"type": kind, "url": url}


@pytest.fixture
def post(client, auth_headers):
    def send(*targets):
        return client.post(WATCHES, json=watch_body(targets=list(targets)), headers=auth_headers)

    return send


# --- the rule on addresses ------------------------------------------------------------------------


@pytest.mark.parametrize("address", NOT_GLOBAL)
def test_addresses_that_are_not_globally_routable_are_blocked(address):
    assert blocked_reason(address)


@pytest.mark.parametrize("address", GLOBAL)
def test_global_addresses_pass(address):
    assert blocked_reason(address) is None


def test_reasons_name_the_kind_of_address():
    assert "loopback" in blocked_reason("127.0.0.1")
    assert "link-local" in blocked_reason("169.254.169.254")
    assert "carrier-grade" in blocked_reason("100.64.0.1")
    assert "multicast" in blocked_reason("224.0.0.1")
    assert "private" in blocked_reason("10.0.0.1")
    assert "loopback" in blocked_reason("::ffff:127.0.0.1")


# --- through the API: each URL is sent as a webhook and as a slack_webhook target at once ------

BOTH = ["#/targets/0/url", "#/targets/1/url"]


@pytest.fixture
def post_both(post):
    """POST one URL as a ``webhook`` and a ``slack_webhook`` target of one registration."""

    def send(url):
        return post(target("webhook", url), target("slack_webhook", url))

    return send


def refused_for_both(response):
    assert_problem(response, 422)
    assert pointers(response) == BOTH
    return response.get_json()["errors"]


@pytest.mark.parametrize("address", NOT_GLOBAL)
def test_urls_to_non_global_literals_are_422(post_both, address):
    refused_for_both(post_both(url_for_address(address)))


@pytest.mark.parametrize("address", GLOBAL)
def test_urls_to_global_literals_are_accepted(post_both, address):
    response = post_both(url_for_address(address))
    assert response.status_code == 201, response.get_data(as_text=True)


def test_a_name_that_resolves_to_a_private_address_is_422(post_both, resolver):
    resolver.table["intranet.test"] = ["10.20.30.40"]
    errors = refused_for_both(post_both("https://intranet.test/hook"))
    assert all("10.20.30.40" in error["detail"] for error in errors)


@pytest.mark.parametrize(
    "addresses",
    [["93.184.216.34", "192.168.0.5"], ["192.168.0.5", "93.184.216.34"], ["2606:4700::1", "::1"]],
)
def test_a_name_with_one_public_and_one_private_address_is_422(post_both, resolver, addresses):
    resolver.table["split-horizon.test"] = addresses
    refused_for_both(post_both("https://split-horizon.test/hook"))


def test_names_with_public_addresses_are_accepted(post_both, resolver):
    resolver.table["public.test"] = ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]
    assert post_both("https://public.test:8443/hook").status_code == 201


def test_a_name_that_does_not_resolve_is_accepted(post_both, resolver):
    assert "not-yet-in-dns.test" not in resolver.table
    assert post_both("https://not-yet-in-dns.test/hook").status_code == 201


def test_the_bad_target_is_pointed_at_among_good_ones(post, resolver):
    resolver.table["metadata.test"] = ["169.254.169.254"]
    response = post(
        target("webhook", "https://hooks.example.test/a"),
        {"type": "slack", "channel": "C0123456789"},
        target("slack_webhook", "https://metadata.test/services/T/B/X"),
        target("webhook", "http://127.0.0.1:8080/"),
    )
    assert_problem(response, 422)
    assert pointers(response) == ["#/targets/2/url", "#/targets/3/url"]


@pytest.mark.parametrize(
    "url",
    [
        "ftp://hooks.example.test/x",
        "file:///etc/passwd",
        "gopher://hooks.example.test/",
        "javascript:alert(1)",
        "ws://hooks.example.test/socket",
        "hooks.example.test/x",
        "//hooks.example.test/x",
        "http:///only/a/path",
        "https://",
        "http://:8080/x",
        "https://hooks.example.test:99999/",
        "https://[::1/",
    ],
)
def test_non_http_urls_and_urls_without_a_host_are_422(post_both, url):
    refused_for_both(post_both(url))


def test_the_refusal_does_not_echo_the_url_path(post):
    response = post(target("slack_webhook", "https://10.0.0.1/services/T0/B0/SUPERSECRETPART"))
    assert_problem(response, 422)
    assert "SUPERSECRETPART" not in response.get_data(as_text=True)


# --- BRIDGE_ALLOW_PRIVATE_URLS --------------------------------------------------------------------


@pytest.fixture
def permissive(app_factory, auth_headers, resolver):
    """POST one URL as both target kinds to an app with BRIDGE_ALLOW_PRIVATE_URLS=true."""
    resolver.table["intranet.test"] = ["10.20.30.40"]
    client = app_factory(BRIDGE_ALLOW_PRIVATE_URLS="true").test_client()

    def send(url):
        body = watch_body(targets=[target("webhook", url), target("slack_webhook", url)])
        return client.post(WATCHES, json=body, headers=auth_headers)

    return send


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/hook",
        "https://intranet.test/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/",
    ],
)
def test_allow_private_urls_accepts_private_destinations(permissive, url):
    response = permissive(url)
    assert response.status_code == 201, response.get_data(as_text=True)


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x", "file:///etc/passwd", "http:///x"])
def test_allow_private_urls_still_refuses_other_schemes_and_missing_hosts(permissive, url):
    refused_for_both(permissive(url))


# --- numeric host spellings, resolved by the operating system (no DNS involved) ------------------

NUMERIC_LOOPBACK = ["2130706433", "0x7f.1", "0x7f000001", "0177.0.0.1", "017700000001", "127.1"]


@pytest.mark.parametrize("host", NUMERIC_LOOPBACK)
def test_numeric_spellings_of_loopback_are_blocked_by_check_url(host):
    with pytest.raises(BlockedAddress, match="loopback"):
        check_url(f"http://{host}/hook", resolver=system_resolver)


@pytest.mark.parametrize(
    ("host", "reason"),
    [("0", "not globally routable|private"), ("2852039166", "link-local"), ("0xa.1", "private")],
)
def test_other_numeric_spellings_are_blocked_by_check_url(host, reason):
    with pytest.raises(BlockedAddress, match=reason):
        check_url(f"https://{host}:8443/", resolver=system_resolver)


def test_a_numeric_spelling_of_a_public_address_passes_check_url():
    destination = check_url("https://1572395042/hook", resolver=system_resolver)  # 93.184.216.34
    assert (destination.scheme, destination.port) == ("https", 443)


def test_check_url_reports_scheme_host_and_port():
    destination = check_url("http://93.184.216.34:8080/x", resolver=system_resolver)
    assert (destination.scheme, destination.host, destination.port) == (
        "http",
        "93.184.216.34",
        8080,
    )


def test_allow_private_skips_resolution_but_not_the_scheme():
    assert check_url("http://2130706433/", resolver=system_resolver, allow_private=True)
    with pytest.raises(BlockedAddress):
        check_url("ftp://93.184.216.34/", resolver=system_resolver, allow_private=True)


@pytest.mark.parametrize("host", ["2130706433", "0x7f.1"])
def test_numeric_spellings_are_422_through_the_api_with_the_system_resolver(
    tmp_path, auth_headers, host
):
    app = build_app(f"sqlite:///{tmp_path}/system.db", resolver=system_resolver)
    url = f"http://{host}/hook"
    body = watch_body(targets=[target("webhook", url), target("slack_webhook", url)])
    refused_for_both(app.test_client().post(WATCHES, json=body, headers=auth_headers))
