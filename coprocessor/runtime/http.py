"""`ctx.fetch`: HTTP for agents, to allow-listed hosts only, with capped responses.

An allow-list of host names is not enough on its own: an agent could allow-list `127.0.0.1`, or
a name whose DNS answer is a private address, and so reach the worker's own API, the chain
node's RPC or cloud metadata at 169.254.169.254 (server-side request forgery). So:

- the URL is parsed once (by httpx, the parser that also makes the request), and legacy numeric
  IPv4 forms (`2130706433`, `0x7f.1`, `127.1`), which resolvers turn into addresses that no one
  reading the URL expects, are refused as malformed;
- the host name is resolved once, and every address of the answer must be public (see
  `address_refusal`: loopback, private, shared, link-local, unique-local, multicast,
  unspecified, reserved and other special-purpose ranges are refused, also when embedded in an
  IPv4-mapped, IPv4-compatible, NAT64 or 6to4 IPv6 address);
- the connection goes to the addresses that were checked, never to the name again, so a DNS
  answer that changes between the check and the connection (DNS rebinding) does not matter.
  The request keeps the original name for its `Host` header and, for https, for SNI and the
  certificate check;
- redirects are not followed: an allow-listed host could otherwise send the agent anywhere;
- environment proxies are ignored: a proxy would resolve the name itself, after our check.

`allow_private_networks` (off by default, an operator's setting for local development, where
the APIs an agent calls run on the same machine) lets loopback, private, shared and
unique-local addresses through. Link-local (cloud metadata), multicast, unspecified and
reserved addresses stay refused even then.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from coprocessor.errors import FetchError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Ranges that `is_global` alone does not name (or, for IPv6 transition forms, gets differently
# from one Python release to the next): each is checked explicitly.
_SHARED = ipaddress.IPv4Network("100.64.0.0/10")  # RFC 6598, carrier-grade NAT
_PRIVATE_V4 = tuple(ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
_UNIQUE_LOCAL = ipaddress.IPv6Network("fc00::/7")
_SITE_LOCAL = ipaddress.IPv6Network("fec0::/10")  # deprecated (RFC 3879), but still routable on some networks
_IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")  # SIIT, RFC 2765
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated, RFC 4291
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: the IPv4 address is the last 32 bits
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215: operator-local translation

# What resolvers accept as IPv4 besides a.b.c.d (inet_aton: 1 to 4 parts, decimal, octal or
# hex): a host whose last label is a number is one of these, or a typo, never a DNS name.
_NUMERIC_LABEL = re.compile(r"(0x[0-9a-f]*|[0-9]+)", re.IGNORECASE)


@dataclass(frozen=True)
class Refusal:
    """Why an address may not be reached: `kind` reads as "a <kind> address"."""

    kind: str
    # Whether `allow_private_networks` lifts the refusal (local development).
    private: bool
    # The IPv4 address an IPv6 transition form carries, when that is what was refused.
    embedded: ipaddress.IPv4Address | None = None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside an IPv6 form that reaches it (mapped, translated, NAT64, 6to4)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _IPV4_TRANSLATED or ip in _NAT64 or ip in _IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_refusal(ip: IPAddress) -> Refusal | None:
    """None if agents may reach `ip` (a public address); otherwise why not."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.is_unspecified or ip.is_loopback:  # :: and ::1 sit inside ::/96: name them first
            return Refusal("unspecified" if ip.is_unspecified else "loopback", private=ip.is_loopback)
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            inner = address_refusal(embedded)
            if inner is not None:
                return Refusal(inner.kind, inner.private, embedded)
            if ip in _IPV4_COMPATIBLE:
                return Refusal("deprecated IPv4-compatible IPv6", private=False)
            # A public IPv4 address behind NAT64, 6to4 or a mapping is a public destination
            # (what an IPv6-only network with DNS64 answers for every IPv4-only site).
            return None
        if ip in _NAT64_LOCAL:
            return Refusal("local-use NAT64", private=False)
        if ip.is_link_local:
            return Refusal("link-local", private=False)
        if ip in _UNIQUE_LOCAL:
            return Refusal("unique-local", private=True)
        if ip in _SITE_LOCAL:
            return Refusal("site-local", private=True)
    else:
        if ip.is_unspecified:
            return Refusal("unspecified", private=False)
        if ip.is_loopback:
            return Refusal("loopback", private=True)
        if ip.is_link_local:
            return Refusal("link-local", private=False)
        if any(ip in net for net in _PRIVATE_V4):
            return Refusal("private", private=True)
        if ip in _SHARED:
            return Refusal("shared (100.64.0.0/10)", private=True)
        if ip == _BROADCAST:
            return Refusal("broadcast", private=False)
    if ip.is_multicast:
        return Refusal("multicast", private=False)
    if ip.is_reserved:
        return Refusal("reserved", private=False)
    if not ip.is_global:
        # 0.0.0.0/8, documentation, benchmarking, Teredo, discard and the other special-purpose
        # ranges of the IANA registries: no public service lives there.
        return Refusal("special-purpose", private=False)
    return None


def _check_literal(host: str) -> None:
    """Refuses the numeric IPv4 spellings that are not a.b.c.d (see `_NUMERIC_LABEL`)."""
    if ":" in host:  # an IPv6 literal: httpx has already validated it
        return
    last = host.removesuffix(".").rsplit(".", 1)[-1]
    if not _NUMERIC_LABEL.fullmatch(last):
        return
    try:
        ipaddress.IPv4Address(host)  # refuses octal (leading zeros), hex, and fewer than 4 parts
    except ValueError:
        raise FetchError(
            f"fetch: {host} is not a valid host name or IPv4 address (write IPv4 as four decimal numbers, a.b.c.d)"
        ) from None


def resolve(host: str, port: int, allow_private_networks: bool = False) -> tuple[str, ...]:
    """The addresses to connect to for `host`, each checked; refuses the lot if any is refused.

    One lookup only: the caller must connect to these addresses, not resolve `host` again.
    All of them must pass, since the connection may fall back from one to the next.
    """
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as err:
        raise FetchError(f"fetch: cannot resolve {host}: {err}") from err
    addresses: list[str] = []
    for _family, _type, _proto, _name, sockaddr in answers:
        address = str(sockaddr[0])
        if address in addresses:
            continue
        try:
            ip = ipaddress.ip_address(address)
        except ValueError as err:  # never from getaddrinfo with AF_INET/AF_INET6; refuse, not guess
            raise FetchError(f"fetch: {host} resolves to {address!r}, which is not an IP address") from err
        refusal = address_refusal(ip)
        if refusal is not None and not (allow_private_networks and refusal.private):
            shown = f"{ip}, which is {refusal.embedded}" if refusal.embedded is not None else str(ip)
            article = "an" if refusal.kind.startswith(("a", "e", "i", "o", "unspecified")) else "a"  # a unique-local
            hint = " (this worker does not allow private networks)" if refusal.private else ""
            raise FetchError(
                f"fetch: {host} resolves to {article} {refusal.kind} address ({shown}), "
                f"which agents may not reach{hint}"
            )
        addresses.append(address)
    if not addresses:
        raise FetchError(f"fetch: cannot resolve {host}: no addresses")
    return tuple(addresses)


class _PinnedBackend(httpcore.NetworkBackend):
    """Connects to checked addresses, whatever the name in the URL resolves to by now."""

    def __init__(self, host: str, addresses: tuple[str, ...]) -> None:
        self._host = host
        self._addresses = addresses
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        if host != self._host:  # one client per request and no redirects: this never happens
            raise httpcore.ConnectError(f"refusing to connect to {host}: this request goes to {self._host}")
        failure: httpcore.ConnectError | None = None
        for address in self._addresses:
            # An IP literal: the inner backend's getaddrinfo parses it, there is no DNS lookup.
            try:
                return self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as err:  # refused or unreachable: the next address may work
                failure = err
        raise failure or httpcore.ConnectError(f"no address to connect to for {host}")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _PinnedTransport(httpx.HTTPTransport):
    """httpx's transport, with its connection pool connecting through `_PinnedBackend`.

    The URL keeps the host name, so httpcore sends it as `Host` and, for https, as the TLS
    server name it verifies the certificate against; only the TCP connection is pinned.
    """

    def __init__(self, host: str, addresses: tuple[str, ...]) -> None:
        ssl_context = httpx.create_ssl_context()
        super().__init__(verify=ssl_context)
        # HTTPTransport takes no network backend: swap its pool for one with ours (its pool
        # limits do not matter, a client lives for one request).
        self._pool = httpcore.ConnectionPool(ssl_context=ssl_context, network_backend=_PinnedBackend(host, addresses))


def host_allowed(allow_hosts: tuple[str, ...], host: str, port: int | None) -> bool:
    """An entry `host` allows any port of it; `host:port` that port only."""
    return any(entry == host or entry == f"{host}:{port}" for entry in allow_hosts)


def fetch(
    url: str,
    options: dict[str, Any],
    allow_hosts: tuple[str, ...],
    max_bytes: int,
    timeout_s: float,
    allow_private_networks: bool = False,
) -> dict[str, Any]:
    """One request of an agent; `allow_private_networks` is the operator's, never the agent's."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as err:
        raise FetchError(f"fetch: {url!r} is not an http(s) URL ({err})") from err
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise FetchError(f"fetch: {url!r} is not an http(s) URL")
    # The same parse decides the allow-list, the checked addresses and the request: no two
    # parsers that could disagree on which host a URL names.
    host = parsed.host
    # httpcore connects to `raw_host`, the IDNA (ASCII) form of an international name: that is
    # the name to resolve, and an allow-list entry may be written in either form.
    network_host = parsed.raw_host.decode("ascii")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    _check_literal(host)
    if not (host_allowed(allow_hosts, host, port) or host_allowed(allow_hosts, network_host, port)):
        allowed = ", ".join(allow_hosts) or "none"
        raise FetchError(f"fetch: host {host}:{port} is not on this agent's allow-list ({allowed})")
    method = str(options.get("method", "GET")).upper()
    headers = {str(k): str(v) for k, v in (options.get("headers") or {}).items()}
    body = options.get("body")
    if body is not None and not isinstance(body, str):
        raise FetchError("fetch: body is a string (JSON.stringify objects)")
    if "timeoutMs" in options:
        timeout_s = min(timeout_s, float(options["timeoutMs"]) / 1000)
    if timeout_s <= 0:
        raise FetchError("fetch: no wall time left for this request")
    addresses = resolve(network_host, port, allow_private_networks)
    transport = _PinnedTransport(network_host, addresses)
    try:
        with (
            httpx.Client(transport=transport, timeout=timeout_s, follow_redirects=False, trust_env=False) as client,
            client.stream(method, parsed, headers=headers, content=body) as response,
        ):
            data = bytearray()
            for chunk in response.iter_bytes():
                data.extend(chunk)
                if len(data) > max_bytes:
                    raise FetchError(f"fetch: the response from {host} exceeds {max_bytes} bytes")
    except httpx.TimeoutException as err:
        raise FetchError(f"fetch: {host} did not answer within {timeout_s * 1000:.0f} ms") from err
    except httpx.HTTPError as err:
        raise FetchError(f"fetch: {method} {url} failed: {err.__class__.__name__}: {err}") from err
    return {
        "url": url,
        "status": response.status_code,
        "ok": 200 <= response.status_code < 300,
        "headers": {k.lower(): v for k, v in response.headers.items()},
        "body": data.decode("utf-8", errors="replace"),
    }
