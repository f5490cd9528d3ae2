"""The host is untrusted: what a process beside the workers (a rogue bridge) cannot make them do.

Each test is an attack from docs/security.md: a worker runs only requests that the chain made,
on the input the request's id names, signs one answer per request, and never signs a failure of
its host (the RPC node going away mid-run) as the agent's fault.
"""

from __future__ import annotations

import json
import secrets
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import httpx
import pytest
from eth_account import Account
from web3 import Web3

from enclave.anvil import DEV_KEYS, Anvil
from enclave.stack import DEPLOYER_KEY, Stack
from enclave.usage import register, request_ids, send_asks, wait_for
from protocol.manifest import Manifest
from protocol.private_logs import owner_logs_key
from protocol.results import RequestCommitment, Status, batch_digest, recover_digest_signer
from protocol.wire import CommitmentModel, ExecuteResponse, SignatureModel, to_hex
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.chain

ECHO = "export default async function main(input) { return 'echo:' + input.text; }"


@pytest.fixture(scope="module")
def chain() -> Iterator[Anvil]:
    with Anvil(block_time=1.0) as running:
        yield running


@pytest.fixture(scope="module")
def rpc_proxy(chain: Anvil) -> Iterator[TcpProxy]:
    """The workers reach the chain through this proxy, so a test can take their RPC away."""
    with TcpProxy(int(chain.rpc_url.rsplit(":", 1)[1])) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def stack(chain: Anvil, rpc_proxy: TcpProxy, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    worker_env = {"ENCLAVE_WORKER_RPC_URL": rpc_proxy.url}
    with Stack(
        state_dir=tmp_path_factory.mktemp("trust"), rpc_url=chain.rpc_url, web_port=None, worker_env=worker_env
    ) as running:
        yield running


def _opened(stack: Stack, agent: int, payload: bytes) -> tuple[int, RequestCommitment]:
    """Makes a request and reads its fields from the chain, as an honest bridge would."""
    [request_id] = request_ids(stack, send_asks(stack, agent, [payload]))
    assert stack.deployment is not None
    router = stack.deployment.contract(stack.web3(), "AgentRouter")
    [log] = router.events.AgentRequested().get_logs(
        from_block=stack.deployment.start_block, argument_filters={"requestId": request_id}
    )
    return request_id, RequestCommitment.from_event(log["args"], log["blockNumber"])


def _execute(stack: Stack, commitment: RequestCommitment, input_: bytes, token: str | None = None) -> httpx.Response:
    body = {"commitment": CommitmentModel.of(commitment).model_dump(), "input": to_hex(input_)}
    token = stack.execute_token if token is None else token
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(f"{stack.services['worker-1'].url}/v1/execute", json=body, headers=headers, timeout=30)


@contextmanager
def _bridge_stopped(stack: Stack) -> Iterator[None]:
    """Keeps the honest bridge out of the way while a test plays the rogue one."""
    stack.services["bridge"].stop(signal.SIGKILL)
    try:
        yield
    finally:
        stack.start_bridge()


def test_a_process_without_the_bridge_token_gets_401(stack: Stack) -> None:
    agent = register(stack, ECHO)
    with _bridge_stopped(stack):
        _, commitment = _opened(stack, agent, b"honest")
        assert _execute(stack, commitment, b"honest", token="").status_code == 401
        assert _execute(stack, commitment, b"honest", token="guessed").status_code == 401
        batch = httpx.post(f"{stack.services['worker-1'].url}/v1/sign-batch", json={"results": []}, timeout=10)
        assert batch.status_code == 401


def test_the_bridge_cannot_choose_the_input_or_make_up_a_request(stack: Stack) -> None:
    agent = register(stack, ECHO)
    with _bridge_stopped(stack):
        request_id, commitment = _opened(stack, agent, b"honest")

        # The request's own fields with other input: the input does not hash to the id's.
        tampered = _execute(stack, commitment, b"TAMPERED BY BRIDGE")
        assert tampered.status_code == 409
        assert "input" in tampered.json()["detail"]
        assert "signature" not in tampered.json()

        # Fields rewritten to the other input's hash: a request the chain never made.
        rewritten = replace(commitment, input_hash=Web3.keccak(b"TAMPERED BY BRIDGE"))
        refused = _execute(stack, rewritten, b"TAMPERED BY BRIDGE")
        assert refused.status_code == 409
        assert "not open on-chain" in refused.json()["detail"]

        # A request predicted before it exists (the next nonce of the same block).
        predicted = _execute(stack, replace(commitment, nonce=commitment.nonce + 1), b"honest")
        assert predicted.status_code == 409

        # Another agent's id with this agent's code: no keys of the other agent are derived.
        victim = register(stack, "export default async (input, ctx) => JSON.stringify(ctx.secrets);")
        cross = _execute(stack, replace(commitment, agent_id=victim), b"honest")
        assert cross.status_code == 409
        assert "signature" not in cross.json()
    [(status, output)] = wait_for(stack, [request_id]).values()
    assert (status, json.loads(output)) == (Status.OK, "echo:honest")


def test_a_worker_co_signs_only_results_its_cluster_key_signed_unaltered(stack: Stack) -> None:
    agent = register(stack, ECHO)
    assert stack.deployment is not None
    chain_id, router = stack.deployment.chain_id, stack.deployment.addresses["AgentRouter"]
    headers = {"Authorization": f"Bearer {stack.execute_token}"}
    sign_batch_url = f"{stack.services['worker-2'].url}/v1/sign-batch"  # results of worker-1
    with _bridge_stopped(stack):
        answers = []
        for payload in (b"first", b"second"):
            _, commitment = _opened(stack, agent, payload)
            answer = _execute(stack, commitment, payload)
            assert answer.status_code == 200
            answers.append(answer.json())

        genuine = httpx.post(sign_batch_url, json={"results": answers}, headers=headers, timeout=10)
        assert genuine.status_code == 200
        signature = SignatureModel(**genuine.json()).to_signature()
        results = [ExecuteResponse(**a).signed_result().result for a in answers]
        digest = batch_digest(chain_id=chain_id, router=router, results=results, epoch=signature.epoch)
        assert (
            recover_digest_signer(digest, signature)
            == httpx.get(f"{stack.services['worker-2'].url}/v1/info", timeout=10).json()["signer"]
        )

        altered_output = [answers[0], {**answers[1], "output": to_hex(b"echo:forged")}]
        bad_key = {**answers[1]["signature"], "r": to_hex(secrets.token_bytes(32))}
        no_signature = {**answers[1]["signature"], "r": to_hex(bytes(32))}
        for forged in (
            altered_output,
            [answers[0], {**answers[1], "signature": bad_key}],
            [answers[0], {**answers[1], "signature": no_signature}],
        ):
            refused = httpx.post(sign_batch_url, json={"results": forged}, headers=headers, timeout=10)
            assert refused.status_code == 422, refused.text
            assert "is not signed by" in refused.json()["detail"]


def test_a_request_the_node_pushed_runs_without_asking_it_and_the_rest_are_asked(stack: Stack) -> None:
    """The worker follows the router's logs: a request it saw made is open without a round
    trip; one it never saw made (made up by the bridge) is asked of the node, and refused."""
    agent = register(stack, ECHO)
    with _bridge_stopped(stack):
        pushes = _router_logs_pushed(stack)
        _, commitment = _opened(stack, agent, b"pushed")
        # The push and the test's receipt race each other: the worker's is what this is about.
        deadline = time.monotonic() + 10
        while _router_logs_pushed(stack) == pushes and time.monotonic() < deadline:
            time.sleep(0.02)
        before = _open_checks(stack)
        assert _execute(stack, commitment, b"pushed").status_code == 200
        after = _open_checks(stack)
        assert (after["pushed"] - before["pushed"], after["asked"] - before["asked"]) == (1, 0)

        made_up = _execute(stack, replace(commitment, nonce=commitment.nonce + 7), b"pushed")
        assert made_up.status_code == 409
        assert "not open on-chain" in made_up.json()["detail"]
        assert _open_checks(stack)["asked"] - after["asked"] == 1


def _router_logs_pushed(stack: Stack) -> int:
    followed = httpx.get(f"{stack.services['worker-1'].url}/v1/info", timeout=10).json()["routerLogs"]
    assert followed["connected"]
    return int(followed["received"])


def _open_checks(stack: Stack) -> dict[str, float]:
    """worker-1's count of requests found open, by the node's pushes or by asking it."""
    text = httpx.get(f"{stack.services['worker-1'].url}/metrics", timeout=10).text
    counts = {"pushed": 0.0, "asked": 0.0}
    for line in text.splitlines():
        if line.startswith("enclave_open_checks_total{"):
            labels, value = line.rsplit(" ", 1)
            counts[labels.split('by="')[1].split('"')[0]] = float(value)
    return counts


def test_a_retry_gets_the_same_signed_answer_not_a_new_run(stack: Stack) -> None:
    agent = register(stack, "export default async () => String(Math.random());")
    with _bridge_stopped(stack):
        _, commitment = _opened(stack, agent, b"roll")
        first, second = _execute(stack, commitment, b"roll"), _execute(stack, commitment, b"roll")
        assert first.status_code == second.status_code == 200
        assert first.json()["output"] == second.json()["output"]
        assert first.json()["signature"] == second.json()["signature"]


def test_the_rpc_going_away_mid_run_is_retried_never_signed_as_the_agents_fault(
    stack: Stack, rpc_proxy: TcpProxy
) -> None:
    callee = register(stack, "export default async () => ({ msg: 'from the callee' });")
    caller = register(
        stack,
        f"""export default async (input, ctx) => {{
          const until = Date.now() + 2000;
          while (Date.now() < until) {{}}  // the RPC goes away while this runs
          const answer = await ctx.callAgent({callee}, "0x");
          return "caller got " + answer.msg;
        }};""",
    )
    [request_id] = request_ids(stack, send_asks(stack, caller, [b"go"]))
    bridge = stack.services["bridge"].url
    deadline = time.monotonic() + 30
    while httpx.get(f"{bridge}/v1/requests/{request_id}", timeout=5).json().get("state") != "dispatched":
        assert time.monotonic() < deadline, "the bridge never dispatched the request"
        time.sleep(0.05)
    # The fault, timed against the agent's two-second busy loop: the worker has checked the
    # request on-chain by now, and reaches for the chain again (callAgent) while it is cut. What
    # the test decides from is the transitions below, not these durations.
    time.sleep(0.5)
    rpc_proxy.cut()
    time.sleep(3)
    rpc_proxy.restore()

    [(status, output)] = wait_for(stack, [request_id]).values()
    assert (status, json.loads(output)) == (Status.OK, "caller got from the callee")
    transitions = httpx.get(f"{bridge}/v1/requests/{request_id}", timeout=5).json()["transitions"]
    details = " ".join(t["detail"] or "" for t in transitions)
    assert "503" in details, "a worker answered 'retry later'"
    assert "the run needed the chain" in details, "... because the chain went away mid-run"


def test_private_logs_reach_only_the_owner(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    from enclave import cli

    owner_logs = bytes(owner_logs_key(Account.from_key(DEPLOYER_KEY).key).public_key)
    manifest = Manifest(name="private", logs_key=owner_logs).to_line()
    agent = register(
        stack,
        manifest
        + '\nexport default async (input, ctx) => { ctx.log("LOG-LINE-7731"); throw new Error("DETAIL-9913"); };',
    )
    [request_id] = request_ids(stack, send_asks(stack, agent, [b"x"]))
    [(status, output)] = wait_for(stack, [request_id]).values()
    assert status == Status.AGENT_ERROR
    assert b"DETAIL-9913" not in output, "the on-chain output names the status, not the detail"

    detail = httpx.get(f"{stack.services['bridge'].url}/v1/requests/{request_id}", timeout=5).json()
    assert detail["sealedLogs"]
    assert detail["error"] is None
    assert json.loads(detail["logs"] or "[]") == []
    stored = b"".join(p.read_bytes() for p in stack.state_dir.glob("bridge.sqlite*"))
    assert b"LOG-LINE-7731" not in stored
    assert b"DETAIL-9913" not in stored

    state = ["--state-dir", str(stack.state_dir)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ENCLAVE_OWNER_KEY", DEV_KEYS[5])
        assert cli.main(["agent", "logs", hex(request_id), *state]) == 1
        assert "sealed to another key" in capsys.readouterr().out
        patch.setenv("ENCLAVE_OWNER_KEY", DEPLOYER_KEY)
        assert cli.main(["agent", "logs", hex(request_id), *state]) == 0
    printed = capsys.readouterr().out
    assert "LOG-LINE-7731" in printed
    assert "DETAIL-9913" in printed
