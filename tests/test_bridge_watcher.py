"""The chain watcher on a real anvil: confirmations, and a reorganisation below its cursor."""

from __future__ import annotations

from pathlib import Path

from eth_account import Account
from web3 import Web3

from bridge.heads import Header
from bridge.store import RequestStore
from bridge.watcher import ChainWatcher
from enclave.anvil import DEV_KEYS
from enclave.usage import send_request
from protocol.deployment import Deployment, send

CODE = b"export default async (input) => input.bytes;"


def ask(w3: Web3, deployment: Deployment, payload: bytes) -> None:
    echo, router = deployment.contract(w3, "EchoConsumer"), deployment.contract(w3, "AgentRouter")
    send_request(w3, Account.from_key(DEV_KEYS[0]), echo.functions.ask(1, payload, 100_000), router, 1, 100_000)


def test_watcher_waits_for_confirmations_and_survives_a_reorg(w3: Web3, deployment: Deployment, tmp_path: Path) -> None:
    router = deployment.contract(w3, "AgentRouter")
    if router.functions.agentCount().call() == 0:
        send(w3, Account.from_key(DEV_KEYS[0]), router.functions.registerAgent(CODE, 0, False))
    store = RequestStore(tmp_path / "bridge.sqlite")
    watcher = ChainWatcher(w3, router, store, deployment.start_block, confirmations=2)

    ask(w3, deployment, b"first")
    assert watcher.poll() == 0, "not yet confirmed"
    for _ in range(2):
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    assert watcher.poll() == 1
    cursor = store.cursor()
    assert cursor is not None
    assert cursor.last_block_hash is not None

    # The chain replaces its last blocks: the watcher notices and processes them again.
    w3.provider.make_request("anvil_reorg", [3, []])  # type: ignore[arg-type]
    assert watcher.poll() == 0
    assert watcher.reorgs == 1
    rewound = store.cursor()
    assert rewound is not None
    assert rewound.last_block_processed < cursor.last_block_processed
    ask(w3, deployment, b"after the reorg")
    for _ in range(2):
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    while watcher.poll():
        pass
    assert store.counts()["pending"] == 2, "the orphaned request stays on record; the new one is found"
    final = store.cursor()
    assert final is not None
    assert final.last_block_hash == "0x" + bytes(w3.eth.get_block(final.last_block_processed)["hash"]).hex()
    assert watcher.reorgs == 1
    watcher.close()
    store.close()


def _header(w3: Web3, number: int) -> Header:
    block = w3.eth.get_block(number)
    return Header(
        number=number,
        hash="0x" + bytes(block["hash"]).hex(),
        parent_hash="0x" + bytes(block["parentHash"]).hex(),
        timestamp=int(block["timestamp"]),
    )


def _caught_up(w3: Web3, deployment: Deployment, tmp_path: Path) -> tuple[RequestStore, ChainWatcher]:
    """A store and a watcher that has read the chain so far (an agent registered to ask)."""
    router = deployment.contract(w3, "AgentRouter")
    if router.functions.agentCount().call() == 0:
        send(w3, Account.from_key(DEV_KEYS[0]), router.functions.registerAgent(CODE, 0, False))
    store = RequestStore(tmp_path / "bridge.sqlite")
    watcher = ChainWatcher(w3, router, store, deployment.start_block)
    while watcher.poll():
        pass
    return store, watcher


def test_a_new_head_on_top_of_the_cursor_is_read_by_its_hash_and_any_other_goes_the_long_way(
    w3: Web3, deployment: Deployment, tmp_path: Path
) -> None:
    store, watcher = _caught_up(w3, deployment, tmp_path)
    earlier = store.counts()["pending"]
    ask(w3, deployment, b"on top")
    head = _header(w3, w3.eth.block_number)
    watcher.new_head(head)
    assert watcher.poll() == 1
    cursor = store.cursor()
    assert cursor is not None
    assert cursor.last_block_hash == head.hash

    # The chain replaces the block processed last: a head whose parent is not that block is no
    # proof of anything, so the watcher checks for the reorg itself.
    w3.provider.make_request("anvil_reorg", [1, []])  # type: ignore[arg-type]
    ask(w3, deployment, b"after the reorg")
    head = _header(w3, w3.eth.block_number)
    watcher.new_head(head)
    assert head.parent_hash != cursor.last_block_hash
    assert watcher.poll() == 0
    assert watcher.reorgs == 1
    while watcher.poll():
        pass
    assert store.counts()["pending"] == earlier + 2, "the orphaned request stays on record; the new one is found"
    watcher.close()
    store.close()


def test_every_block_pushed_since_the_last_turn_is_read_in_one(
    w3: Web3, deployment: Deployment, tmp_path: Path
) -> None:
    """Blocks pushed while the watcher was busy are all read at its next turn: one left over
    waited for a later block's push, or for the poll interval (~30-200 ms of a request's way)."""
    store, watcher = _caught_up(w3, deployment, tmp_path)
    cursor = store.cursor()
    assert cursor is not None
    first = cursor.last_block_processed + 1
    for payload in (b"one", b"two", b"three"):
        ask(w3, deployment, payload)
    last = w3.eth.block_number
    for number in range(first, last + 1):
        watcher.new_head(_header(w3, number))
    assert watcher.poll() == 3, "every pushed block in one turn"
    cursor = store.cursor()
    assert cursor is not None
    assert cursor.last_block_processed == last
    watcher.close()
    store.close()
