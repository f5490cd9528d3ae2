"""What requests pay, end to end on a running stack: the agent's price to its owner, the
operator's fee and the delivery's gas to the bridge's transmitter, the rest back to the payer;
subscriptions made and funded with the CLI pay for their consumers' requests. Ground truth is
the router's balances and events, not the bridge's store."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from eth_account import Account
from web3.contract import Contract
from web3.logs import DISCARD

from enclave import cli
from enclave.anvil import DEV_KEYS
from enclave.stack import DEPLOYER_KEY, TRANSMITTER_KEY, Stack
from enclave.usage import request_ids, send_asks, wait_for
from protocol.deployment import send
from protocol.fees import current_gas_price, request_value
from tests.state import fresh_state_dir

pytestmark = pytest.mark.chain

ECHO = "export default async (input) => input.bytes;"
PRICE = 3 * 10**14
OPERATOR_FEE = 10**14
CALLBACK_GAS = 200_000
OWNER = Account.from_key(DEV_KEYS[5])  # the agent's owner: nobody else sends from it
SUB_OWNER = DEV_KEYS[6]


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with Stack(state_dir=fresh_state_dir("e2e-fees"), workers=1) as running:
        assert running.deployment is not None
        w3 = running.web3()
        router = running.deployment.contract(w3, "AgentRouter")
        config = router.functions.getConfig().call()
        send(w3, Account.from_key(DEPLOYER_KEY), router.functions.setConfig((*config[:4], OPERATOR_FEE, config[5])))
        yield running


@pytest.fixture(scope="module")
def agent(stack: Stack) -> int:
    assert stack.deployment is not None
    w3 = stack.web3()
    router = stack.deployment.contract(w3, "AgentRouter")
    receipt = send(w3, OWNER, router.functions.registerAgent(ECHO.encode(), PRICE, False))
    return int(router.events.AgentRegistered().process_receipt(receipt, errors=DISCARD)[0]["args"]["agentId"])


def _router(stack: Stack) -> Contract:
    assert stack.deployment is not None
    return stack.deployment.contract(stack.web3(), "AgentRouter")


def _charge(stack: Stack, request_id: int) -> dict[str, int]:
    """The request's RequestFulfilled: what its delivery paid, part by part."""
    [event] = [
        e
        for e in _router(stack).events.RequestFulfilled().get_logs(from_block=0)
        if int(e["args"]["requestId"]) == request_id
    ]
    receipt = stack.web3().eth.get_transaction_receipt(event["transactionHash"])
    return {**event["args"], "txGasPrice": int(receipt["effectiveGasPrice"]), "txGasUsed": int(receipt["gasUsed"])}


def _cli(capsys: pytest.CaptureFixture[str], stack: Stack, *argv: str) -> str:
    code = cli.main([*argv, "--state-dir", str(stack.state_dir)])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def test_a_paid_request_pays_each_part_to_its_owner(stack: Stack, agent: int) -> None:
    router = _router(stack)
    echo = stack.deployment.contract(stack.web3(), "EchoConsumer")  # type: ignore[union-attr]
    transmitter = Account.from_key(TRANSMITTER_KEY).address
    before = {who: router.functions.balanceOf(who).call() for who in (OWNER.address, transmitter, echo.address)}

    [request_id] = request_ids(stack, send_asks(stack, agent, [b"paid"], gas=CALLBACK_GAS))
    wait_for(stack, [request_id])
    paid = _charge(stack, request_id)
    [requested] = [
        e["args"]["charge"]
        for e in router.events.AgentRequested().get_logs(from_block=0)
        if int(e["args"]["requestId"]) == request_id
    ]
    gained = {who: router.functions.balanceOf(who).call() - before[who] for who in before}

    assert (requested["price"], requested["operatorFee"]) == (PRICE, OPERATOR_FEE)
    assert gained[OWNER.address] == PRICE, "the agent's owner earns its price"
    assert gained[transmitter] == OPERATOR_FEE + paid["gasReimbursed"], "the transmitter, its fee and its gas"
    assert gained[echo.address] == paid["refunded"], "the consumer, the rest"
    assert PRICE + OPERATOR_FEE + paid["gasReimbursed"] + paid["refunded"] == requested["fee"]
    # The gas part is the callback's gas and the delivery overhead at the fulfilment's own price:
    # within a factor of the fulfil transaction's real cost (one result in it).
    spent = paid["txGasUsed"] * paid["txGasPrice"]
    assert 0.5 * spent < paid["gasReimbursed"] < 2 * spent, (paid["gasReimbursed"], spent)


def test_a_subscription_made_with_the_cli_pays_for_its_consumer(
    stack: Stack, agent: int, capsys: pytest.CaptureFixture[str]
) -> None:
    router = _router(stack)
    w3 = stack.web3()
    echo = stack.deployment.contract(w3, "EchoConsumer")  # type: ignore[union-attr]
    owner_key = ["--private-key", SUB_OWNER]
    created = _cli(capsys, stack, "subscription", "create", *owner_key)
    subscription = int(created.split()[1])
    _cli(capsys, stack, "subscription", "fund", str(subscription), "0.05ether")
    _cli(capsys, stack, "subscription", "add-consumer", str(subscription), echo.address, *owner_key)

    gas_price = current_gas_price(w3)
    held = request_value(router, agent, CALLBACK_GAS, gas_price)
    call = echo.functions.askWithSubscription(subscription, agent, b"on the subscription", CALLBACK_GAS)
    receipt = send(w3, Account.from_key(DEPLOYER_KEY), call, gas_price=gas_price)
    request_id = int(router.events.AgentRequested().process_receipt(receipt, errors=DISCARD)[0]["args"]["requestId"])
    wait_for(stack, [request_id])

    paid = _charge(stack, request_id)
    owner, balance, held_now, _, _ = router.functions.getSubscription(subscription).call()
    assert owner == Account.from_key(SUB_OWNER).address
    assert held_now == 0, "its hold was released"
    charged = PRICE + OPERATOR_FEE + paid["gasReimbursed"]
    assert balance == 5 * 10**16 - charged, "it paid what the request cost, not what it held"
    assert charged + paid["refunded"] <= held, "and never more than it held"
    shown = _cli(capsys, stack, "subscription", "show", str(subscription))
    assert f"balance    {balance} wei" in shown

    # The dashboard shows the request's charge, part by part.
    page = httpx.get(f"{stack.url('web')}/requests/0x{request_id:064x}/live", timeout=10).text
    assert "subscription " + str(subscription) in page
    assert "agent&#39;s price" in page or "agent's price" in page

    # The dashboard lists the subscription, and the bridge's transmitter as an active operator.
    economics = httpx.get(f"{stack.url('web')}/api/economics", timeout=10).json()
    listed = {"id": subscription, "owner": owner, "balance": str(balance), "held": "0", "currency": 0}
    assert listed in economics["subscriptions"]
    [operator] = economics["staking"]["operators"]
    assert (operator["address"], operator["active"]) == (Account.from_key(TRANSMITTER_KEY).address, True)
    assert f"<td>{subscription}</td>" in httpx.get(f"{stack.url('web')}/economics", timeout=10).text

    # What no request holds can be taken out, and then the subscription cancelled.
    out = _cli(capsys, stack, "subscription", "cancel", str(subscription), "--to", OWNER.address, *owner_key)
    assert f"{balance} wei sent to" in out


def test_a_token_subscription_funded_with_a_permit_pays_each_part_in_the_token(
    stack: Stack, agent: int, capsys: pytest.CaptureFixture[str]
) -> None:
    router = _router(stack)
    w3 = stack.web3()
    echo = stack.deployment.contract(w3, "EchoConsumer")  # type: ignore[union-attr]
    token = stack.deployment.contract(w3, "EnclaveToken")  # type: ignore[union-attr]
    funder = Account.from_key(DEPLOYER_KEY)  # holds the local stack's tokens
    owner_key = ["--private-key", SUB_OWNER]
    created = _cli(capsys, stack, "subscription", "create", "--token", *owner_key)
    assert "paying in the fee token" in created
    subscription = int(created.split()[1])
    tokens_before = token.functions.balanceOf(funder.address).call()
    _cli(capsys, stack, "subscription", "fund", str(subscription), "50ether")  # a permit, no approve first
    assert token.functions.balanceOf(funder.address).call() == tokens_before - 50 * 10**18
    assert token.functions.allowance(funder.address, router.address).call() == 0, "the permit was used up"
    _cli(capsys, stack, "subscription", "add-consumer", str(subscription), echo.address, *owner_key)

    transmitter = Account.from_key(TRANSMITTER_KEY).address
    accounts = (OWNER.address, transmitter)
    before = {who: router.functions.tokenBalanceOf(who).call() for who in accounts}
    wei_before = {who: router.functions.balanceOf(who).call() for who in accounts}
    gas_price = current_gas_price(w3)
    held = router.functions.estimateTokenCost(agent, CALLBACK_GAS, gas_price.max_fee).call()
    call = echo.functions.askWithSubscription(subscription, agent, b"in tokens", CALLBACK_GAS)
    receipt = send(w3, funder, call, gas_price=gas_price)
    [requested] = router.events.AgentRequested().process_receipt(receipt, errors=DISCARD)
    charge, request_id = requested["args"]["charge"], int(requested["args"]["requestId"])
    rate = router.functions.tokensPerEth().call()
    assert charge["currency"] == 1
    rounded_up = (-(-PRICE * rate // 10**18), -(-OPERATOR_FEE * rate // 10**18))
    assert (charge["price"], charge["operatorFee"]) == rounded_up
    assert charge["fee"] <= held
    wait_for(stack, [request_id])

    paid = _charge(stack, request_id)
    gained = {who: router.functions.tokenBalanceOf(who).call() - before[who] for who in accounts}
    assert gained[OWNER.address] == charge["price"], "the agent's owner earns its price in tokens"
    assert gained[transmitter] == charge["operatorFee"] + paid["gasReimbursed"], "the transmitter, fee and gas"
    assert {who: router.functions.balanceOf(who).call() for who in accounts} == wei_before, "no wei moved"
    # The gas part is the delivery's gas at its gas price, counted in tokens at the rate.
    spent_in_tokens = paid["txGasUsed"] * paid["txGasPrice"] * rate // 10**18
    assert 0.5 * spent_in_tokens < paid["gasReimbursed"] < 2 * spent_in_tokens
    _, balance, held_now, _, _ = router.functions.getSubscription(subscription).call()
    assert held_now == 0
    assert balance == 50 * 10**18 - charge["price"] - charge["operatorFee"] - paid["gasReimbursed"]
    assert f"balance    {balance} token units" in _cli(capsys, stack, "subscription", "show", str(subscription))
    page = httpx.get(f"{stack.url('web')}/requests/0x{request_id:064x}/live", timeout=10).text
    assert f'title="{charge["price"]} token units"' in page

    # Cancelling pays the tokens out.
    out = _cli(capsys, stack, "subscription", "cancel", str(subscription), "--to", OWNER.address, *owner_key)
    assert f"{balance} token units sent to" in out
    assert token.functions.balanceOf(OWNER.address).call() == balance


def test_subscription_refusals_say_what_to_do(stack: Stack, agent: int, capsys: pytest.CaptureFixture[str]) -> None:
    created = _cli(capsys, stack, "subscription", "create", "--private-key", SUB_OWNER)
    subscription = created.split()[1]
    code = cli.main(["subscription", "withdraw", subscription, "1", "--to", OWNER.address,
                     "--state-dir", str(stack.state_dir), "--private-key", SUB_OWNER])  # fmt: skip
    err = capsys.readouterr().err
    assert code != 0
    assert "AmountNotAvailable" in err
    code = cli.main(["subscription", "add-consumer", subscription, OWNER.address, "--state-dir", str(stack.state_dir)])
    assert code != 0
    assert "NotSubscriptionOwner" in capsys.readouterr().err
