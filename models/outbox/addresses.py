"""Where reelroute will post a webhook: checked when an endpoint is registered and again at every
post, against the address the post then connects to (resolved once, pinned), so a receiver's DNS
cannot point a check at one address and the post at another.

- The URL: `https` (plain `http` only to an allow-listed network), a host that is a valid IDNA
  name or an IP literal, a port from 1 to 65535, no user or password, no control characters, at
  most 2000 characters.
- The address: a globally routable one (`ipaddress.is_global`, which leaves out loopback,
  private, shared (100.64.0.0/10, where some clouds keep their metadata service), link-local and
  reserved ranges), with the IPv4 inside 6to4, NAT64 and IPv4-mapped addresses checked too, and
  never multicast; or one inside REELROUTE_WEBHOOK_ALLOW_NETWORKS (CIDRs, for receivers on this
  host or network), which can never hold a cloud metadata range.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from reelroute.models.core.errors import InvalidInput
from reelroute.models.core.networks import METADATA_NETWORKS, IPNetwork

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]

MAX_URL_CHARS = 2000
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class Refused(Exception):
    """A post must not go there; the message says why (recorded on the delivery)."""


@dataclass(frozen=True)
class Target:
    """A checked webhook URL, split into what a post needs."""

    url: str
    scheme: str
    host: str
    """ASCII (IDNA) host name, or an IP literal without brackets."""
    port: int
    target: str
    """Path and query, as sent in the request line."""

    @property
    def host_header(self) -> str:
        """The Host header: the name the receiver knows (with the port when not the default)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    def pinned(self, address: str) -> str:
        """The URL with its host replaced by the resolved `address` (the post connects there;
        TLS still checks the certificate against `host`)."""
        literal = f"[{address}]" if ":" in address else address
        return f"{self.scheme}://{literal}:{self.port}{self.target}"


def parse_url(url: str) -> Target:
    """The URL's parts, or InvalidInput naming every problem (nothing is resolved here)."""
    text = url.strip()
    problems: list[str] = []
    if len(text) > MAX_URL_CHARS:
        problems.append(f"webhook_url: longer than {MAX_URL_CHARS} characters")
    if any(ord(char) < 0x21 or ord(char) == 0x7F for char in text):
        problems.append("webhook_url: holds a space or a control character; remove it")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as error:
        raise InvalidInput(
            [*problems, f"webhook_url: {error}; give a port from 1 to 65535"]
        ) from None
    if parts.scheme not in ("https", "http"):
        problems.append(f"webhook_url: {parts.scheme or 'no'} scheme; use an https:// URL")
    if parts.username is not None or parts.password is not None:
        problems.append("webhook_url: holds a user or password; sign with the secret instead")
    if port == 0:
        problems.append("webhook_url: port 0; give a port from 1 to 65535")
    host = ascii_host(parts.hostname, problems)
    if problems:
        raise InvalidInput(problems)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    default = 443 if parts.scheme == "https" else 80
    return Target(text, parts.scheme, host, port or default, target)


def ascii_host(hostname: str | None, problems: list[str]) -> str:
    """The host as ASCII: an IP literal as it is, a name IDNA-encoded (each label 1 to 63
    characters); a problem is added otherwise."""
    if not hostname:
        problems.append("webhook_url: no host; give the receiver's full URL")
        return ""
    try:
        return str(ipaddress.ip_address(hostname))
    except ValueError:
        pass
    try:
        encoded = hostname.rstrip(".").encode("idna").decode("ascii")
    except UnicodeError:
        problems.append(f"webhook_url: {hostname!r} is not a valid host name")
        return ""
    labels = encoded.split(".")
    if len(encoded) > 253 or any(not 1 <= len(label) <= 63 for label in labels):
        problems.append(f"webhook_url: {hostname!r} is not a valid host name")
        return ""
    return encoded.lower()


def address_problem(address: IPAddress, allowed: Sequence[IPNetwork]) -> str | None:
    """Why a post must not go to `address`, or None."""
    if any(address.version == net.version and address in net for net in allowed):
        return None
    if any(address.version == net.version and address in net for net in METADATA_NETWORKS):
        return "a link-local (cloud metadata) address"
    embedded = embedded_ipv4(address)
    if embedded is not None and (embedded_problem := address_problem(embedded, allowed)):
        return f"an address around {embedded}, {embedded_problem}"
    if address.is_multicast:
        return "a multicast address"
    if address.is_loopback:
        return "a loopback address"
    if not address.is_global:
        return "not a public address (private, shared or reserved)"
    return None


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address carried inside an IPv6 one (mapped, 6to4, NAT64), if any."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses of `host` as the system resolves them."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]).split("%")[0] for info in found]


def resolve(
    target: Target, allowed: Sequence[IPNetwork], resolver: Resolver = system_resolver
) -> str:
    """The one address a post to `target` connects to. Refused (saying why) when the host does
    not resolve, or when any address it resolves to is not allowed (a name that points at both a
    public and a private address is refused), or when it is plain http to a network that is not
    allowed."""
    try:
        found = resolver(target.host, target.port)
    except (OSError, UnicodeError, ValueError) as error:
        raise Refused(f"{target.host} does not resolve ({type(error).__name__})") from None
    if not found:
        raise Refused(f"{target.host} does not resolve")
    chosen = None
    for text in found:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise Refused(f"{target.host} resolved to {text!r}, not an address") from None
        problem = address_problem(address, allowed)
        if problem is not None:
            raise Refused(f"{target.host} is {address}, {problem}")
        chosen = chosen or str(address)
    assert chosen is not None
    if target.scheme == "http" and not any(
        ipaddress.ip_address(chosen) in net
        for net in allowed
        if net.version == ipaddress.ip_address(chosen).version
    ):
        raise Refused(
            f"plain http to {target.host} ({chosen}); use https, or allow its network in "
            "REELROUTE_WEBHOOK_ALLOW_NETWORKS"
        )
    return chosen


def check_url(
    url: str, allowed: Sequence[IPNetwork], resolver: Resolver = system_resolver
) -> Target:
    """A URL as registration checks it: well formed, and resolving to an allowed address now
    (InvalidInput saying why not)."""
    target = parse_url(url)
    try:
        resolve(target, allowed, resolver)
    except Refused as refused:
        raise InvalidInput([f"webhook_url: {refused}"]) from None
    return target
