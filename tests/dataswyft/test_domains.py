"""PDA domain validation (pure logic plus the system resolver): what may be contacted and what
never is, with a message that names the problem."""

from __future__ import annotations

import socket

import pytest

from worker.config import Settings
from worker.dataswyft import DomainPolicy, validate_content_url, validate_pda_domain
from worker.dataswyft import domains as domains_module
from worker.errors import ValidationError

HUBAT = ("hubat.net", "dataswift.me")


def check(domain: str, *, sandbox: bool = False, suffixes=HUBAT) -> str:
    return validate_pda_domain(domain, allowed_suffixes=suffixes, sandbox_mode=sandbox,
                               resolve=False)


@pytest.mark.parametrize("domain, expected", [
    ("alice.hubat.net", "alice.hubat.net"),
    ("Alice.HUBAT.net", "alice.hubat.net"),
    ("a-b.c.dataswift.me", "a-b.c.dataswift.me"),
    ("x1.hubat.net", "x1.hubat.net"),
    ("123.hubat.net", "123.hubat.net"),
])
def test_good_domains(domain, expected):
    assert check(domain) == expected


@pytest.mark.parametrize("domain, reason", [
    ("", "empty"),
    ("hubat.net", "not a subdomain"),
    ("evilhubat.net", "not a subdomain"),
    ("alice.hubat.net.evil.com", "not a subdomain"),
    ("https://alice.hubat.net", "without a scheme"),
    ("alice.hubat.net/path", "without a path"),
    ("x.hubat.net/path", "without a path"),
    ("user@x.hubat.net", "without user information"),
    ("alice.hubat.net?x=1", "without a query"),
    ("alice.hubat.net#f", "without a fragment"),
    ("alice.hubat.net\\x", "without a backslash"),
    ("alice%2ehubat.net", "percent-encoding"),
    (" alice.hubat.net", "whitespace"),
    ("alice .hubat.net", "whitespace"),
    ("alice.hubat.net\n", "whitespace"),
    ("alice..hubat.net", "empty label"),
    (".alice.hubat.net", "empty label"),
    ("alice.hubat.net.", "empty label"),
    ("-alice.hubat.net", "label"),
    ("al_ice.hubat.net", "label"),
    ("ålice.hubat.net", "non-ASCII"),
    ("x.hubat.net:8080", "port"),
    ("x.hubat.net:", "malformed port"),
    ("x.hubat.net:99999", "malformed port"),
    ("127.0.0.1", "IP address literal"),
    ("[::1]", "IP address literal"),
    ("[::1]:8080", "IP address literal"),
    ("::1", "IP address literal"),
    ("0x7f000001", "IP address literal"),
    ("2130706433", "IP address literal"),
    ("0x7f.1", "IP address literal"),
    ("127.1", "IP address literal"),
    ("0177.0.0.1", "IP address literal"),
    ("10.0.0.1:80", "IP address literal"),
    ("alice.hubat.0x7f", "IP address literal"),
    ("a" * 64 + ".hubat.net", "label"),
    (("a" * 60 + ".") * 5 + "hubat.net", "longer than"),
])
def test_bad_domains(domain, reason):
    with pytest.raises(ValidationError, match=reason) as info:
        check(domain)
    assert str(info.value) != "invalid"


@pytest.mark.parametrize("domain", ["127.0.0.1:8080", "[::1]:8080", "2130706433", "0x7f.1",
                                    "user@localhost:1", "localhost:1/path", "http://localhost:1"])
def test_sandbox_mode_still_refuses_literals_and_urls(domain):
    with pytest.raises(ValidationError):
        check(domain, sandbox=True, suffixes=("localhost",))


def test_sandbox_mode_allows_localhost_and_ports():
    assert check("localhost:38925", sandbox=True, suffixes=("localhost",)) == "localhost:38925"
    assert check("LOCALHOST", sandbox=True, suffixes=("localhost",)) == "localhost"
    assert check("pda.localhost:1", sandbox=True, suffixes=("localhost",)) == "pda.localhost:1"
    with pytest.raises(ValidationError, match="not a subdomain"):
        check("localhost:38925", sandbox=True, suffixes=("hubat.net",))


def test_localhost_is_refused_outside_sandbox_mode():
    for domain in ("localhost", "localhost:38925"):
        with pytest.raises(ValidationError):
            validate_pda_domain(domain, allowed_suffixes=("localhost",), sandbox_mode=False)


def test_name_resolving_to_loopback_is_refused_outside_sandbox_mode():
    """`localhost` resolves through the real system resolver: loopback is refused."""
    with pytest.raises(ValidationError, match="loopback"):
        domains_module.check_resolves_public("localhost")


def fake_resolver(monkeypatch, addresses: list[str]) -> None:
    def getaddrinfo(host, port, *args, **kwargs):
        family = socket.AF_INET6 if ":" in addresses[0] else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    monkeypatch.setattr(domains_module.socket, "getaddrinfo", getaddrinfo)


@pytest.mark.parametrize("addresses, reason", [
    (["127.0.0.1"], "loopback"),
    (["10.1.2.3"], "private"),
    (["192.168.0.10"], "private"),
    (["172.16.5.4"], "private"),
    (["169.254.169.254"], "link-local"),
    (["0.0.0.0"], "unspecified"),
    (["224.0.0.1"], "multicast"),
    (["100.64.0.1"], "non-public"),
    (["240.0.0.1"], "reserved"),
    (["::1"], "loopback"),
    (["fe80::1%eth0"], "link-local"),
    (["fd00::1"], "private"),
    (["::ffff:127.0.0.1"], "loopback"),
    (["93.184.216.34", "10.0.0.5"], "private"),
])
def test_non_public_addresses_are_refused(monkeypatch, addresses, reason):
    fake_resolver(monkeypatch, addresses)
    with pytest.raises(ValidationError, match=reason):
        validate_pda_domain("alice.hubat.net", allowed_suffixes=HUBAT, sandbox_mode=False)


def test_public_addresses_pass(monkeypatch):
    fake_resolver(monkeypatch, ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"])
    assert validate_pda_domain("alice.hubat.net", allowed_suffixes=HUBAT,
                               sandbox_mode=False) == "alice.hubat.net"


def test_dns_failure_is_a_clear_error():
    with pytest.raises(ValidationError, match="does not resolve"):
        validate_pda_domain("nobody.example.invalid", allowed_suffixes=("example.invalid",),
                            sandbox_mode=False)


def test_no_resolution_in_sandbox_mode(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("resolved in sandbox mode")

    monkeypatch.setattr(domains_module.socket, "getaddrinfo", boom)
    assert check("localhost:1", sandbox=True, suffixes=("localhost",)) == "localhost:1"


def test_policy_from_settings_and_cache(monkeypatch):
    policy = DomainPolicy.from_settings(Settings(sandbox_mode=True))
    assert policy.sandbox_mode and "hubat.net" in policy.allowed_suffixes
    calls: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        calls.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))]

    monkeypatch.setattr(domains_module.socket, "getaddrinfo", getaddrinfo)
    strict = DomainPolicy(allowed_suffixes=HUBAT)
    assert strict.check("Alice.hubat.net") == "alice.hubat.net"
    assert strict.check("Alice.hubat.net") == "alice.hubat.net"
    assert calls == ["alice.hubat.net"]
    with pytest.raises(ValidationError):
        strict.check("127.0.0.1")


def test_content_urls(monkeypatch):
    fake_resolver(monkeypatch, ["52.95.1.1"])
    validate_content_url("https://bucket.s3.eu-west-1.amazonaws.com/k?X-Amz-Signature=a",
                         sandbox_mode=False)
    for url in ("http://bucket.s3.amazonaws.com/k", "https://10.0.0.1/k", "https://u:p@s3.aws/k",
                "https://0x7f000001/k", "file:///etc/passwd", ""):
        with pytest.raises(ValidationError):
            validate_content_url(url, sandbox_mode=False)
    fake_resolver(monkeypatch, ["127.0.0.1"])
    with pytest.raises(ValidationError, match="loopback"):
        validate_content_url("https://s3.internal/k", sandbox_mode=False)
    validate_content_url("http://localhost:1/_s3/k?x=1", sandbox_mode=True)
