"""What an attacker holding some key would submit: results signed outside the cluster, for
tests of what the chain refuses. Test code only; nothing shipped can forge a result."""

from __future__ import annotations

from eth_account import Account

from enclave.deploy import stake
from enclave.stack import DEPLOYER_KEY
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
    sender = Account.from_key(sender_key)
    staking = stack.deployment.optional_contract(w3, "OperatorStaking")
    # Where only staked operators transmit, the forger stakes (anyone may), for as long as it submits.
    joined = staking is not None and not staking.functions.isActive(sender.address).call()
    if staking is not None and joined:
        token = stack.deployment.contract(w3, "EnclaveToken")
        minimum = staking.functions.getStaking().call()[1][0]
        send(w3, Account.from_key(DEPLOYER_KEY), token.functions.mint(sender.address, minimum))
        stake(w3, staking, token, sender, minimum)
    try:
        receipt = send(w3, sender, router.functions.fulfill([signed.as_tuple()]), gas=500_000)
    finally:
        if staking is not None and joined:
            send(w3, sender, staking.functions.requestUnstake(staking.functions.getOperator(sender.address).call()[0]))
    return [int(e["args"]["reason"]) for e in router.events.RequestNotProcessed().process_receipt(receipt)]
