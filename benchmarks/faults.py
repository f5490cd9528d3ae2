"""Delivery under faults: what one slow agent and one stopped worker cost the other requests.

    .venv/bin/python benchmarks/faults.py [scenario ...]

Starts anvil, a gatekeeper, two workers and the bridge as separate processes (as
benchmarks/delivery.py does) with an agent that runs 4 s when its input starts with "slow", and
times requests from their `AgentRequested` log to their `RequestFulfilled` log as the node
pushes them (benchmarks/load.py):

  slow     one slow request made in the same transaction as 15 quick ones (one block, so one
           batch to one worker): how long the quick ones wait
  hung     200 requests at once, one worker SIGSTOPped 0.3 s later and left stopped: how long the
           requests it had taken are held, and whether the rest still go out co-signed
  stopped  8 requests a second for 30 s, one worker SIGSTOPped for the middle 15: the latency of
           the requests made while it is stopped, beside those made before

At the end every request is checked against the chain's logs: each fulfilled exactly once.
"""

from __future__ import annotations

import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from load import Load, Stopwatch
from web3.contract import Contract

from bridge.stats import percentile as maybe_percentile
from enclave.stack import Stack
from enclave.usage import register

AGENT = """export default async (input, ctx) => {
  if ((input.text || "").startsWith("slow")) { const until = Date.now() + 4000; while (Date.now() < until) {} }
  return ctx.hash.keccak256(input.bytes);
};"""
SCENARIOS = ("slow", "hung", "stopped")


def main(chosen: list[str]) -> None:
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"unknown scenario(s) {sorted(unknown)}; choose from {', '.join(SCENARIOS)}")
    print("2 workers, 1 gatekeeper, anvil automine; the agent's wall-time limit is the default 10 s; times in s")
    with tempfile.TemporaryDirectory() as tmp, Stack(state_dir=Path(tmp) / "state", workers=2, web_port=None) as stack:
        agent = register(stack, AGENT)
        with Stopwatch(stack) as watch:
            load = Load(stack, agent)
            load.send(load.signed(2))  # a warm stack: the first request of each worker is slower
            watch.wait_fulfilled(2, 60)
            for scenario in chosen or SCENARIOS:
                RUNS[scenario](stack, load, watch)
            _exactly_once(stack, set(watch.seen.requested))


def slow(stack: Stack, load: Load, watch: Stopwatch) -> None:
    before = set(watch.seen.requested)
    load.send(load.signed_inputs([b"slow", *(b"quick %d" % i for i in range(15))]))
    watch.wait_fulfilled(len(before) + 16, 60)
    ids = set(watch.seen.requested) - before
    latency = _latencies(watch, ids)
    [slow_id] = [i for i in ids if latency[i] == max(latency.values())]
    quick = [latency[i] for i in ids if i != slow_id]
    print(
        f"slow     1 request of 4 s and 15 quick ones in one transaction: the quick ones p50 "
        f"{percentile(quick, 0.5):.2f}, max {max(quick):.2f}; the slow one {latency[slow_id]:.2f}; "
        f"{len({watch.seen.fulfil_tx[i] for i in ids})} fulfil transactions"
    )


def hung(stack: Stack, load: Load, watch: Stopwatch) -> None:
    before = set(watch.seen.requested)
    signed = [load.signed(50) for _ in range(4)]
    worker = stack.services["worker-1"].process
    for raw in signed:
        load.send(raw)
    time.sleep(0.3)
    worker.send_signal(signal.SIGSTOP)
    try:
        watch.wait_fulfilled(len(before) + 200, 300)
    finally:
        worker.send_signal(signal.SIGCONT)
    ids = set(watch.seen.requested) - before
    latency = list(_latencies(watch, ids).values())
    kinds = _fulfil_kinds(stack, {watch.seen.fulfil_tx[i] for i in ids})
    print(
        f"hung     200 at once, a worker stopped 0.3 s in: p50 {percentile(latency, 0.5):.2f}, p90 "
        f"{percentile(latency, 0.9):.2f}, max {max(latency):.2f}; {sum(1 for x in latency if x > 3)} held over "
        f"3 s; fulfil transactions {dict(kinds)}"
    )
    time.sleep(5)  # the stopped worker probed back in before the next scenario


def stopped(stack: Stack, load: Load, watch: Stopwatch, rate: int = 8, seconds: float = 30.0) -> None:
    made: dict[str, set[int]] = {"before": set(), "stopped": set(), "after": set()}
    phase = ["before"]
    done = threading.Event()

    def steady() -> None:
        period, next_at = 2 / rate, time.monotonic()
        while not done.is_set():
            known = set(watch.seen.requested)
            load.send(load.signed(2))
            next_at += period
            done.wait(max(0.0, next_at - time.monotonic()))
            made[phase[0]].update(set(watch.seen.requested) - known)

    worker = stack.services["worker-1"].process  # the one asked first, to run and to co-sign
    sender = threading.Thread(target=steady, daemon=True)
    sender.start()
    time.sleep(seconds / 4)
    worker.send_signal(signal.SIGSTOP)
    phase[0] = "stopped"
    time.sleep(seconds / 2)
    worker.send_signal(signal.SIGCONT)
    phase[0] = "after"
    time.sleep(seconds / 4)
    done.set()
    sender.join()
    watch.wait_fulfilled(len(watch.seen.requested), 120)
    figures = []
    for name, ids in made.items():
        latency = list(_latencies(watch, ids).values())
        figures.append(
            f"{name} p50 {percentile(latency, 0.5):.2f}, p95 {percentile(latency, 0.95):.2f}, max {max(latency):.2f}"
        )
    print(f"stopped  {rate}/s, a worker stopped for {seconds / 2:.0f} s: " + "; ".join(figures))


def percentile(values: list[float], q: float) -> float:
    return maybe_percentile(values, q) or float("nan")


def _router(stack: Stack) -> Contract:
    if stack.deployment is None:
        raise SystemExit("the stack has no deployment")
    return stack.deployment.contract(stack.web3(), "AgentRouter")


def _latencies(watch: Stopwatch, ids: set[int]) -> dict[int, float]:
    return {i: watch.seen.fulfilled[i] - watch.seen.requested[i] for i in ids if i in watch.seen.fulfilled}


def _fulfil_kinds(stack: Stack, tx_hashes: set[str]) -> Counter[str]:
    """How many fulfil transactions went out co-signed (`fulfillBatch`) and how many with each
    result's own signature (`fulfill`, when no worker co-signed in time)."""
    router, w3 = _router(stack), stack.web3()
    return Counter(
        router.get_function_by_selector(bytes(w3.eth.get_transaction(h)["input"])[:4]).fn_name  # type: ignore[arg-type]
        for h in tx_hashes
    )


def _exactly_once(stack: Stack, ids: set[int]) -> None:
    router = _router(stack)
    start = stack.deployment.start_block if stack.deployment else 0
    logs = router.events.RequestFulfilled().get_logs(from_block=start)
    times = Counter(int(entry["args"]["requestId"]) for entry in logs)
    missing, twice = [i for i in ids if times[i] == 0], [i for i in ids if times[i] > 1]
    print(
        f"chain    {len(ids)} requests: {len(ids) - len(missing)} fulfilled, {len(twice)} twice, {len(missing)} never"
    )
    if missing or twice:
        raise SystemExit("a request was not fulfilled exactly once")


RUNS: dict[str, Callable[[Stack, Load, Stopwatch], None]] = {"slow": slow, "hung": hung, "stopped": stopped}

if __name__ == "__main__":
    main(sys.argv[1:])
