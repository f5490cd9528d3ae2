"""A client for applications: request an agent, wait for its result on-chain, decode it.

    from enclave.client import EnclaveClient

    client = EnclaveClient.from_stack()            # the running `enclave up`, found as the CLI finds it
    result = client.run(agent_id, b"ETH-USD")      # request through the router, wait for the result
    print(result.status.name, result.text)
    (price,) = result.decode(["uint256"])          # an ABI-encoded answer

    # Or through a consumer contract of yours: any call that makes requests.
    # A request the chain refuses raises EnclaveError naming the contract's error.
    [request_id] = client.request_through(my_consumer.functions.ask(agent_id, b"x", 100_000))
    result = client.wait(request_id)

The result is read from the chain itself, never from the bridge: the `RequestFulfilled` log says
a request was answered, and the answer is in that transaction's calldata, where the router
checked its signature. A request made straight from an account (no consumer contract) gets no
callback; its result is read the same way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_abi.abi import decode
from eth_account import Account
from hexbytes import HexBytes
from web3.contract import Contract
from web3.exceptions import ContractCustomError, ContractLogicError
from web3.logs import DISCARD
from web3.types import TxParams, Wei

from enclave.errors import EnclaveError
from enclave.locations import RunningStack, default_state_dir
from enclave.reverts import refusal
from enclave.stack import FREE_DEV_KEYS
from protocol.calls import FunctionEncoder
from protocol.deployment import Deployment, connect, send
from protocol.fees import GasPrice, current_gas_price, request_value
from protocol.results import RequestCommitment
from protocol.status import Status

POLL_S = 0.1


@dataclass(frozen=True)
class Result:
    """A request's answer as the chain received it."""

    request_id: int
    status: Status
    output: bytes
    fulfil_tx: str

    @property
    def ok(self) -> bool:
        return self.status == Status.OK

    @property
    def text(self) -> str:
        """The output as UTF-8 text (an error's message when the run failed)."""
        return self.output.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.output)

    def decode(self, types: Sequence[str]) -> tuple[Any, ...]:
        """The output ABI-decoded as `types`, for example `["uint256", "string"]`."""
        if not self.ok:
            raise EnclaveError(f"request 0x{self.request_id:064x} ended {self.status.name}: {self.text}")
        return tuple(decode(list(types), self.output))


class EnclaveClient:
    def __init__(self, rpc_url: str, deployment: Deployment, private_key: str, timeout_s: float = 10.0) -> None:
        self.w3 = connect(rpc_url, timeout_s)
        self.deployment = deployment
        self.account = Account.from_key(private_key)
        self.router: Contract = deployment.contract(self.w3, "AgentRouter")
        self._fulfil = FunctionEncoder.of(self.router.abi, "fulfill")
        self._fulfil_batch = FunctionEncoder.of(self.router.abi, "fulfillBatch")

    @classmethod
    def from_stack(cls, state_dir: Path | None = None, private_key: str | None = None) -> EnclaveClient:
        """A client of the stack `enclave up` runs (in `state_dir`, else where the CLI looks),
        sending from `private_key`, else from the dev key no service sends from."""
        stack = RunningStack.read(state_dir or default_state_dir())
        return cls(stack.rpc_url, stack.deployment, private_key or FREE_DEV_KEYS[0])

    # -- asking ---------------------------------------------------------------------------------

    def price(self, agent_id: int) -> int:
        try:
            return int(self.router.functions.getAgent(agent_id).call()[1])
        except (ContractCustomError, ContractLogicError) as err:
            raise _refused(err) from err

    def cost(self, agent_id: int, callback_gas_limit: int = 0, gas_price: GasPrice | None = None) -> int:
        """The most a request of `agent_id` can cost if sent now (router.estimateCost at the fee
        cap a transaction sent now would carry): the value `request` pays by default."""
        try:
            return request_value(self.router, agent_id, callback_gas_limit, gas_price or current_gas_price(self.w3))
        except (ContractCustomError, ContractLogicError) as err:
            raise _refused(err) from err

    def request(self, agent_id: int, input_: bytes | str, fee: int | None = None) -> int:
        """Requests `agent_id` on `input_` straight from this account (no callback: read the
        result with `wait`); pays the most it can cost unless `fee` says otherwise, and what it
        does not cost is this account's to withdraw from the router."""
        data = input_.encode() if isinstance(input_, str) else input_
        call = self.router.functions.request(agent_id, data, 0)
        gas_price = current_gas_price(self.w3)
        value = self.cost(agent_id, 0, gas_price) if fee is None else fee
        [request_id] = self.request_through(call, value, gas_price)
        return request_id

    def request_through(self, call: Any, value: int = 0, gas_price: GasPrice | None = None) -> list[int]:
        """Sends any contract call that makes requests (a consumer's, or the router's); returns
        the ids of the requests it made, in order. A call the chain would refuse raises
        EnclaveError with the contract's error by name, before anything is sent. A request's
        value must cover `cost` at the transaction's gas price: pass the `gas_price` it was
        reckoned at."""
        gas_price = gas_price or current_gas_price(self.w3)
        try:
            call.call(TxParams({"from": self.account.address, "value": Wei(value), "gasPrice": Wei(gas_price.max_fee)}))
        except (ContractCustomError, ContractLogicError) as err:
            raise _refused(err) from err
        receipt = send(self.w3, self.account, call, value=value, gas_price=gas_price)
        events = self.router.events.AgentRequested().process_receipt(receipt, errors=DISCARD)
        return [int(event["args"]["requestId"]) for event in events]

    # -- the answer -----------------------------------------------------------------------------

    def wait(self, request_id: int, timeout_s: float = 120.0) -> Result:
        """The request's result once it is on-chain; raises if it was cancelled, or on timeout."""
        deadline = time.monotonic() + timeout_s
        topic = request_id.to_bytes(32, "big")
        fulfilled = HexBytes(self.router.events.RequestFulfilled().topic)
        cancelled = HexBytes(self.router.events.RequestCancelled().topic)
        while True:
            logs = self.w3.eth.get_logs(
                {
                    "address": self.router.address,
                    "topics": [[fulfilled, cancelled], HexBytes(topic)],
                    "fromBlock": self.deployment.start_block,
                    "toBlock": "latest",
                }
            )
            for entry in logs:
                if bytes(entry["topics"][0]) == bytes(cancelled):
                    raise EnclaveError(f"request 0x{request_id:064x} was cancelled (its deadline passed)")
                return self._answer(request_id, HexBytes(entry["transactionHash"]).to_0x_hex())
            if time.monotonic() > deadline:
                raise EnclaveError(f"no result for request 0x{request_id:064x} within {timeout_s:.0f} s")
            time.sleep(POLL_S)

    def run(self, agent_id: int, input_: bytes | str, fee: int | None = None, timeout_s: float = 120.0) -> Result:
        """`request`, then `wait`."""
        return self.wait(self.request(agent_id, input_, fee), timeout_s)

    def _answer(self, request_id: int, tx_hash: str) -> Result:
        """The result for `request_id` in the calldata of the fulfil transaction `tx_hash`."""
        calldata = bytes(self.w3.eth.get_transaction(tx_hash)["input"])  # type: ignore[arg-type]
        if calldata[:4] == self._fulfil.selector:
            results = [signed[0] for signed in self._fulfil.decode(calldata)[0]]
        elif calldata[:4] == self._fulfil_batch.selector:
            results = list(self._fulfil_batch.decode(calldata)[0])
        else:
            raise EnclaveError(f"transaction {tx_hash} is not a fulfilment this client can read")
        for fields, status, output in results:
            if RequestCommitment(*fields).request_id == request_id:
                return Result(request_id, Status(status), bytes(output), tx_hash)
        raise EnclaveError(f"transaction {tx_hash} fulfilled request 0x{request_id:064x} but carries no result for it")


def _refused(err: Exception) -> EnclaveError:
    return EnclaveError(refusal(err))
