"""The bridge's transaction sender on a real anvil with mining held: several transactions in
flight at consecutive nonces, nothing waiting on a receipt, a stuck one replaced at a higher
fee, a nonce taken by another transaction reported, and a restart taking over what is in flight."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import coincurve
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3._utils.transactions import fill_transaction_defaults

from bridge import heads as heads_module
from bridge.sender import Sender
from enclave.anvil import Anvil
from enclave.stack import DEPLOYER_KEY
from protocol.deployment import connect
from protocol.transactions import is_plain_dynamic_fee, sign_dynamic_fee

pytestmark = pytest.mark.chain

RECIPIENT = "0x000000000000000000000000000000000000dEaD"


class Outcome:
    def __init__(self) -> None:
        self.mined: list[Any] = []
        self.lost: list[str] = []
        self.stored: list[str] = []

    def send(self, sender: Sender, calldata: bytes = b"") -> str:
        """A call of an account without code: a transaction with nothing else to it."""
        stored, mined, lost = self.stored.append, self.mined.append, self.lost.append
        return sender.send(RECIPIENT, calldata, 30_000, stored, mined, lost, stored)


@pytest.fixture
def chain() -> Iterator[tuple[Web3, LocalAccount]]:
    with Anvil() as anvil:
        w3 = connect(anvil.rpc_url, 10)
        w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
        yield w3, Account.from_key(DEPLOYER_KEY)


@pytest.fixture
def make_sender(chain: tuple[Web3, LocalAccount]) -> Iterator[Callable[..., Sender]]:
    """Senders of the chain's account, closed (their node connections) after the test."""
    made: list[Sender] = []

    def make(**options: Any) -> Sender:
        made.append(Sender(*chain, **options))
        return made[-1]

    yield make
    for sender in made:
        sender.close()


def _pool(w3: Web3, address: str) -> dict[int, dict[str, Any]]:
    content = w3.provider.make_request("txpool_content", [])  # type: ignore[arg-type]
    pending = content["result"]["pending"]
    mine: dict[str, dict[str, Any]] = next(
        (txs for sender, txs in pending.items() if sender.lower() == address.lower()), {}
    )
    return {int(nonce): tx for nonce, tx in mine.items()}


def _mine(w3: Web3) -> None:
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def test_several_in_flight_at_consecutive_nonces_and_none_waited_on(
    chain: tuple[Web3, LocalAccount], make_sender: Callable[..., Sender]
) -> None:
    w3, account = chain
    sender, outcome = make_sender(max_in_flight=4), Outcome()
    first = w3.eth.get_transaction_count(account.address)
    started = time.monotonic()
    hashes = [outcome.send(sender) for _ in range(4)]
    assert time.monotonic() - started < 5, "sending waited for something (mining is held)"
    assert sender.room() == 0
    assert sorted(_pool(w3, account.address)) == [first, first + 1, first + 2, first + 3]
    assert outcome.stored == hashes, "every hash was handed over before its transaction was sent"
    assert sender.poll() == 0, "nothing is mined yet, and nothing blocks"
    assert not outcome.mined
    _mine(w3)
    assert sender.poll() == 4
    assert [r.tx_hash for r in outcome.mined] == hashes
    assert sender.room() == 4
    assert not outcome.lost


def test_a_stuck_transaction_is_sent_again_at_a_higher_fee(
    chain: tuple[Web3, LocalAccount], make_sender: Callable[..., Sender]
) -> None:
    w3, account = chain
    sender, outcome = make_sender(replace_after_s=0.2), Outcome()
    original = outcome.send(sender)
    nonce = w3.eth.get_transaction_count(account.address)
    fee_before = int(_pool(w3, account.address)[nonce]["maxFeePerGas"], 16)
    time.sleep(0.3)
    sender.poll()
    assert sender.replacements == 1
    replacement = outcome.stored[-1]
    assert replacement != original, "the replacement was stored under its own hash before it was sent"
    in_pool = _pool(w3, account.address)
    assert list(in_pool) == [nonce], "one transaction at that nonce, not two"
    assert in_pool[nonce]["hash"] == replacement
    assert int(in_pool[nonce]["maxFeePerGas"], 16) > fee_before
    _mine(w3)
    sender.poll()
    assert [r.tx_hash for r in outcome.mined] == [replacement]
    assert not outcome.lost


def test_a_nonce_used_by_another_transaction_is_reported_lost(
    chain: tuple[Web3, LocalAccount], make_sender: Callable[..., Sender]
) -> None:
    w3, account = chain
    sender, outcome = make_sender(), Outcome()
    outcome.send(sender)
    nonce = w3.eth.get_transaction_count(account.address)
    # Someone else with the same key (another process, an operator by hand) outbids it.
    other = fill_transaction_defaults(w3, {"from": account.address, "to": RECIPIENT, "value": 7, "nonce": nonce})
    other["maxFeePerGas"] = int(other["maxFeePerGas"]) * 3
    other["maxPriorityFeePerGas"] = int(other["maxPriorityFeePerGas"]) * 3
    other["gas"] = 21_000
    w3.eth.send_raw_transaction(account.sign_transaction(other).raw_transaction)
    _mine(w3)
    assert sender.poll() == 1
    assert not outcome.mined
    assert len(outcome.lost) == 1
    assert f"nonce {nonce}" in outcome.lost[0]


def test_a_restarted_sender_takes_over_what_is_in_flight(
    chain: tuple[Web3, LocalAccount], make_sender: Callable[..., Sender]
) -> None:
    w3 = chain[0]
    first = Outcome()
    tx_hash = first.send(make_sender())
    restarted, after = make_sender(replace_after_s=0.2), Outcome()
    assert restarted.adopt(tx_hash, after.mined.append, after.lost.append, after.stored.append)
    assert not restarted.adopt("0x" + "11" * 32, after.mined.append, after.lost.append)
    time.sleep(0.3)
    restarted.poll()  # stuck: replaced, as one of its own
    assert restarted.replacements == 1
    assert after.stored
    next_hash = after.send(restarted, b"next")
    assert next_hash not in after.stored[:1]
    _mine(w3)
    restarted.poll()
    assert len(after.mined) == 2, "the adopted transaction and the next one both mined"
    assert not after.lost


def test_a_pushed_head_stands_for_the_chains_while_it_is_recent(
    chain: tuple[Web3, LocalAccount], make_sender: Callable[..., Sender], monkeypatch: pytest.MonkeyPatch
) -> None:
    w3 = chain[0]
    sender, outcome = make_sender(), Outcome()
    outcome.send(sender)
    sender.new_head(7)
    assert sender.poll() == 0, "not mined yet"
    _mine(w3)
    assert sender.poll() == 0, "no new head was pushed: the node is not asked"
    monkeypatch.setattr(heads_module, "TRUST_PUSHED_HEAD_S", 0.0)
    assert sender.poll() == 1, "a push too old to stand for the chain: the node is asked"
    assert len(outcome.mined) == 1


@pytest.mark.parametrize("seed", range(5))
def test_a_fulfil_transaction_is_signed_to_the_same_bytes_as_eth_account_signs_it(seed: int) -> None:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, no key in use anywhere
    account = Account.from_key(rng.randbytes(32))
    tx = {
        "chainId": rng.choice([1, 1337, 31337, 2**40]),
        "nonce": rng.randrange(2**20),
        "to": Web3.to_checksum_address(rng.randbytes(20)),
        "value": rng.choice([0, 1, 10**18]),
        "data": "0x" + rng.randbytes(rng.randrange(0, 600)).hex(),
        "gas": rng.randrange(21_000, 30_000_000),
        "maxFeePerGas": rng.randrange(1, 10**12),
        "maxPriorityFeePerGas": rng.randrange(0, 10**9),
    }
    assert is_plain_dynamic_fee(tx)
    expected = account.sign_transaction(tx)
    raw, tx_hash = sign_dynamic_fee(coincurve.PrivateKey(bytes(account.key)), tx)
    assert raw == bytes(expected.raw_transaction)
    assert tx_hash == bytes(expected.hash)
    assert not is_plain_dynamic_fee({**tx, "accessList": [], "type": 2}), "anything else goes to eth_account"
    assert not is_plain_dynamic_fee({k: v for k, v in tx.items() if k != "maxFeePerGas"} | {"gasPrice": 1})
