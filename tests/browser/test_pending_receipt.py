"""A receipt's page while it waits for its batch, in a real browser: it says so, refreshes itself
and turns into the committed, verifiable page once the committer has run; and the SVG QR codes
the pages embed decode (zxing-cpp, from the browser's rendering) to the links they promise."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
import zxingcpp
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, expect

from scripts.bench.harness import Stack, running_stack
from scripts.bench.ingest import prepare_room
from tests.browser.conftest import PHONE, ROOT, output_dir, screenshot
from tests.browser.test_pages import verdict


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """A served stack whose committer does not run until the test runs it."""
    with running_stack(workers=1, extra_env={"LIVEPROOF_RUN_COMMITTER": "false"}) as served:
        prepare_room(served)
        yield served


def _order(stack: Stack, order_ref: str) -> str:
    accepted = httpx.post(
        f"{stack.base_url}/v1/orders",
        json={
            "room_id": "bench-room",
            "session_id": "bench-live",
            "gtin": stack.catalogue.gtin,
            "quantity": 2,
            "unit_price": 12_800,
            "currency": "CNY",
            "order_ref": order_ref,
        },
        headers={"Authorization": f"Bearer {stack.ingest_token}", "Idempotency-Key": order_ref},
    )
    assert accepted.status_code == 201, accepted.text
    code: str = accepted.json()["receipt_code"]
    return code


def _commit(stack: Stack) -> None:
    env = stack.cli_env()
    done = subprocess.run(
        [sys.executable, "-m", "scripts.cli", "committer", "--once"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_a_pending_receipt_page_refreshes_into_a_verified_one(
    browser: Browser, stack: Stack, language: str
) -> None:
    code = _order(stack, f"pending-{language}")
    context = browser.new_context(
        viewport=PHONE, locale=language, extra_http_headers={"Accept-Language": language}
    )
    try:
        page = context.new_page()
        response = page.goto(f"{stack.base_url}/r/{code}")
        assert response is not None
        assert response.headers["refresh"] == "5"
        expect(page.get_by_test_id("status")).to_have_attribute("data-status", "pending")
        # No Verify button, and no bundle to download, before there is anything on chain.
        expect(page.get_by_test_id("verify-button")).to_have_count(0)
        expect(page.get_by_test_id("bundle-link")).to_have_count(0)
        expect(page.get_by_test_id("receipt-qr")).to_be_visible()
        screenshot(page, f"receipt-pending-{language}")

        _commit(stack)
        # The page reloads itself (Refresh: 5) and shows the commit.
        expect(page.get_by_test_id("status")).to_have_attribute(
            "data-status", "committed", timeout=15_000
        )
        assert verdict(page) == "verified"
    finally:
        context.close()


def _decode_rendered_svg(context: BrowserContext, url: str, name: str) -> list[str]:
    """Render the SVG at ``url`` in the browser, screenshot it, decode the picture."""
    page = context.new_page()
    page.set_content(
        f'<body style="margin:0;background:#fff"><img id="qr" src="{url}" width="330" '
        'height="330"></body>'
    )
    qr = page.locator("#qr")
    expect(qr).to_be_visible()
    page.wait_for_function("document.getElementById('qr').complete")
    path = output_dir() / f"{name}.png"
    qr.screenshot(path=str(path))
    page.close()
    with Image.open(path) as picture:
        return [found.text for found in zxingcpp.read_barcodes(picture)]


def test_svg_qr_codes_decode_to_their_links(browser: Browser, stack: Stack) -> None:
    context = browser.new_context(viewport=PHONE)
    try:
        code = _order(stack, "qr-svg")
        base = stack.base_url
        gtin = stack.catalogue.gtin
        assert _decode_rendered_svg(context, f"{base}/v1/receipts/{code}/qr.svg", "qr-receipt") == [
            f"{base}/r/{code}"
        ]
        assert _decode_rendered_svg(context, f"{base}/v1/products/{gtin}/qr.svg", "qr-product") == [
            f"{base}/01/{gtin}"
        ]
    finally:
        context.close()
