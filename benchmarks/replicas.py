"""Throughput of one bridge against three replicas sharing a PostgreSQL store, in the same run.

    .venv/bin/python benchmarks/replicas.py [requests]

For each setup it starts a whole local stack (anvil, a gatekeeper, two workers, the bridges; no
dashboard), sends `requests` (default 1,000) at once as `EchoConsumer.askMany` transactions, and
times them from the first `AgentRequested` log to the last `RequestFulfilled` log as one
stopwatch sees them (benchmarks/load.py). Setups: one bridge on SQLite (the default), one on
PostgreSQL, three replicas on PostgreSQL. On a machine of few cores the processes share them:
read the ratios, and the CPU each process spent per request.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from load import CpuClock, Load, Stopwatch

from enclave.stack import Stack
from enclave.usage import register

AGENT = "export default async (input, ctx) => ctx.hash.keccak256(input.bytes);"
SETUPS = (
    ("1 bridge, SQLite", "sqlite", 1),
    ("1 bridge, PostgreSQL", "postgresql", 1),
    ("3 replicas, PostgreSQL", "postgresql", 3),
)


def run(state: Path, store: str, replicas: int, count: int) -> tuple[float, float, dict[str, float]]:
    """Seconds to drain `count` requests, results per fulfil transaction, CPU ms per request."""
    with Stack(state_dir=state, workers=2, web_port=None, store=store, replicas=replicas) as stack:
        agent = register(stack, AGENT)
        with Stopwatch(stack) as watch:
            load = Load(stack, agent)
            signed = [load.signed(50) for _ in range(count // 50)]
            clock = CpuClock(stack)
            for raw in signed:
                load.send(raw)
            watch.wait_fulfilled(count, timeout_s=600)
            used = clock.used()
        ids = set(watch.seen.fulfilled)
        drained = max(watch.seen.fulfilled.values()) - min(watch.seen.requested[i] for i in ids)
        per_tx = len(ids) / len(set(watch.seen.fulfil_tx.values()))
        return drained, per_tx, {name: seconds * 1000 / count for name, seconds in used.items()}


def main(count: int) -> None:
    print(f"{count} requests at once; 2 workers, 1 gatekeeper, anvil automine")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        # PostgreSQL runs as its own user when this runs as root: it must reach the state folder.
        Path(tmp).chmod(0o755)
        for index, (label, store, replicas) in enumerate(SETUPS):
            drained, per_tx, cpu = run(Path(tmp) / f"state-{index}", store, replicas, count)
            results[label] = drained
            top = ", ".join(f"{name} {ms:.2f}" for name, ms in sorted(cpu.items(), key=lambda kv: -kv[1])[:6])
            print(f"{label:24} drained in {drained:6.2f} s = {count / drained:6.1f} requests/s, "
                  f"{per_tx:5.1f} results per fulfil tx; CPU ms per request: {top}")  # fmt: skip
    one = results[SETUPS[1][0]]
    three = results[SETUPS[2][0]]
    print(f"3 replicas / 1 bridge on PostgreSQL: {one / three:.2f}x the throughput")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
