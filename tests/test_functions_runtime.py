"""The Chainlink Functions runtime agent (compat/chainlink-functions.js) in the worker's sandbox:
requests as Chainlink encodes them, sources written the way Chainlink's documentation writes
them, answers as abi.encode(bytes response, bytes err)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from eth_abi.abi import decode, encode
from nacl.public import PrivateKey

from enclave.agents import simulate
from protocol.deployment import PROJECT_ROOT
from protocol.envelope import seal_for, seal_to
from protocol.status import Status
from tests.chainlink_cbor import functions_request
from tests.http_fixtures import fake_api

RUNTIME = PROJECT_ROOT / "compat" / "chainlink-functions.js"


OWNER = "0x" + "0b" * 20  # the subscription owner, which the adapter writes before the CBOR
ADAPTER = "0x" + "ad" * 20
CHAIN_ID = 31337
AGENT_KEY = PrivateKey.generate()  # the runtime agent's key of epoch 1
PURPOSE = f"chainlink-functions:{CHAIN_ID}:{ADAPTER}:{OWNER}"


def _run(tmp_path: Path, source: str, args: list[str] | None = None, **kwargs: Any) -> tuple[bytes, str]:
    cbor = functions_request(source, args, kwargs.pop("bytes_args", None), **kwargs.pop("request", {}))
    request = {"consumer": ADAPTER, "chain_id": CHAIN_ID, "unseal_keys": {1: bytes(AGENT_KEY)}} | kwargs.pop("at", {})
    execution = simulate(RUNTIME, bytes.fromhex(OWNER[2:]) + cbor, state_dir=tmp_path, **request, **kwargs).execution
    assert execution.status == Status.OK, execution.error
    response, err = decode(["bytes", "bytes"], execution.output)
    assert not (response and err), "a response or an error, never both"
    return bytes(response), bytes(err).decode()


def test_args_bytes_args_and_the_encoders(tmp_path: Path) -> None:
    source = "return Functions.encodeUint256(BigInt(args[0]) * 2n + BigInt(bytesArgs[0]));"
    response, err = _run(tmp_path, source, ["21"], bytes_args=[b"\x05"])
    assert (int.from_bytes(response, "big"), err) == (47, "")
    assert _run(tmp_path, "return Functions.encodeInt256(-5);")[0] == (2**256 - 5).to_bytes(32, "big")
    assert _run(tmp_path, "return Functions.encodeString('héllo');")[0] == "héllo".encode()


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ('throw new Error("no luck");', "no luck"),
        ("return 42;", "returned value not an ArrayBuffer or Uint8Array"),
        ("return Functions.encodeUint256(-1);", "encodeUint256 expects a value in [0, 2^256)"),
        ("return new Uint8Array(300);", "response of 300 bytes exceeds the 256-byte limit"),
        ("this is not javascript", "expecting"),
    ],
)
def test_failures_arrive_as_the_error(tmp_path: Path, source: str, error: str) -> None:
    response, err = _run(tmp_path, source)
    assert response == b""
    assert error in err


def test_make_http_request_as_chainlink_documents_it(tmp_path: Path) -> None:
    with fake_api() as api:
        api.routes["/price"] = lambda method, path, headers, body: (200, {"usd": 3012.5, "path": path})
        api.routes["/echo"] = lambda method, path, headers, body: (201, json.loads(body))
        api.routes["/missing"] = lambda method, path, headers, body: (404, {"error": "gone"})
        source = f"""
          const price = await Functions.makeHttpRequest({{ url: "{api.url}/price", params: {{ pair: args[0] }} }});
          if (price.error) throw new Error("price: " + price.message);
          const echoed = await Functions.makeHttpRequest({{
            url: "{api.url}/echo", method: "POST", data: {{ n: 7 }}, headers: {{ "X-Key": args[1] }},
          }});
          const missing = await Functions.makeHttpRequest({{ url: "{api.url}/missing" }});
          return Functions.encodeString(JSON.stringify({{
            usd: price.data.usd, path: price.data.path, status: echoed.status, n: echoed.data.n,
            missing: [missing.error, missing.response.status],
          }}));
        """
        response, err = _run(tmp_path, source, ["ETH-USD", "s3cret"], allow_hosts=(api.host,),
                             allow_private_networks=True)  # fmt: skip
        assert err == ""
        assert json.loads(response) == {
            "usd": 3012.5, "path": "/price?pair=ETH-USD", "status": 201, "n": 7, "missing": [True, 404],
        }  # fmt: skip
        method, _, headers, body = api.seen[1]
        assert (method, headers["x-key"], headers["content-type"], json.loads(body)) == (
            "POST", "s3cret", "application/json", {"n": 7},
        )  # fmt: skip


def test_a_slow_api_answers_with_an_error_after_the_requests_timeout(tmp_path: Path) -> None:
    with fake_api() as api:

        def slow(*_: object) -> tuple[int, Any]:
            time.sleep(2)
            return 200, {}

        api.routes["/slow"] = slow
        source = f"""
          const slow = await Functions.makeHttpRequest({{ url: "{api.url}/slow", timeout: 300 }});
          return Functions.encodeString(String(slow.error) + " " + slow.code);
        """
        response, _ = _run(tmp_path, source, allow_hosts=(api.host,), allow_private_networks=True)
        assert response == b"true ERR_REQUEST"


ESCAPES = {
    "the host function": "return Functions.encodeString(typeof __host + typeof globalThis.__host);",
    "a second run": """
        let leaked = "none";
        globalThis.__agentMain = async (input, ctx) => { leaked = Object.keys(ctx).join(","); };
        __run("0x");
        for (let i = 0; i < 10; i++) await null; // let a started run reach main
        return Functions.encodeString(leaked);
    """,
}


@pytest.mark.parametrize("attempt", list(ESCAPES))
def test_a_source_never_reaches_ctx(tmp_path: Path, attempt: str) -> None:
    response, err = _run(tmp_path, ESCAPES[attempt])
    assert response in (b"undefinedundefined", b"none"), (attempt, response, err)


def test_a_source_cannot_write_the_answer_or_settle_the_run(tmp_path: Path) -> None:
    source = """
        try { globalThis.__output = "0xdeadbeef"; } catch (e) {}
        try { globalThis.__settled = true; } catch (e) {}
        try { Object.defineProperty(globalThis, "__settled", { value: true }); } catch (e) {}
        return Functions.encodeString("honest");
    """
    assert _run(tmp_path, source) == (b"honest", "")


def test_a_length_getter_does_not_pass_the_response_limit(tmp_path: Path) -> None:
    source = "class Short extends Uint8Array { get length() { return 1; } } return new Short(3000);"
    response, err = _run(tmp_path, source)
    assert (response, err) == (b"", "response of 3000 bytes exceeds the 256-byte limit")


SHOW_SECRETS = "return Functions.encodeString(JSON.stringify(secrets));"


def _sealed(secrets: dict[str, str], purpose: str = PURPOSE, key: PrivateKey = AGENT_KEY) -> bytes:
    return seal_for(bytes(key.public_key), 1, secrets, purpose)


def test_secrets_sealed_for_the_subscription_owner_reach_the_source(tmp_path: Path) -> None:
    response, err = _run(tmp_path, SHOW_SECRETS, request={"secrets": _sealed({"apiKey": "k-123"})})
    assert (json.loads(response), err) == ({"apiKey": "k-123"}, "")


@pytest.mark.parametrize(
    ("sealed", "at", "error"),
    [
        # The victim's secrets, copied off the chain into a request of another subscription owner.
        (_sealed({"apiKey": "k"}, f"chainlink-functions:{CHAIN_ID}:{ADAPTER}:0x{'0e' * 20}"), {}, "another"),
        # ... into a request from a contract posing as the adapter.
        (_sealed({"apiKey": "k"}), {"consumer": "0x" + "99" * 20}, "another"),
        # ... into the same adapter's address on another chain.
        (_sealed({"apiKey": "k"}), {"chain_id": 1}, "another"),
        # The agent's own settings (sealed to it with no purpose) are never a request's secrets.
        (bytes(8) + b"\x01" + seal_to(bytes(AGENT_KEY.public_key), {"apiKey": "k"}), {}, "epoch"),
        ((1).to_bytes(8, "big") + seal_to(bytes(AGENT_KEY.public_key), {"apiKey": "k"}), {}, "name no purpose"),
        # Sealed to another agent's key.
        (_sealed({"apiKey": "k"}, key=PrivateKey.generate()), {}, "cannot be opened"),
        (b"\x00" * 5, {}, "too short"),
    ],
)
def test_secrets_open_for_their_own_requests_only(
    tmp_path: Path, sealed: bytes, at: dict[str, Any], error: str
) -> None:
    response, err = _run(tmp_path, SHOW_SECRETS, request={"secrets": sealed}, at=at)
    assert response == b""
    assert error in err
    assert "apiKey" not in err


def test_don_hosted_secrets_are_refused_with_a_way_forward(tmp_path: Path) -> None:
    _, err = _run(tmp_path, SHOW_SECRETS, request={"secrets": b"\xa2", "secrets_location": 2})
    assert "not DON-hosted ones" in err


def test_the_agents_own_settings_never_reach_a_source(tmp_path: Path) -> None:
    response, _ = _run(tmp_path, SHOW_SECRETS, secrets={"OWNER": "x"})
    assert response == b"{}"


def test_a_long_error_is_cut_to_the_response_limit(tmp_path: Path) -> None:
    _, err = _run(tmp_path, 'throw new Error("x".repeat(5000));')
    assert err == "x" * 256


def test_a_source_that_rewrites_the_answer_through_the_globals_cannot_pass_its_limits(tmp_path: Path) -> None:
    """From an attacker's pass: a source replaced JSON.parse, which the prelude used to read the
    host's replies, and so wrote the runtime's answer itself (a 3,500-byte response and an error
    both set). The manifest's output size and types hold whatever runs in the realm."""
    forged = "0x" + encode(["bytes", "bytes"], [b"R" * 3500, b"also an error"]).hex()
    source = f"""
      const parse = JSON.parse;
      JSON.parse = function (text, reviver) {{
        const value = parse(text, reviver);
        if (value && typeof value.ok === "string" && value.ok.length > 2 + 64 * 4) value.ok = "{forged}";
        return value;
      }};
      return new Uint8Array([1]);
    """
    cbor = functions_request(source)
    execution = simulate(RUNTIME, bytes.fromhex(OWNER[2:]) + cbor, state_dir=tmp_path).execution
    assert execution.status == Status.RESOURCE_LIMIT
    assert "exceeds the 640-byte limit" in (execution.error or "")
