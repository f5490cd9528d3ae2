"""Request-to-callback latency and throughput of the whole local stack, beside the chain's floor.

    .venv/bin/python benchmarks/delivery.py [scenario ...]

Starts anvil, a gatekeeper, two workers and the bridge as separate processes (no dashboard) and
runs each scenario against them, timing every request from its `AgentRequested` log to its
`RequestFulfilled` log as the node pushes them to one stopwatch (benchmarks/load.py):

  floor    two plain transactions sent and mined back to back: the least a request and its
           callback can take on this chain, measured the same way (pushed blocks)
  idle     100 requests, one at a time
  rate50   50 requests per second for 10 s
  rate200  200 requests per second for 10 s, with the CPU each process spent per request
  burst    1,000 requests at once: time to drain them, results per fulfil transaction
  blocks   a chain that mines a block a second (no automine): callbacks in blocks after the request

Then bytes per request: the bridge's SQLite file after every scenario, over the requests in it.
Seconds move with the machine; read them beside the floor, measured in the same run.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from eth_account import Account
from load import CpuClock, Load, Rpc, Stopwatch, Subscription

from bridge.stats import first_transitions
from bridge.stats import percentile as maybe_percentile
from bridge.store import RequestStore
from enclave.anvil import DEV_KEYS
from enclave.stack import Stack
from enclave.usage import register

AGENT = "export default async (input, ctx) => ctx.hash.keccak256(input.bytes);"
SCENARIOS = ("floor", "idle", "rate50", "rate200", "burst", "blocks")
# A funded dev account that no service of the stack uses (a test account).
FLOOR_KEY = DEV_KEYS[3]
# Between a floor sample and the request after it: the bridge reads the floor's blocks first.
SETTLE_S = 0.01


def main(chosen: list[str]) -> None:
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"unknown scenario(s) {sorted(unknown)}; choose from {', '.join(SCENARIOS)}")
    chosen = chosen or list(SCENARIOS)
    print("2 workers, 1 gatekeeper, confirmations 0, anvil automine unless said; times in ms")
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"
        floor_ms = None
        automine = [s for s in chosen if s != "blocks"]
        if automine:
            with Stack(state_dir=state, workers=2, web_port=None) as stack:
                agent = register(stack, AGENT)
                with Stopwatch(stack) as watch:
                    load = Load(stack, agent)
                    for scenario in automine:
                        if scenario == "floor":
                            floor_ms = floor(stack)
                        else:
                            RUNS[scenario](stack, load, watch, floor_ms)
            _bytes_per_request(state / "bridge.sqlite")
        if "blocks" in chosen:
            blocks(Path(tmp) / "blocks")


class Floor:
    """Two plain transfers back to back, timed as the stopwatch times requests: from the node's
    push of the first one's block to its push of the second's, the second sent on that push."""

    def __init__(self, stack: Stack) -> None:
        if stack.rpc_url is None:
            raise SystemExit("the stack has no chain")
        self.rpc, self.account = Rpc(stack.rpc_url), Account.from_key(FLOOR_KEY)
        self.nonce = int(self.rpc("eth_getTransactionCount", self.account.address, "pending"), 16)
        self.chain_id, self.gas_price = int(self.rpc("eth_chainId"), 16), int(self.rpc("eth_gasPrice"), 16)
        self.heads = Subscription(stack.rpc_url, ["newHeads"])

    def __enter__(self) -> Floor:
        return self

    def __exit__(self, *_: object) -> None:
        self.heads.close()

    def sample(self) -> float:
        while self.heads.next(timeout_s=0) is not None:
            pass  # the blocks of what ran since the last sample: a sample waits for its own
        first = self._mined()
        return (self._mined() - first) * 1000

    def _mined(self) -> float:
        tx = {"to": self.account.address, "value": 1, "gas": 21_000, "gasPrice": 10 * self.gas_price}
        signed = self.account.sign_transaction({**tx, "nonce": self.nonce, "chainId": self.chain_id})
        self.nonce += 1
        self.rpc("eth_sendRawTransaction", "0x" + bytes(signed.raw_transaction).hex())
        if self.heads.next(timeout_s=10) is None:
            raise SystemExit("no block within 10 s of a transfer")
        return time.time()


def floor(stack: Stack, samples: int = 50) -> float:
    with Floor(stack) as chain:
        figures = [chain.sample() for _ in range(samples)]
    value = percentile(figures, 0.5)
    print(f"floor    two transactions back to back: p50 {value:.1f}, p95 {percentile(figures, 0.95):.1f}")
    return value


def idle(stack: Stack, load: Load, watch: Stopwatch, floor_ms: float | None, count: int = 100) -> None:
    """One request at a time, each after a floor sample: the floor moves with the machine's
    moods from run to run, so the ratio is taken of figures measured side by side."""
    ids_before = set(watch.seen.fulfilled)
    cpu = CpuClock(stack)
    floors = []
    with Floor(stack) as chain:
        for _ in range(count):
            floors.append(chain.sample())
            time.sleep(SETTLE_S)  # the floor's blocks read by the bridge before the request's
            expected = len(watch.seen.fulfilled) + 1
            load.send(load.signed(1))
            watch.wait_fulfilled(expected, timeout_s=60)
    used = cpu.used()
    ids = set(watch.seen.fulfilled) - ids_before
    latencies = _latencies(watch, ids)
    p50, beside = percentile(latencies, 0.5), percentile(floors, 0.5)
    print(
        f"idle     {count} one at a time: p50 {p50:.1f} = {p50 / beside:.1f}x the floor measured between them "
        f"(p50 {beside:.1f}; target <= 3x), p95 {percentile(latencies, 0.95):.1f}"
    )
    _print_stages(stack, watch, ids)
    # One request at a time, each process's CPU is on some request's way: the next one's, if
    # not its own (what the bridge does with a fulfilment's receipt overlaps the next request).
    # The floor's transfers are counted too: in anvil, in the bridge (their blocks) and here.
    _print_cpu(used, count)


def rate(per_second: int, seconds: float = 10.0) -> Callable[[Stack, Load, Stopwatch, float | None], None]:
    def run(stack: Stack, load: Load, watch: Stopwatch, floor_ms: float | None) -> None:
        per_tx = max(1, per_second // 20)  # twenty transactions a second
        ticks = int(seconds * per_second / per_tx)
        signed = [load.signed(per_tx) for _ in range(ticks)]
        before, expected = set(watch.seen.fulfilled), len(watch.seen.fulfilled) + ticks * per_tx
        cpu = CpuClock(stack)
        started = time.monotonic()
        late = 0.0
        for tick, raw in enumerate(signed):
            due = started + tick * per_tx / per_second
            late = max(late, time.monotonic() - due)
            time.sleep(max(0.0, due - time.monotonic()))
            load.send(raw)
        sending = time.monotonic() - started
        watch.wait_fulfilled(expected)
        ids = set(watch.seen.fulfilled) - before
        latencies = _latencies(watch, ids)
        span = max(watch.seen.fulfilled[i] for i in ids) - min(watch.seen.requested[i] for i in ids)
        print(
            f"rate{per_second:<4} {len(ids)} requests sent at {len(ids) / sending:.0f}/s (generator at most "
            f"{late * 1000:.0f} ms late), delivered at {len(ids) / span:.0f}/s: p50 "
            f"{percentile(latencies, 0.5):.1f}, p95 {percentile(latencies, 0.95):.1f}, "
            f"{len(ids) / len({watch.seen.fulfil_tx[i] for i in ids}):.1f} results per fulfil tx"
        )
        _print_stages(stack, watch, ids)
        if per_second >= 200:
            _print_cpu(cpu.used(), len(ids))

    return run


def burst(stack: Stack, load: Load, watch: Stopwatch, floor_ms: float | None, count: int = 1000) -> None:
    signed = [load.signed(50) for _ in range(count // 50)]
    before, expected = set(watch.seen.fulfilled), len(watch.seen.fulfilled) + count
    for raw in signed:
        load.send(raw)
    watch.wait_fulfilled(expected)
    ids = set(watch.seen.fulfilled) - before
    drained = max(watch.seen.fulfilled[i] for i in ids) - min(watch.seen.requested[i] for i in ids)
    per_tx = len(ids) / len({watch.seen.fulfil_tx[i] for i in ids})
    print(
        f"burst    {count} at once: drained in {drained:.2f} s (target <= 5 s), "
        f"{per_tx:.1f} results per fulfil tx (target >= 40)"
    )


def blocks(state: Path, count: int = 100) -> None:
    with Stack(state_dir=state, workers=2, web_port=None, block_time=1.0, automine=False) as stack:
        agent = register(stack, AGENT)
        with Stopwatch(stack) as watch:
            load = Load(stack, agent)
            for _ in range(count // 5):
                load.send(load.signed(5))
                time.sleep(0.5)
            watch.wait_fulfilled(count)
            ids = list(watch.seen.fulfilled)
            after = [float(watch.seen.fulfilled_block[i] - watch.seen.requested_block[i]) for i in ids]
            print(
                f"blocks   {count} on 1 s blocks: callback p50 {percentile(after, 0.5):.0f}, "
                f"p95 {percentile(after, 0.95):.0f} blocks after the request's (target p95 <= 2)"
            )


def _print_cpu(used: dict[str, float], requests: int) -> None:
    ranked = sorted(used.items(), key=lambda item: -item[1])
    shares = ", ".join(f"{name} {seconds * 1000 / requests:.2f}" for name, seconds in ranked)
    print(f"         CPU ms per request: {shares} (total {sum(used.values()) * 1000 / requests:.2f})")


def _print_stages(stack: Stack, watch: Stopwatch, ids: set[int]) -> None:
    """Where the time went, from the bridge's timestamps and the worker's own figures:
    detect (request mined to stored), dispatch (to a worker), execute and sign (in the worker),
    worker (the rest of its round trip), submit (to the fulfil transaction sent), mined."""
    store = RequestStore(stack.state_dir / "bridge.sqlite", readonly=True)
    try:
        firsts = {int(r): t for r, t in first_transitions(store, since=0).items() if int(r) in ids}
        stats = {int(r): json.loads(s) for r, s in store.query("SELECT request_id, stats FROM requests")}
    finally:
        store.close()
    stages: dict[str, list[float]] = {}
    for request_id, t in firsts.items():
        own = stats[request_id]
        worker = (t["executed"] - t["dispatched"]) * 1000
        for name, value in (
            ("detect", (t["pending"] - watch.seen.requested[request_id]) * 1000),
            ("dispatch", (t["dispatched"] - t["pending"]) * 1000),
            ("execute", own["elapsedMs"]),
            ("sign", own["signMs"]),
            ("worker", worker - own["elapsedMs"] - own["signMs"]),
            ("submit", (t["submitted"] - t["executed"]) * 1000),
            ("mined", (watch.seen.fulfilled[request_id] - t["submitted"]) * 1000),
        ):
            stages.setdefault(name, []).append(value)
    print(
        "         stages p50/p95: "
        + ", ".join(f"{name} {percentile(v, 0.5):.1f}/{percentile(v, 0.95):.1f}" for name, v in stages.items())
    )


def percentile(values: list[float], q: float) -> float:
    return maybe_percentile(values, q) or float("nan")


def _latencies(watch: Stopwatch, ids: set[int]) -> list[float]:
    return [(watch.seen.fulfilled[i] - watch.seen.requested[i]) * 1000 for i in ids if i in watch.seen.requested]


def _bytes_per_request(database: Path) -> None:
    with sqlite3.connect(database) as db:
        requests = db.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = database.stat().st_size
    print(
        f"store    bridge.sqlite {size / 1e6:.1f} MB for {requests} requests: {size / max(requests, 1):.0f} bytes each"
    )


RUNS: dict[str, Callable[[Stack, Load, Stopwatch, float | None], None]] = {
    "idle": idle,
    "rate50": rate(50),
    "rate200": rate(200),
    "burst": burst,
}

if __name__ == "__main__":
    main(sys.argv[1:])
