"""Where a webhook may go: every URL and address problem named at registration, and the rules a
post is checked against (loopback, private, shared, metadata and IPv4-in-IPv6 addresses)."""

from __future__ import annotations

import ipaddress

import pytest

from reelroute.models.assembly import load_settings
from reelroute.models.core.errors import InvalidInput
from reelroute.models.core.networks import parse_networks
from reelroute.models.core.settings import SettingsError
from reelroute.models.outbox.addresses import (
    Refused,
    address_problem,
    check_url,
    parse_url,
    resolve,
)


def resolver(*addresses: str):
    return lambda _host, _port: list(addresses)


PUBLIC = resolver("93.184.216.34")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://example.com:99999/h", "port"),
        ("https://example.com:0/h", "port 0"),
        ("https://a..b.example/h", "not a valid host name"),
        ("https://" + "x" * 64 + ".example/h", "not a valid host name"),
        ("https://exa mple.com/h", "a space or a control character"),
        ("https://example.com/h\x00", "a space or a control character"),
        ("https://user:pw@example.com/h", "user or password"),
        ("ftp://example.com/h", "ftp scheme"),
        ("https:///h", "no host"),
        ("https://example.com/" + "p" * 2000, "longer than 2000"),
    ],
)
def test_a_bad_url_is_refused_at_registration_naming_the_problem(url, problem):
    with pytest.raises(InvalidInput, match=problem):
        check_url(url, [], PUBLIC)


def test_a_good_url_is_split_for_a_pinned_post():
    target = parse_url("https://Bücher.example:8443/hook?x=1")
    assert target.host == "xn--bcher-kva.example"
    assert (target.port, target.target) == (8443, "/hook?x=1")
    assert target.host_header == "xn--bcher-kva.example:8443"
    assert target.pinned("93.184.216.34") == "https://93.184.216.34:8443/hook?x=1"
    assert parse_url("https://[2606:4700::1]/h").pinned("2606:4700::1") == (
        "https://[2606:4700::1]:443/h"
    )


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("10.1.2.3", "not a public address"),
        ("100.100.100.200", "not a public address"),  # shared space: a cloud's metadata service
        ("169.254.169.254", "cloud metadata"),
        ("::1", "loopback"),
        ("fd00:ec2::254", "cloud metadata"),
        ("2002:a00:1::1", "around 10.0.0.1"),  # 6to4 around a private IPv4
        ("::ffff:10.0.0.1", "around 10.0.0.1"),  # IPv4-mapped
        ("64:ff9b::a00:1", "around 10.0.0.1"),  # NAT64 around a private IPv4
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "not a public address"),
    ],
)
def test_addresses_that_are_not_public_are_refused(address, why):
    assert why in (address_problem(ipaddress.ip_address(address), []) or "")


def test_public_addresses_pass_and_an_allow_list_opens_a_network():
    assert address_problem(ipaddress.ip_address("93.184.216.34"), []) is None
    assert address_problem(ipaddress.ip_address("2606:4700::1111"), []) is None
    local = parse_networks("127.0.0.0/8, 10.0.0.0/8")
    assert address_problem(ipaddress.ip_address("10.1.2.3"), local) is None
    assert address_problem(ipaddress.ip_address("192.168.1.1"), local) is not None


@pytest.mark.parametrize("networks", ["0.0.0.0/0", "169.254.0.0/16", "169.254.169.254/32", "::/0"])
def test_an_allow_list_can_never_hold_a_metadata_range(networks):
    with pytest.raises(SettingsError, match="can never be allowed"):
        load_settings(_env_file=None, webhook_allow_networks=networks)


def test_the_old_switch_is_refused_naming_its_replacement(monkeypatch):
    monkeypatch.setenv("REELROUTE_WEBHOOK_ALLOW_PRIVATE", "true")
    with pytest.raises(SettingsError, match="REELROUTE_WEBHOOK_ALLOW_NETWORKS"):
        load_settings(_env_file=None)


def test_a_name_with_one_private_address_among_public_ones_is_refused():
    target = parse_url("https://mixed.example/h")
    with pytest.raises(Refused, match=r"10\.0\.0\.5"):
        resolve(target, [], resolver("93.184.216.34", "10.0.0.5"))
    assert resolve(target, [], resolver("93.184.216.34", "93.184.216.35")) == "93.184.216.34"


def test_plain_http_only_to_an_allowed_network():
    local = parse_networks("127.0.0.0/8")
    assert resolve(parse_url("http://127.0.0.1:9/h"), local, resolver("127.0.0.1")) == "127.0.0.1"
    with pytest.raises(Refused, match="plain http"):
        resolve(parse_url("http://example.com/h"), local, PUBLIC)
    with pytest.raises(Refused, match="does not resolve"):
        resolve(parse_url("https://nowhere.example/h"), [], resolver())


@pytest.mark.parametrize("token", ["admin_token", "worker_token", "metrics_token"])
def test_the_signing_key_must_differ_from_the_tokens(token):
    same = "t" * 40
    with pytest.raises(SettingsError, match="REELROUTE_WEBHOOK_SIGNING_KEY equals"):
        load_settings(_env_file=None, **{token: same}, webhook_signing_key=same)
