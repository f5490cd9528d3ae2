"""Gas of request() and fulfill() as anvil's transaction receipts report it.

Receipts include what forge's test figures leave out: the 21,000 base cost, calldata, and the
refund cap. Run: `.venv/bin/python benchmarks/gas.py` (after `make setup`).
"""

from __future__ import annotations

from typing import Any

from eth_account import Account
from web3 import Web3
from web3.logs import DISCARD

from enclave.anvil import DEV_KEYS, Anvil
from enclave.deploy import deploy_contract, deploy_system
from enclave.usage import send_request
from protocol.deployment import send
from protocol.fees import current_gas_price
from protocol.results import AgentResult, RequestCommitment, Status, batch_digest, sign_digest, sign_result

CLUSTER_KEY = bytes.fromhex("c1" * 32)
AGENT_CODE = b"export default async function main(input) { return input; }"
INPUT = bytes(range(64))
CALLBACK_GAS = 100_000


def main() -> None:
    with Anvil() as anvil:
        w3 = Web3(Web3.HTTPProvider(anvil.rpc_url))
        deployer = Account.from_key(DEV_KEYS[0])
        transmitter = Account.from_key(DEV_KEYS[1])
        deployment = deploy_system(w3, DEV_KEYS[0])
        router = deployment.contract(w3, "AgentRouter")
        tee = deployment.contract(w3, "TeeRegistry")
        cluster = Account.from_key(CLUSTER_KEY)
        send(w3, deployer, tee.functions.publishEpoch(1, cluster.address, b"\x01" * 32))
        send(w3, deployer, router.functions.registerAgent(AGENT_CODE, 0, False))
        code_hash = Web3.keccak(AGENT_CODE)
        consumers = {
            "empty callback": deploy_contract(w3, deployer, "EmptyConsumer", source_file="BenchConsumers.sol").address,
            "callback stores 32 bytes": deploy_contract(
                w3, deployer, "Store32Consumer", source_file="BenchConsumers.sol"
            ).address,
        }
        bench = Bench(w3, router, code_hash, transmitter)

        rows: list[tuple[str, int, int]] = []
        eoa_request = bench.request_from(deployer.address)[2]
        ask = deployment.contract(w3, "EchoConsumer").functions.ask(1, INPUT, CALLBACK_GAS)
        via_consumer = send_request(w3, deployer, ask, router, 1, CALLBACK_GAS)["gasUsed"]
        rows.append(("request(), 64-byte input, from an EOA", 1, eoa_request))
        rows.append(("request(), 64-byte input, through EchoConsumer.ask", 1, via_consumer))

        # Warm-up: in steady state the transmitter's balance and each consumer's (the change its
        # requests did not spend) are non-zero.
        for consumer in consumers.values():
            bench.fulfill([bench.request_from(consumer)[:2]])
        for label, consumer in consumers.items():
            for size in (1, 10, 50):
                requests = [bench.request_from(consumer)[:2] for _ in range(size)]
                rows.append((f"fulfill(), a signature per result, {label}", size, bench.fulfill(requests)))
            for size in (1, 10, 50):
                requests = [bench.request_from(consumer)[:2] for _ in range(size)]
                rows.append((f"fulfillBatch(), one signature, {label}", size, bench.fulfill_batch(requests)))

        # Through a subscription: the empty-callback consumer charges one, funded in ETH.
        empty = consumers["empty callback"]
        subscription = bench.subscription_for(deployer, empty)
        rows.append(("requestWithSubscription(), 64-byte input", 1, bench.request_from(empty, subscription)[2]))
        for size in (1, 50):
            requests = [bench.request_from(empty, subscription)[:2] for _ in range(size)]
            rows.append(
                ("fulfillBatch(), one signature, empty callback, subscription", size, bench.fulfill_batch(requests))
            )

        # In the fee token: requests that pay with the consumer's tokens, and a token subscription.
        token = deployment.contract(w3, "EnclaveToken")
        bench.hold_tokens(deployer, token, empty)
        bench.fulfill([bench.request_from(empty, in_tokens=True)[:2]])  # warm-up: token balances
        rows.append(("requestWithToken(), 64-byte input", 1, bench.request_from(empty, in_tokens=True)[2]))
        for size in (1, 50):
            requests = [bench.request_from(empty, in_tokens=True)[:2] for _ in range(size)]
            rows.append(("fulfillBatch(), one signature, empty callback, token", size, bench.fulfill_batch(requests)))
        paid_in_tokens = bench.subscription_for(deployer, empty, token=token)
        rows.append(
            ("requestWithSubscription(), 64-byte input, token", 1, bench.request_from(empty, paid_in_tokens)[2])
        )
        for size in (1, 50):
            requests = [bench.request_from(empty, paid_in_tokens)[:2] for _ in range(size)]
            label = "fulfillBatch(), one signature, empty callback, token subscription"
            rows.append((label, size, bench.fulfill_batch(requests)))

        rows += staked_rows(anvil.rpc_url)

        print(f"| {'operation':70} | {'results':>7} | {'gasUsed':>10} | {'per result':>10} |")
        print(f"| {'-' * 70} | {'-' * 7}:| {'-' * 10}:| {'-' * 10}:|")
        for label, size, gas in rows:
            print(f"| {label:70} | {size:>7} | {gas:>10,} | {gas // size:>10,} |")


def staked_rows(rpc_url: str) -> list[tuple[str, int, int]]:
    """The same request and deliveries on a router built with OperatorStaking, the transmitter
    its one active operator: each request is assigned to it, each delivery checks it stakes."""
    w3 = Web3(Web3.HTTPProvider(rpc_url))
    deployer, transmitter = Account.from_key(DEV_KEYS[0]), Account.from_key(DEV_KEYS[1])
    deployment = deploy_system(w3, DEV_KEYS[0], operators=[DEV_KEYS[1]])
    router = deployment.contract(w3, "AgentRouter")
    tee = deployment.contract(w3, "TeeRegistry")
    send(w3, deployer, tee.functions.publishEpoch(1, Account.from_key(CLUSTER_KEY).address, b"\x01" * 32))
    send(w3, deployer, router.functions.registerAgent(AGENT_CODE, 0, False))
    empty = deploy_contract(w3, deployer, "EmptyConsumer", source_file="BenchConsumers.sol").address
    bench = Bench(w3, router, Web3.keccak(AGENT_CODE), transmitter)
    bench.fulfill([bench.request_from(empty)[:2]])  # warm-up, as above
    rows = [("request(), 64-byte input, staking (assigned to an operator)", 1, bench.request_from(empty)[2])]
    for size in (1, 50):
        requests = [bench.request_from(empty)[:2] for _ in range(size)]
        rows.append(("fulfillBatch(), one signature, empty callback, staking", size, bench.fulfill_batch(requests)))
    return rows


class Bench:
    def __init__(self, w3: Web3, router: Any, code_hash: bytes, transmitter: Any) -> None:
        self.w3 = w3
        self.router = router
        self.code_hash = code_hash
        self.transmitter = transmitter
        self.gas_price = current_gas_price(w3)

    def subscription_for(self, owner: Any, consumer: str, token: Any = None) -> int:
        """A subscription of `owner`, funded with 10 ETH (or, given the fee token, 10,000 tokens),
        that `consumer` may charge."""
        create = (
            self.router.functions.createTokenSubscription() if token else self.router.functions.createSubscription()
        )
        receipt = send(self.w3, owner, create)
        subscription = int(
            self.router.events.SubscriptionCreated().process_receipt(receipt)[0]["args"]["subscriptionId"]
        )
        if token is None:
            send(self.w3, owner, self.router.functions.fundSubscription(subscription), value=10 * 10**18)
        else:
            send(self.w3, owner, token.functions.approve(self.router.address, 10_000 * 10**18))
            send(self.w3, owner, self.router.functions.fundSubscriptionWithToken(subscription, 10_000 * 10**18))
        send(self.w3, owner, self.router.functions.addConsumer(subscription, consumer))
        return subscription

    def hold_tokens(self, minter: Any, token: Any, holder: str) -> None:
        """Mints `holder` (a contract, impersonated) plenty of fee tokens and approves the router."""
        send(self.w3, minter, token.functions.mint(holder, 10**30))
        self.w3.provider.make_request("anvil_impersonateAccount", [holder])  # type: ignore[arg-type]
        self.w3.provider.make_request("anvil_setBalance", [holder, hex(10**20)])  # type: ignore[arg-type]
        tx_hash = token.functions.approve(self.router.address, 2**256 - 1).transact({"from": holder})
        self.w3.eth.wait_for_transaction_receipt(tx_hash)

    def request_from(
        self, sender: str, subscription: int = 0, in_tokens: bool = False
    ) -> tuple[int, RequestCommitment, int]:
        """Sends request() as `sender` (impersonated on anvil), requestWithToken() with
        `in_tokens`, or requestWithSubscription() when given a subscription; returns id, fields
        and gas."""
        self.w3.provider.make_request("anvil_impersonateAccount", [sender])  # type: ignore[arg-type]
        self.w3.provider.make_request("anvil_setBalance", [sender, hex(10**20)])  # type: ignore[arg-type]
        # A legacy gas price is the transaction's exact tx.gasprice: the value covers it. (Not
        # eth_gasPrice: anvil answers it from recent transactions' prices, which this would raise.)
        gas_price = self.gas_price.max_fee
        if subscription:
            call = self.router.functions.requestWithSubscription(subscription, 1, INPUT, CALLBACK_GAS)
            value = 0
        elif in_tokens:
            call = self.router.functions.requestWithToken(1, INPUT, CALLBACK_GAS)
            value = 0
        else:
            call = self.router.functions.request(1, INPUT, CALLBACK_GAS)
            value = self.router.functions.estimateCost(1, CALLBACK_GAS, gas_price).call()
        tx_hash = call.transact({"from": sender, "value": value, "gasPrice": gas_price})
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash)
        log = self.router.events.AgentRequested().process_receipt(receipt, errors=DISCARD)[0]
        commitment = RequestCommitment.from_event(log["args"], log["blockNumber"])
        return int(log["args"]["requestId"]), commitment, int(receipt["gasUsed"])

    def _results(self, requests: list[tuple[int, RequestCommitment]]) -> list[AgentResult]:
        return [
            AgentResult(commitment=c, status=Status.OK, output=Web3.keccak(i.to_bytes(32, "big"))) for i, c in requests
        ]

    def _submit(self, call: Any, size: int) -> int:
        receipt = send(self.w3, self.transmitter, call, gas=size * 250_000 + 200_000)
        delivered = self.router.events.RequestFulfilled().process_receipt(receipt, errors=DISCARD)
        if len(delivered) != size:  # a skipped result would be measured as a cheaper one
            raise SystemExit(f"{size - len(delivered)} of {size} results were not delivered")
        return int(receipt["gasUsed"])

    def fulfill(self, requests: list[tuple[int, RequestCommitment]]) -> int:
        chain_id, router = self.w3.eth.chain_id, self.router.address
        signed = [
            sign_result(CLUSTER_KEY, chain_id=chain_id, router=router, result=r, epoch=1)
            for r in self._results(requests)
        ]
        return self._submit(self.router.functions.fulfill([s.as_tuple() for s in signed]), len(signed))

    def fulfill_batch(self, requests: list[tuple[int, RequestCommitment]]) -> int:
        results = self._results(requests)
        digest = batch_digest(chain_id=self.w3.eth.chain_id, router=self.router.address, results=results, epoch=1)
        signature = sign_digest(CLUSTER_KEY, digest, 1)
        call = self.router.functions.fulfillBatch([r.as_tuple() for r in results], signature.as_tuple())
        return self._submit(call, len(results))


if __name__ == "__main__":
    main()
