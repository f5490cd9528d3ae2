"""What the chain said when it refused a transaction: the contracts' custom errors by name, with
their arguments, and what to do about the common ones."""

from __future__ import annotations

from functools import cache
from typing import Any

from eth_abi.abi import decode
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import to_checksum_address

from protocol.deployment import load_artifact
from protocol.errors import ArtifactMissing

# The contracts whose errors a user of the command line meets.
CONTRACTS = ("AgentRouter", "TeeRegistry", "EchoConsumer")

HINTS = {
    "AgentNotFound": "no agent has that id: `enclave agent list` shows the agents",
    "AgentIsPaused": "its owner paused it; it takes requests again once unpaused",
    "InsufficientFee": "pay at least the most the request can cost (`enclave agent cost ID`), in wei",
    "NotSubscriptionConsumer": "its owner must add the consumer: `enclave subscription add-consumer`",
    "InsufficientSubscriptionBalance": "fund the subscription: `enclave subscription fund ID AMOUNT`",
    "AmountNotAvailable": "open requests hold the rest until they are answered or cancelled",
    "SubscriptionHasOpenRequests": "wait until its open requests are answered or cancelled",
    "SubscriptionNotFound": "no subscription has that id",
    "NotSubscriptionOwner": "only the subscription's owner may do that: pass the owner's --private-key",
    "ConsumerNotAllowed": "the agent's owner lets only some consumers use it",
    "InputTooLarge": "make the input smaller",
    "InvalidCodeSize": "agent code must be 1 byte to the maximum size",
    "NotAgentOwner": "only the agent's owner may do that: pass the owner's --private-key",
    "CallbackGasTooHigh": "ask for less callback gas",
    "UnevenFee": "the fee must divide equally among the requests",
}


@cache
def _errors() -> dict[bytes, tuple[str, list[str], list[str]]]:
    """Selector -> (name, argument names, argument types), from the compiled contracts."""
    known: dict[bytes, tuple[str, list[str], list[str]]] = {}
    for name in CONTRACTS:
        try:
            abi = load_artifact(name).abi
        except ArtifactMissing:
            continue
        for item in abi:
            if item.get("type") != "error":
                continue
            types = [str(i["type"]) for i in item["inputs"]]
            selector = function_signature_to_4byte_selector(f"{item['name']}({','.join(types)})")
            known[bytes(selector)] = (str(item["name"]), [str(i["name"]) for i in item["inputs"]], types)
    return known


def explain(data: bytes) -> str | None:
    """`Name(arg=value, ...): what to do`, for revert data of a known custom error."""
    found = _errors().get(data[:4])
    if found is None:
        return None
    name, names, types = found
    try:
        values: tuple[Any, ...] = decode(types, data[4:])
    except Exception:  # noqa: BLE001 - malformed data: name the error without its arguments
        values = ()
    shown = [to_checksum_address(v) if t == "address" else v for t, v in zip(types, values, strict=False)]
    args = ", ".join(f"{n}={v}" for n, v in zip(names, shown, strict=False))
    hint = HINTS.get(name)
    return f"{name}({args})" + (f": {hint}" if hint else "")


def revert_data(err: Exception) -> bytes | None:
    """The revert data web3 carries on a refused call or gas estimate, if any."""
    data = getattr(err, "data", None)
    if isinstance(data, str) and data.startswith("0x"):
        try:
            return bytes.fromhex(data[2:])
        except ValueError:
            return None
    return None


def refusal(err: Exception) -> str:
    """One line for a call or estimate that a contract refused."""
    return f"the chain refused it: {explain(revert_data(err) or b'') or err}"
