"""What an attacker holding some key would submit: results signed outside the cluster, for
tests of what the chain refuses. Test code only; nothing shipped can forge a result."""

from __future__ import annotations

from eth_account import Account

from enclave.usage import Stack
from protocol.deployment import send
from protocol.results import AgentResult, RequestCommitment, sign_result
from protocol.status import Status


def submit_signed_by(
    stack: Stack, key: bytes, epoch: int, request_id: int, output: bytes, sender_key: str
) -> list[int]:
    """Signs a result for a request with `key` as if it were epoch `epoch`'s cluster key and
    submits it; returns the RequestNotProcessed reasons the router gave (empty: delivered).
    For tests of what the chain refuses."""
    assert stack.deployment is not None
    w3 = stack.web3()
    router = stack.deployment.contract(w3, "AgentRouter")
    log = router.events.AgentRequested().get_logs(
        from_block=stack.deployment.start_block, argument_filters={"requestId": request_id}
    )[0]
    commitment = RequestCommitment.from_event(log["args"], log["blockNumber"])
    result = AgentResult(commitment=commitment, status=Status.OK, output=output)
    signed = sign_result(key, chain_id=w3.eth.chain_id, router=router.address, result=result, epoch=epoch)
    receipt = send(w3, Account.from_key(sender_key), router.functions.fulfill([signed.as_tuple()]), gas=500_000)
    return [int(e["args"]["reason"]) for e in router.events.RequestNotProcessed().process_receipt(receipt)]
