"""Private addresses: which the crawler refuses (crawler.failures), what a listed feed host or
crawler.allow_private_hosts lets through, and the check of the address a response really came from
(crawler.extensions.ConnectedAddressGuard). The crawls themselves are in tests/test_crawl_hardening.py."""

from __future__ import annotations

import http.client
import ipaddress
from pathlib import Path

import pytest
from scrapy import Request
from scrapy.exceptions import IgnoreRequest
from scrapy.http import HtmlResponse
from twisted.python.failure import Failure

from crawler.extensions import ALLOWED_SETTING, FEED_HOSTS_SETTING, ConnectedAddressGuard
from crawler.failures import REFUSAL_META, AddressPolicy, classify_failure, private_kind
from crawler.spiders.feeds import user_settings
from newswatch.core.config import load_config
from newswatch.core.errors import ConfigError
from newswatch.demo.server import serve_site
from tests.conftest import write_config

REFUSED = {
    "10.1.2.3": "private",
    "172.16.5.4": "private",
    "192.168.0.10": "private",
    "169.254.169.254": "link-local",  # the cloud metadata service
    "127.0.0.2": "loopback",
    "0.0.0.0": "unspecified",
    "224.0.0.251": "multicast",
    "100.64.0.1": "not globally routable",  # carrier-grade NAT, VPN meshes
    "::1": "loopback",
    "fc00::1": "private",
    "fe80::1": "link-local",
    "ff02::1": "multicast",
    "::": "unspecified",
    "::ffff:10.0.0.1": "private",  # IPv4-mapped: judged as the IPv4 address
    "2002:7f00:1::1": "loopback",  # 6to4 of 127.0.0.1
}


@pytest.mark.parametrize(("address", "kind"), REFUSED.items())
def test_non_public_addresses_are_classified(address: str, kind: str):
    assert private_kind(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.215.14", "2001:4860:4860::8888", "::ffff:8.8.8.8"])
def test_public_addresses_are_not(address: str):
    assert private_kind(ipaddress.ip_address(address)) is None


def test_a_listed_feed_host_is_let_through_by_its_name_as_written():
    """A feed listed on 127.0.0.1 or intranet.example: those hosts go anywhere they resolve; another name for
    the same address (localhost) does not, nor does another loopback address."""
    policy = AddressPolicy.of(["127.0.0.1", "Intranet.Example.", "أخبار.example"])
    loopback = ipaddress.ip_address("127.0.0.1")
    assert policy.refusal("127.0.0.1", loopback) is None and policy.listed("intranet.example")
    assert policy.refusal("intranet.example", ipaddress.ip_address("10.0.0.5")) is None
    assert policy.refusal("localhost", loopback) == "private address 127.0.0.1 (loopback)"
    assert policy.refusal("127.0.0.2", ipaddress.ip_address("127.0.0.2")) == "private address 127.0.0.2 (loopback)"
    assert policy.refusal("news.example", ipaddress.ip_address("8.8.8.8")) is None
    assert policy.listed("xn--igbicxr.example")  # as Scrapy requests an internationalized name


def test_allow_private_hosts_takes_names_addresses_and_networks():
    policy = AddressPolicy.of([], ["10.0.0.0/8", "::1", "[fd00::7]", "wiki.corp"])
    assert policy.refusal("a.example", ipaddress.ip_address("10.20.30.40")) is None
    assert policy.refusal("::1", ipaddress.ip_address("::1")) is None
    assert policy.refusal("fd00::7", ipaddress.ip_address("fd00::7")) is None
    assert policy.refusal("wiki.corp", ipaddress.ip_address("192.168.1.1")) is None
    assert policy.refusal("a.example", ipaddress.ip_address("192.168.1.1")) == "private address 192.168.1.1 (private)"


def test_the_crawl_is_told_the_feed_hosts_and_the_allowed_ones(config_dir: Path):
    write_config(
        config_dir,
        feeds=[{"name": "A", "url": "http://127.0.0.1:8000/feed.xml"}, {"name": "B", "url": "https://Intra.Example/"}],
        settings={"crawler": {"allow_private_hosts": ["10.0.0.0/8", "intranet.example", "::1", "[fd00::1]"]}},
    )
    settings = user_settings(load_config(config_dir))
    assert settings[FEED_HOSTS_SETTING] == ["127.0.0.1", "intra.example"]
    assert settings[ALLOWED_SETTING] == ["10.0.0.0/8", "intranet.example", "::1", "[fd00::1]"]


def test_allow_private_hosts_entries_are_checked(config_dir: Path):
    write_config(config_dir, settings={"crawler": {"allow_private_hosts": ["10.0.0.1", "http://10.0.0.1/"]}})
    with pytest.raises(ConfigError) as error:
        load_config(config_dir)
    assert str(error.value) == (
        f"{config_dir / 'settings.yaml'}: crawler.allow_private_hosts: Value error, not a host name, IP address "
        "or CIDR network: 'http://10.0.0.1/'"
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("site")
    (tmp_path / "story.html").write_text("<html><body><p>" + "Internal wiki page. " * 10 + "</p></body></html>")
    server = serve_site(tmp_path)
    yield server
    server.shutdown()
    server.server_close()


def _fetched(url_host: str, port: int) -> tuple[Request, HtmlResponse]:
    """A real response of the server on 127.0.0.1, asked for by the name ``url_host``, with the address the
    connection really reached as its ``ip_address`` (what Scrapy's HTTP handler records)."""
    connection = http.client.HTTPConnection(url_host, port, timeout=10)
    try:
        connection.request("GET", "/story.html")
        peer = connection.sock.getpeername()[0]
        answer = connection.getresponse()
        body = answer.read()
    finally:
        connection.close()
    request = Request(f"http://{url_host}:{port}/story.html", meta={"feed_id": "wire"})
    response = HtmlResponse(
        request.url, status=answer.status, body=body, request=request, ip_address=ipaddress.ip_address(peer)
    )
    return request, response


def test_a_response_from_a_private_address_is_refused_whatever_its_host_name(server):
    """DNS rebinding: a name that resolved to a public address when the request was checked may connect to a
    private one. Here `localhost` (no feed lists it; the feed is listed as 127.0.0.1) really connected to
    127.0.0.1: the response is refused, and its request's errback sees a lasting refusal with that reason."""
    port = server.server_address[1]
    request, response = _fetched("localhost", port)
    assert response.ip_address.is_loopback and b"Internal wiki" in response.body
    guard = ConnectedAddressGuard(AddressPolicy.of(["127.0.0.1"]))
    with pytest.raises(IgnoreRequest):
        guard.process_response(request, response)
    reason = "private address 127.0.0.1 (loopback); crawler.allow_private_hosts can allow it"
    assert request.meta[REFUSAL_META] == reason
    failure = Failure(IgnoreRequest(reason))
    failure.request = request
    assert (classify_failure(failure).reason, classify_failure(failure).transient) == (reason, False)


@pytest.mark.parametrize(
    ("feed_hosts", "allowed"), [(["localhost"], []), (["127.0.0.1"], ["127.0.0.0/8"]), ([], ["localhost"])]
)
def test_a_response_from_an_allowed_private_address_passes(server, feed_hosts, allowed):
    request, response = _fetched("localhost", server.server_address[1])
    assert ConnectedAddressGuard(AddressPolicy.of(feed_hosts, allowed)).process_response(request, response) is response
    assert REFUSAL_META not in request.meta


def test_a_response_from_a_public_address_passes(server):
    request, response = _fetched("localhost", server.server_address[1])
    public = response.replace(ip_address=ipaddress.ip_address("93.184.215.14"))
    assert ConnectedAddressGuard(AddressPolicy.of([])).process_response(request, public) is public
