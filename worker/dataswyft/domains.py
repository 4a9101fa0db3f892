"""PDA domain validation: the guard against SSRF through a user-typed domain.

A PDA domain comes from a person (the sign-in form) or from a stored credential, and every
request datapost makes to a PDA is built from it. So before any request the domain must be a
bare `host[:port]` under a configured suffix, never an IP literal (in any of the spellings
that `inet_aton` and browsers accept), and — outside sandbox mode — resolve only to public
addresses. Resolution here narrows, but cannot close, the DNS-rebinding window: the HTTP
client resolves again when it connects.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ..config import DEFAULT_PDA_SUFFIXES, Settings
from ..errors import ValidationError

MAX_DOMAIN = 253
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# WHATWG URL "ends in a number": such a host is parsed as IPv4 (`2130706433`, `0x7f.1`, `127.1`).
_NUMERIC_LABEL = re.compile(r"(?:[0-9]+|0x[0-9a-f]*)")
_FORBIDDEN = (("/", "a path"), ("\\", "a backslash"), ("?", "a query"), ("#", "a fragment"),
              ("@", "user information"), ("%", "percent-encoding"))


def _show(domain: str) -> str:
    """The domain for an error message: quoted, without control characters, bounded."""
    text = re.sub(r"[\x00-\x1f\x7f]", "?", domain)
    return repr(text if len(text) <= 80 else text[:80] + "…")


def _ip_literal(host: str) -> bool:
    if host.startswith("[") or ":" in host:
        return True
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    return bool(_NUMERIC_LABEL.fullmatch(host.rsplit(".", 1)[-1]))


def _split_port(text: str, shown: str) -> tuple[str, int | None]:
    if text.startswith("[") or text.count(":") > 1:
        raise ValidationError(f"PDA domain {shown} is an IP address literal; use the PDA's host name")
    host, sep, port_text = text.partition(":")
    if not sep:
        return host, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536 or port_text.startswith("0"):
        raise ValidationError(f"PDA domain {shown} has a malformed port")
    return host, int(port_text)


def _check_syntax(domain: object) -> tuple[str, int | None]:
    if not isinstance(domain, str):
        raise ValidationError("PDA domain must be a string")
    shown = _show(domain)
    if not domain:
        raise ValidationError("PDA domain is empty")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in domain):
        raise ValidationError(f"PDA domain {shown} contains whitespace or control characters")
    if "://" in domain or re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:/", domain):
        raise ValidationError(f"PDA domain {shown} must be a bare host name, without a scheme "
                              "such as https://")
    for char, what in _FORBIDDEN:
        if char in domain:
            raise ValidationError(f"PDA domain {shown} must be a bare host name, without {what}")
    if not domain.isascii():
        raise ValidationError(f"PDA domain {shown} has non-ASCII characters; use its xn-- form")
    host, port = _split_port(domain.lower(), shown)
    if _ip_literal(host):
        raise ValidationError(f"PDA domain {shown} is an IP address literal; use the PDA's host name")
    if len(host) > MAX_DOMAIN:
        raise ValidationError(f"PDA domain {shown} is longer than {MAX_DOMAIN} characters")
    for label in host.split("."):
        if not label:
            raise ValidationError(f"PDA domain {shown} has an empty label (a leading, trailing or "
                                  "doubled dot)")
        if not _LABEL.fullmatch(label):
            raise ValidationError(f"PDA domain {shown} has a label that is not letters, digits and "
                                  "inner hyphens (at most 63 characters)")
    return host, port


def _under_suffix(host: str, suffixes: tuple[str, ...], sandbox_mode: bool) -> bool:
    for suffix in suffixes:
        suffix = suffix.strip().lower().strip(".")
        if suffix and host.endswith("." + suffix):
            return True
        if sandbox_mode and suffix == "localhost" and host == "localhost":
            return True
    return False


def _address_problem(address: str) -> str | None:
    """Why this resolved address must not be contacted, or None when it is public."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for attribute, what in (("is_unspecified", "unspecified"), ("is_loopback", "loopback"),
                            ("is_link_local", "link-local"), ("is_multicast", "multicast"),
                            ("is_reserved", "reserved"), ("is_private", "private")):
        if getattr(ip, attribute):
            return what
    return None if ip.is_global else "non-public"


def check_resolves_public(host: str, port: int | None = None, *, what: str = "PDA domain") -> None:
    """Resolve `host` and refuse it unless every address is public."""
    try:
        infos = socket.getaddrinfo(host, port or 443, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else "bad name"
        raise ValidationError(f"{what} {_show(host)} does not resolve ({reason})") from None
    if not infos:
        raise ValidationError(f"{what} {_show(host)} does not resolve (no addresses)")
    for info in infos:
        problem = _address_problem(str(info[4][0]))
        if problem:
            raise ValidationError(f"{what} {_show(host)} resolves to a {problem} address; only "
                                  "public addresses are allowed outside sandbox mode")


def normalise_pda_domain(domain: str) -> str:
    """Syntax only: a bare lower-case `host[:port]`, never an IP literal. No suffix or address
    policy; for callers that applied `validate_pda_domain` earlier (it keeps URL building safe)."""
    host, port = _check_syntax(domain)
    return host if port is None else f"{host}:{port}"


def validate_pda_domain(domain: str, *, allowed_suffixes: tuple[str, ...], sandbox_mode: bool,
                        resolve: bool = True) -> str:
    """The normalised `host[:port]` (lower case) of a PDA domain, or ValidationError naming
    the problem. Resolution happens only when `resolve` and not in sandbox mode."""
    host, port = _check_syntax(domain)
    shown = _show(domain)
    if isinstance(allowed_suffixes, str):
        allowed_suffixes = (allowed_suffixes,)
    if not _under_suffix(host, tuple(allowed_suffixes), sandbox_mode):
        names = ", ".join(allowed_suffixes) or "(none configured)"
        raise ValidationError(f"PDA domain {shown} is not a subdomain of an allowed PDA suffix "
                              f"({names})")
    if port is not None and not sandbox_mode:
        raise ValidationError(f"PDA domain {shown} has an explicit port; ports are allowed only "
                              "in sandbox mode")
    if resolve and not sandbox_mode:
        check_resolves_public(host, port)
    return host if port is None else f"{host}:{port}"


def validate_content_url(url: str, *, sandbox_mode: bool, resolve: bool = True) -> None:
    """A presigned upload URL handed out by a PDA: http(s) only (http in sandbox mode), no
    user information, and outside sandbox mode no IP literal or non-public address. The URL is
    never echoed: its query is a credential."""
    if not isinstance(url, str) or not url:
        raise ValidationError("upload contentUrl must be a non-empty string")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise ValidationError("upload contentUrl contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port
    except ValueError:
        raise ValidationError("upload contentUrl is not a valid URL") from None
    allowed = ("https", "http") if sandbox_mode else ("https",)
    if parts.scheme not in allowed:
        raise ValidationError(f"upload contentUrl must use {' or '.join(allowed)}")
    if not host or parts.username is not None or parts.password is not None:
        raise ValidationError("upload contentUrl must name a host and carry no user information")
    if sandbox_mode:
        return
    if _ip_literal(host):
        raise ValidationError("upload contentUrl uses an IP address literal")
    if resolve:
        check_resolves_public(host, parts.port, what="upload host")


@dataclass(frozen=True)
class DomainPolicy:
    """Which PDA domains datapost may contact; built once from Settings and passed down.

    `check` caches successful validations for `cache_seconds` so a busy worker does not
    resolve the same PDA on every request.
    """

    allowed_suffixes: tuple[str, ...] = DEFAULT_PDA_SUFFIXES
    sandbox_mode: bool = False
    resolve: bool = True
    cache_seconds: float = 300.0
    _ok: dict[str, tuple[float, str]] = field(default_factory=dict, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> DomainPolicy:
        return cls(allowed_suffixes=settings.dataswyft.allowed_domains,
                   sandbox_mode=settings.sandbox_mode)

    def check(self, domain: str) -> str:
        """The normalised domain, or ValidationError."""
        key = domain if isinstance(domain, str) else ""
        now = time.monotonic()
        with self._lock:
            cached = self._ok.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        normalised = validate_pda_domain(domain, allowed_suffixes=self.allowed_suffixes,
                                         sandbox_mode=self.sandbox_mode, resolve=self.resolve)
        if self.cache_seconds > 0:
            with self._lock:
                if len(self._ok) > 10_000:
                    self._ok.clear()
                self._ok[key] = (now + self.cache_seconds, normalised)
        return normalised

    def check_content_url(self, url: str) -> None:
        validate_content_url(url, sandbox_mode=self.sandbox_mode, resolve=self.resolve)
