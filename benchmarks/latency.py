"""Request-to-callback latency and throughput of the whole local stack, stage by stage.

Starts anvil, a gatekeeper, two workers and the bridge, sends N requests from EchoConsumer in
bursts, and watches for each callback. Run: `.venv/bin/python benchmarks/latency.py [N]`.

Stages, from the bridge's SQLite timestamps and the worker's own figures:
  detect    the request's receipt (client) -> the bridge has it stored as pending
  dispatch  pending -> handed to a worker
  execute   the agent's run inside the sandbox (worker-measured)
  sign      the EIP-712 signature (worker-measured)
  worker    the rest of the worker round trip: HTTP, code lookup, sandbox pipe
  submit    executed -> fulfil transaction sent (batching happens here)
  mined     fulfil transaction sent -> receipt read by the bridge
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from bridge.stats import first_transitions, percentile
from bridge.store import RequestStore
from enclave.stack import Stack
from enclave.usage import register, request_ids, results, send_asks

BURST = 20


def main(count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, Stack(state_dir=Path(tmp) / "state", workers=2) as stack:
        agent = register(stack, "export default async (input, ctx) => ctx.hash.keccak256(input.bytes);")
        mined_at: dict[int, float] = {}
        callback_at: dict[int, float] = {}
        started = time.time()
        for first in range(0, count, BURST):
            payloads = [f"bench-{i}".encode() for i in range(first, min(first + BURST, count))]
            ids = request_ids(stack, send_asks(stack, agent, payloads))
            now = time.time()
            mined_at.update(dict.fromkeys(ids, now))
            _collect(stack, callback_at)
        while len(callback_at) < count:
            _collect(stack, callback_at)
            time.sleep(0.02)
            if time.time() - started > 600:
                raise SystemExit("callbacks did not all arrive within 10 minutes")
        finished = max(callback_at.values())

        stages = _stages(stack.state_dir / "bridge.sqlite", mined_at)
        latencies = [(callback_at[i] - mined_at[i]) * 1000 for i in mined_at]
        print(f"{count} requests in bursts of {BURST}, 2 workers, anvil automine, confirmations 0")
        print(f"throughput: {count / (finished - started):.1f} requests/s (first send to last callback)")
        print(f"{'stage':24} {'p50 ms':>9} {'p95 ms':>9}")
        print(f"{'request -> callback':24} {percentile(latencies, 0.5):9.1f} {percentile(latencies, 0.95):9.1f}")
        for name, values in stages.items():
            print(f"{'  ' + name:24} {percentile(values, 0.5):9.1f} {percentile(values, 0.95):9.1f}")


def _collect(stack: Stack, callback_at: dict[int, float]) -> None:
    now = time.time()
    for request_id in results(stack):
        callback_at.setdefault(request_id, now)


def _stages(database: Path, mined_at: dict[int, float]) -> dict[str, list[float]]:
    store = RequestStore(database, readonly=True)
    first = {int(r): states for r, states in first_transitions(store, since=0).items()}
    stats = {int(r): json.loads(s) for r, s in store.query("SELECT request_id, stats FROM requests")}
    store.close()
    out: dict[str, list[float]] = {
        k: [] for k in ("detect", "dispatch", "execute", "sign", "worker", "submit", "mined")
    }
    for request_id, t in first.items():
        if request_id not in mined_at or "fulfilled" not in t:
            continue
        worker_ms = (t["executed"] - t["dispatched"]) * 1000
        own = stats[request_id]
        out["detect"].append(max(0.0, (t["pending"] - mined_at[request_id]) * 1000))
        out["dispatch"].append((t["dispatched"] - t["pending"]) * 1000)
        out["execute"].append(own["elapsedMs"])
        out["sign"].append(own["signMs"])
        out["worker"].append(worker_ms - own["elapsedMs"] - own["signMs"])
        out["submit"].append((t["submitted"] - t["executed"]) * 1000)
        out["mined"].append((t["fulfilled"] - t["submitted"]) * 1000)
    return out


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
