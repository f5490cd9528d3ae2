"""The dashboard in a real browser (Debian's Chromium through Playwright) against a live stack."""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from enclave.stack import Stack
from enclave.usage import ask_many, register, wait_for
from protocol.deployment import PROJECT_ROOT
from tests.state import fresh_state_dir

pytestmark = pytest.mark.chain

SCREENSHOTS = PROJECT_ROOT / "test-artifacts" / "screenshots"
# As the machine's probe found: without these, Chromium keeps trying to reach the network.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(path):
        message = "Debian's chromium is not installed (scripts/setup.sh --browser installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """A stack that has answered one request already, so that no test depends on another's."""
    with Stack(state_dir=fresh_state_dir("browser"), workers=2) as running:
        agent = register(running, PROJECT_ROOT / "examples" / "agents" / "hello.js")
        wait_for(running, ask_many(running, agent, [b"fixture"]))
        yield running


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Browser]:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


def login(page: Page, stack: Stack) -> None:
    page.goto(f"{stack.url('web')}/login")
    page.get_by_label("Admin token").fill(stack.admin_token)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def test_overview_loads(page: Page, stack: Stack) -> None:
    page.goto(stack.url("web"))
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.locator("[data-state=fulfilled]")).to_be_visible()
    expect(page.get_by_role("img", name="Requests fulfilled per minute")).to_be_visible()
    page.screenshot(path=SCREENSHOTS / "overview.png", full_page=True)


def test_try_it_request_reaches_fulfilled_without_a_reload(page: Page, stack: Stack) -> None:
    agent = register(stack, PROJECT_ROOT / "examples" / "agents" / "hello.js")
    login(page, stack)
    page.goto(f"{stack.url('web')}/agents/{agent}")
    page.get_by_label("Input (text, or 0x hex)").fill("browser")
    page.get_by_role("button", name="Send a request").click()
    page.wait_for_url("**/requests/0x*")
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads
    expect(page.locator("#request-state")).to_have_text("fulfilled", timeout=60_000)
    expect(page.locator("#request-output")).to_contain_text("Hello, browser!")
    assert page.evaluate("window.__sameDocument === true"), "htmx updated the page in place"
    page.screenshot(path=SCREENSHOTS / "request-fulfilled.png", full_page=True)


def test_pausing_an_agent_shows_it_paused_and_the_chain_agrees(page: Page, stack: Stack) -> None:
    assert stack.deployment is not None
    agent = register(stack, "export default async () => 1;")
    login(page, stack)
    page.goto(f"{stack.url('web')}/agents/{agent}")
    page.get_by_role("button", name="Pause").click()
    expect(page.locator("#agent-state")).to_have_text("paused")
    router = stack.deployment.contract(stack.web3(), "AgentRouter")
    assert router.functions.getAgent(agent).call()[3] is True
    page.screenshot(path=SCREENSHOTS / "agent-paused.png", full_page=True)
    page.get_by_role("button", name="Unpause").click()
    expect(page.locator("#agent-state")).to_have_text("active")
    assert router.functions.getAgent(agent).call()[3] is False


def test_killed_worker_shows_unhealthy(page: Page, stack: Stack) -> None:
    page.goto(f"{stack.url('web')}/workers")
    row = page.locator("tr[data-service=worker-2]")
    expect(row.locator(".healthy")).to_be_visible()
    page.evaluate("window.__sameDocument = true")
    stack.services["worker-2"].stop(signal.SIGKILL)
    expect(row.locator(".unhealthy")).to_be_visible(timeout=30_000)
    assert page.evaluate("window.__sameDocument === true")
    expect(page.locator("tr[data-service=worker-1] .healthy")).to_be_visible()
    page.screenshot(path=SCREENSHOTS / "worker-unhealthy.png", full_page=True)


def test_pages_read_without_javascript(browser: Browser, stack: Stack) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    for path, heading in (("/", "Overview"), ("/requests", "Requests"), ("/agents", "Agents"), ("/keys", "Key epochs")):
        page.goto(stack.url("web") + path)
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    page.goto(stack.url("web") + "/requests?state=fulfilled")
    expect(page.locator("#requests-table")).to_contain_text("fulfilled")
    context.close()


def test_metrics_agree_with_the_overview(stack: Stack) -> None:
    import httpx

    agent = register(stack, "export default async () => 'counted';")
    [request_id] = ask_many(stack, agent, [b""])
    wait_for(stack, [request_id])
    served_by = _bridge_state(stack, request_id, "fulfilled")["worker"]
    overview = httpx.get(f"{stack.url('web')}/api/overview", timeout=10).json()
    bridge = httpx.get(f"{stack.url('bridge')}/metrics", timeout=10).text
    fulfilled = overview["counts"]["fulfilled"]
    assert fulfilled > 0
    assert f'enclave_requests{{state="fulfilled"}} {float(fulfilled)}' in bridge
    total = _sample(bridge, "enclave_request_stage_seconds_count", stage="total")
    assert total is not None, "the delivery was observed"
    assert total >= 1, "the delivery was observed"
    assert _sample(bridge, "enclave_request_stage_seconds_bucket", stage="total", le="+Inf") == total
    assert "enclave_fulfil_gas_used_count" in bridge
    assert "enclave_key_epoch 1.0" in bridge
    worker = httpx.get(f"{stack.url(served_by)}/metrics", timeout=10).text
    assert 'enclave_executions_total{status="OK"}' in worker
    assert 'enclave_key_epoch{chain_id="31337"} 1.0' in worker
    gatekeeper = httpx.get(f"{stack.url('gatekeeper')}/metrics", timeout=10).text
    assert "enclave_workers_provisioned_total 2.0" in gatekeeper


def _bridge_state(stack: Stack, request_id: int, state: str, timeout: float = 30) -> dict[str, Any]:
    """The bridge's record of a request once it reached `state` (polled, with a deadline)."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        record: dict[str, Any] = httpx.get(f"{stack.url('bridge')}/v1/requests/{request_id}", timeout=5).json()
        if record.get("state") == state:
            return record
        assert time.monotonic() < deadline, f"request still {record.get('state')}, not {state}"
        time.sleep(0.1)


def _sample(text: str, name: str, **labels: str) -> float | None:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


def _open_answered_request(page: Page, stack: Stack, code: str) -> None:
    """Registers `code`, has it answer one request on-chain, and opens that request's page."""
    [request_id] = ask_many(stack, register(stack, code), [b"Paris"])
    wait_for(stack, [request_id])
    _bridge_state(stack, request_id, "fulfilled")
    page.goto(f"{stack.url('web')}/requests/0x{request_id:064x}")


def test_a_failed_run_reads_as_a_failure_everywhere(page: Page, stack: Stack) -> None:
    _open_answered_request(page, stack, 'export default async () => { throw new Error("no weather today"); };')
    expect(page.locator("#request-state .state-delivered-error")).to_have_text("fulfilled · AGENT_ERROR")
    expect(page.locator("#request-status")).to_have_class("status status-bad")
    expect(page.locator("#request-stats")).to_contain_text("run time")
    page.screenshot(path=SCREENSHOTS / "request-delivered-with-an-error.png", full_page=True)
    page.goto(stack.url("web"))
    failed_last_minute = page.locator("#overview table tbody tr").first.locator("td").nth(4)
    assert int(failed_last_minute.inner_text()) >= 1, "the failed count agrees with the failures listed"
    expect(page.locator("#overview")).to_contain_text("no weather today")


def test_an_id_nobody_made_says_so_and_stops(page: Page, stack: Stack) -> None:
    response = page.goto(f"{stack.url('web')}/requests/0x99")
    assert response is not None
    assert response.status == 404
    expect(page.locator("h1")).to_have_text("Not found")
    assert page.locator("[hx-trigger]").count() == 0, "nothing polls for it"
    page.screenshot(path=SCREENSHOTS / "request-unknown.png", full_page=True)


def test_readable_on_a_phone(browser: Browser, stack: Stack) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844})
    phone = context.new_page()
    try:
        for path, name in (
            ("/", "overview"),
            ("/requests", "requests"),
            ("/agents", "agents"),
            ("/workers", "workers"),
        ):
            phone.goto(stack.url("web") + path)
            overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{path} is {overflow} px wider than a 390 px screen"
            phone.screenshot(path=SCREENSHOTS / f"phone-{name}.png", full_page=True)
    finally:
        context.close()


def test_an_answer_is_decoded_by_the_types_its_agent_declares(page: Page, stack: Stack) -> None:
    answer = '"0x" + "0".repeat(62) + "2a" + "0".repeat(63) + "1"'  # abi.encode(uint256(42), true)
    code = f'// @enclave {{"output": ["uint256", "bool"]}}\nexport default async () => {answer};'
    _open_answered_request(page, stack, code)
    expect(page.locator("#request-decoded")).to_contain_text("uint256")
    expect(page.locator("#request-decoded")).to_contain_text("42")
    expect(page.locator("#request-decoded")).to_contain_text("True")
