"""`ctx.fetch` refuses non-public destinations (SSRF) and connects to the address it checked.

Nothing here leaves the machine: names are resolved by a stand-in `getaddrinfo`, public
addresses are only classified or "connected to" through a stand-in backend, and the only real
connections go to a local server on 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import ssl
from collections.abc import Callable, Iterator
from typing import Any

import httpcore
import pytest

from coprocessor.errors import FetchError
from coprocessor.runtime import Limits, RunContext, execute
from coprocessor.runtime.host import HostApi
from coprocessor.runtime.http import address_refusal, fetch
from protocol.results import Status
from tests.http_fixtures import FakeApi, fake_api

MAX_BYTES = 100_000
TIMEOUT_S = 5.0
REAL_GETADDRINFO = socket.getaddrinfo

AddrInfo = list[tuple[Any, ...]]


@pytest.fixture(scope="module")
def api() -> Iterator[FakeApi]:
    with fake_api() as server:
        server.routes["/hello"] = lambda m, p, h, b: (200, {"hello": "world", "host": h.get("host")})
        yield server


@pytest.fixture
def no_connect(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any TCP connection fails the test: a refusal must come before connecting."""

    def connect_tcp(*args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        raise AssertionError(f"fetch tried to connect: {args} {kwargs}")

    monkeypatch.setattr(httpcore.SyncBackend, "connect_tcp", connect_tcp)


def _answer(address: str, port: int) -> AddrInfo:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sockaddr: tuple[Any, ...] = (address, port, 0, 0) if family == socket.AF_INET6 else (address, port)
    return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr)]


class FakeDns:
    """`socket.getaddrinfo` for made-up names: each lookup of a name takes its next answer.

    IP literals go to the real function (no DNS is involved); any other name fails the test,
    so no test can resolve a real host by mistake.
    """

    def __init__(self, names: dict[str, list[list[str]]]) -> None:
        self.names = names
        self.lookups: list[str] = []

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> AddrInfo:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name in self.names:
            self.lookups.append(name)
            answers = self.names[name]
            addresses = answers.pop(0) if len(answers) > 1 else answers[0]
            return [entry for address in addresses for entry in _answer(address, int(port))]
        try:
            ipaddress.ip_address(name.split("%")[0])
        except ValueError:
            raise AssertionError(f"a test tried to resolve {name!r}") from None
        return REAL_GETADDRINFO(host, port, *args, **kwargs)


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, list[list[str]]]], FakeDns]:
    def install(names: dict[str, list[list[str]]]) -> FakeDns:
        fake = FakeDns(names)
        monkeypatch.setattr(socket, "getaddrinfo", fake)
        return fake

    return install


def _fetch(url: str, host: str, allow_private_networks: bool = False) -> dict[str, Any]:
    return fetch(url, {}, (host,), MAX_BYTES, TIMEOUT_S, allow_private_networks=allow_private_networks)


# -- the address classifier ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "kind", "private"),
    [
        ("127.0.0.1", "loopback", True),
        ("127.255.0.9", "loopback", True),
        ("::1", "loopback", True),
        ("10.0.0.1", "private", True),
        ("172.16.5.4", "private", True),
        ("192.168.1.1", "private", True),
        ("100.64.0.1", "shared (100.64.0.0/10)", True),
        ("fd00::1", "unique-local", True),
        ("fec0::1", "site-local", True),
        ("169.254.169.254", "link-local", False),
        ("fe80::1", "link-local", False),
        ("fe80::1%1", "link-local", False),
        ("0.0.0.0", "unspecified", False),
        ("::", "unspecified", False),
        ("0.1.2.3", "special-purpose", False),
        ("224.0.0.1", "multicast", False),
        ("ff02::1", "multicast", False),
        ("255.255.255.255", "broadcast", False),
        ("240.0.0.1", "reserved", False),
        ("192.0.2.1", "special-purpose", False),
        ("2001:db8::1", "special-purpose", False),
        ("2001::1", "special-purpose", False),  # Teredo
        ("64:ff9b:1::a00:1", "local-use NAT64", False),
        ("::8.8.8.8", "deprecated IPv4-compatible IPv6", False),
    ],
)
def test_non_public_addresses_are_refused(address: str, kind: str, private: bool) -> None:
    refusal = address_refusal(ipaddress.ip_address(address))
    assert refusal is not None
    assert (refusal.kind, refusal.private, refusal.embedded) == (kind, private, None)


@pytest.mark.parametrize(
    ("address", "kind", "embedded"),
    [
        ("::ffff:127.0.0.1", "loopback", "127.0.0.1"),
        ("::ffff:7f00:1", "loopback", "127.0.0.1"),
        ("::ffff:169.254.169.254", "link-local", "169.254.169.254"),
        ("::ffff:10.1.2.3", "private", "10.1.2.3"),
        ("::ffff:0:7f00:1", "loopback", "127.0.0.1"),  # SIIT translated
        ("::127.0.0.1", "loopback", "127.0.0.1"),  # IPv4-compatible
        ("64:ff9b::7f00:1", "loopback", "127.0.0.1"),  # NAT64
        ("64:ff9b::a9fe:a9fe", "link-local", "169.254.169.254"),
        ("2002:7f00:1::", "loopback", "127.0.0.1"),  # 6to4
        ("2002:c0a8:101::1", "private", "192.168.1.1"),
    ],
)
def test_ipv6_forms_of_ipv4_addresses_are_judged_by_the_ipv4_address(address: str, kind: str, embedded: str) -> None:
    refusal = address_refusal(ipaddress.ip_address(address))
    assert refusal is not None
    assert (refusal.kind, refusal.embedded) == (kind, ipaddress.IPv4Address(embedded))


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"]
)
def test_public_addresses_pass(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) is None


# -- fetch refuses, by default, before connecting ----------------------------------------------------


@pytest.mark.usefixtures("no_connect")
@pytest.mark.parametrize(
    ("url", "host", "kind"),
    [
        ("http://127.0.0.1:8545/", "127.0.0.1", "a loopback address (127.0.0.1)"),
        ("http://[::1]/", "::1", "a loopback address (::1)"),
        ("http://10.0.0.1/", "10.0.0.1", "a private address (10.0.0.1)"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254", "a link-local address (169.254.169.254)"),
        ("http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1", "a loopback address"),
        ("http://[::ffff:7f00:1]/", "::ffff:7f00:1", "a loopback address"),
        ("http://0.0.0.0:8000/", "0.0.0.0", "an unspecified address (0.0.0.0)"),
        ("http://100.64.1.1/", "100.64.1.1", "a shared (100.64.0.0/10) address"),
        ("http://[fd12::1]/", "fd12::1", "a unique-local address"),
        ("https://[64:ff9b::a9fe:a9fe]/", "64:ff9b::a9fe:a9fe", "a link-local address"),
    ],
)
def test_fetch_refuses_non_public_literals(url: str, host: str, kind: str) -> None:
    with pytest.raises(FetchError) as refused:
        _fetch(url, host)
    message = str(refused.value)
    assert message.startswith(f"fetch: {host} resolves to {kind}"), message
    assert "which agents may not reach" in message


def test_the_message_names_the_embedded_ipv4_address(no_connect: None) -> None:
    with pytest.raises(FetchError, match=r"loopback address \(::ffff:7f00:1, which is 127\.0\.0\.1\)"):
        _fetch("http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1")


@pytest.mark.usefixtures("no_connect")
@pytest.mark.parametrize("host", ["2130706433", "0x7f000001", "0x7f.1", "127.1", "017700000001", "127.0.0.1."])
def test_numeric_ipv4_spellings_are_malformed(host: str, dns: Callable[..., FakeDns]) -> None:
    fake = dns({})  # any lookup of these would fail the test: the refusal comes first
    with pytest.raises(FetchError, match="is not a valid host name or IPv4 address"):
        _fetch(f"http://{host}/", host)
    assert fake.lookups == []


def test_octal_dotted_quads_are_invalid_urls(no_connect: None) -> None:
    with pytest.raises(FetchError, match="is not an http"):
        _fetch("http://0177.0.0.1/", "0177.0.0.1")


@pytest.mark.usefixtures("no_connect")
def test_a_name_resolving_to_loopback_is_refused(dns: Callable[..., FakeDns]) -> None:
    dns({"sneaky.test": [["127.0.0.1"]]})
    with pytest.raises(FetchError, match=r"^fetch: sneaky\.test resolves to a loopback address \(127\.0\.0\.1\)"):
        _fetch("http://sneaky.test/", "sneaky.test")


def test_localhost_is_refused(no_connect: None) -> None:
    with pytest.raises(FetchError, match=r"^fetch: localhost resolves to a loopback address"):
        _fetch("http://localhost/", "localhost")


@pytest.mark.usefixtures("no_connect")
def test_one_bad_address_among_good_ones_refuses_the_name(dns: Callable[..., FakeDns]) -> None:
    dns({"mixed.test": [["8.8.8.8", "169.254.169.254"]]})
    with pytest.raises(FetchError, match=r"mixed\.test resolves to a link-local address \(169\.254\.169\.254\)"):
        _fetch("http://mixed.test/", "mixed.test")


@pytest.mark.usefixtures("no_connect")
def test_the_setting_does_not_open_link_local(dns: Callable[..., FakeDns]) -> None:
    dns({"metadata.test": [["169.254.169.254"]]})
    with pytest.raises(FetchError, match="link-local"):
        _fetch("http://metadata.test/", "metadata.test", allow_private_networks=True)
    with pytest.raises(FetchError, match="unspecified"):
        _fetch("http://0.0.0.0/", "0.0.0.0", allow_private_networks=True)


@pytest.mark.usefixtures("no_connect")
@pytest.mark.parametrize(
    ("url", "entry"), [("http://bücher.test/", "xn--bcher-kva.test"), ("http://xn--bcher-kva.test/", "bücher.test")]
)
def test_an_international_name_is_resolved_in_its_ascii_form(url: str, entry: str, dns: Callable[..., FakeDns]) -> None:
    fake = dns({"xn--bcher-kva.test": [["127.0.0.1"]]})
    with pytest.raises(FetchError, match=r"^fetch: xn--bcher-kva\.test resolves to a loopback address"):
        _fetch(url, entry)
    assert fake.lookups == ["xn--bcher-kva.test"]


def test_the_allow_list_is_checked_before_any_lookup(no_connect: None, dns: Callable[..., FakeDns]) -> None:
    fake = dns({"elsewhere.test": [["8.8.8.8"]]})
    with pytest.raises(FetchError, match="is not on this agent's allow-list"):
        _fetch("http://elsewhere.test/", "other.test")
    assert fake.lookups == []


# -- with private networks allowed, and pinning -----------------------------------------------------


def test_default_refuses_the_local_server(api: FakeApi) -> None:
    with pytest.raises(FetchError, match=r"127\.0\.0\.1 resolves to a loopback address.*does not allow private"):
        _fetch(f"{api.url}/hello", api.host)


def test_private_networks_setting_reaches_the_local_server(api: FakeApi) -> None:
    response = _fetch(f"{api.url}/hello", api.host, allow_private_networks=True)
    assert response["status"] == 200
    assert json.loads(response["body"]) == {"hello": "world", "host": api.host}


def test_the_connection_goes_to_the_checked_address(api: FakeApi, dns: Callable[..., FakeDns]) -> None:
    """DNS rebinding: a second lookup would answer 127.0.0.2, where nothing listens."""
    port = api.host.rsplit(":", 1)[1]
    fake = dns({"rebind.test": [["127.0.0.1"], ["127.0.0.2"]]})
    seen = len(api.seen)
    response = _fetch(f"http://rebind.test:{port}/hello", "rebind.test", allow_private_networks=True)
    assert response["status"] == 200
    assert fake.lookups == ["rebind.test"]
    assert len(api.seen) == seen + 1
    assert api.seen[-1][2]["host"] == f"rebind.test:{port}"


class RecordingStream(httpcore.MockStream):
    """A connection that records what was sent and how TLS was started, and answers 200."""

    def __init__(self) -> None:
        super().__init__([b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"])
        self.sent = b""
        self.tls: dict[str, Any] = {}

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.sent += buffer

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        self.tls = {"context": ssl_context, "server_hostname": server_hostname}
        return self


def test_a_public_name_connects_to_its_address_with_its_name_for_host_and_tls(
    monkeypatch: pytest.MonkeyPatch, dns: Callable[..., FakeDns]
) -> None:
    fake = dns({"api.example.test": [["8.8.8.8"], ["127.0.0.1"]]})
    connects: list[tuple[str, int]] = []
    stream = RecordingStream()

    def connect_tcp(self: Any, host: str, port: int, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        connects.append((host, port))
        return stream

    monkeypatch.setattr(httpcore.SyncBackend, "connect_tcp", connect_tcp)
    response = _fetch("https://api.example.test/v1/price", "api.example.test")
    assert (response["status"], response["body"]) == (200, "ok")
    assert fake.lookups == ["api.example.test"]
    assert connects == [("8.8.8.8", 443)]
    assert b"\r\nHost: api.example.test\r\n" in stream.sent
    assert stream.tls["server_hostname"] == "api.example.test"
    context = stream.tls["context"]
    assert context.check_hostname
    assert context.verify_mode == ssl.CERT_REQUIRED


def test_the_next_checked_address_is_tried_when_one_refuses(
    monkeypatch: pytest.MonkeyPatch, dns: Callable[..., FakeDns]
) -> None:
    dns({"two.example.test": [["2606:4700::1", "1.1.1.1"]]})
    connects: list[str] = []
    stream = RecordingStream()

    def connect_tcp(self: Any, host: str, port: int, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        connects.append(host)
        if host == "2606:4700::1":
            raise httpcore.ConnectError("network unreachable")
        return stream

    monkeypatch.setattr(httpcore.SyncBackend, "connect_tcp", connect_tcp)
    assert _fetch("http://two.example.test/", "two.example.test")["status"] == 200
    assert connects == ["2606:4700::1", "1.1.1.1"]


# -- through the runtime: the agent sees a JS exception ----------------------------------------------


def _run(code: str, context: RunContext, **host: Any) -> tuple[Status, bytes]:
    limits = Limits()
    execution = execute(code, b"", limits, HostApi(limits=limits, context=context, **host))
    return execution.status, execution.output


def test_an_agent_gets_the_refusal_as_an_exception(api: FakeApi) -> None:
    code = f"""export default async (input, ctx) => {{
      try {{ await ctx.fetch("{api.url}/hello"); return "reached"; }} catch (e) {{ return e.message; }}
    }};"""
    status, output = _run(code, RunContext(agent_id=1, allow_hosts=(api.host,)))
    assert status == Status.OK
    assert "127.0.0.1 resolves to a loopback address (127.0.0.1), which agents may not reach" in json.loads(output)


def test_fetch_all_reports_the_refusal_per_request(api: FakeApi) -> None:
    code = f'export default async (i, ctx) => (await ctx.fetchAll([{{ url: "{api.url}/hello" }}]))[0].error;'
    status, output = _run(code, RunContext(agent_id=1, allow_hosts=(api.host,)))
    assert status == Status.OK
    assert "resolves to a loopback address" in json.loads(output)


def test_an_agent_reaches_the_local_server_when_the_operator_allows_it(api: FakeApi) -> None:
    code = f'export default async (i, ctx) => (await ctx.fetch("{api.url}/hello")).json().hello;'
    status, output = _run(code, RunContext(agent_id=1, allow_hosts=(api.host,), allow_private_networks=True))
    assert (status, json.loads(output)) == (Status.OK, "world")


@pytest.mark.parametrize("caller_allows", [True, False])
def test_a_called_agent_has_its_callers_setting(api: FakeApi, caller_allows: bool) -> None:
    callee = f"""export default async (input, ctx) => {{
      try {{ return (await ctx.fetch("{api.url}/hello")).json().hello; }} catch (e) {{ return e.message; }}
    }};"""

    def resolver(agent_id: int) -> dict[str, Any]:
        # The resolver says the opposite of the caller: the caller's setting wins.
        context = RunContext(agent_id=agent_id, allow_hosts=(api.host,), allow_private_networks=not caller_allows)
        return {"codeHash": "0x00", "code": callee, "limits": Limits().as_dict(), "context": context.to_wire()}

    code = "export default async (i, ctx) => ctx.callAgent(2, '');"
    status, output = _run(code, RunContext(agent_id=1, allow_private_networks=caller_allows), resolver=resolver)
    assert status == Status.OK, output
    answer = json.loads(output)
    if caller_allows:
        assert answer == "world"
    else:
        assert "which agents may not reach" in answer


def test_the_setting_crosses_the_wire_and_only_true_turns_it_on() -> None:
    context = RunContext(agent_id=1, allow_private_networks=True)
    assert RunContext.from_wire(context.to_wire()).allow_private_networks is True
    assert RunContext.from_wire(RunContext(agent_id=1).to_wire()).allow_private_networks is False
    assert RunContext.from_wire({"agentId": 1}).allow_private_networks is False
    assert RunContext.from_wire({"agentId": 1, "allowPrivateNetworks": "false"}).allow_private_networks is False
