"""The shopper's and anchor's pages in a real browser, on the demo's data: product and receipt
pages in both languages on a 390 px phone, Verify against the chain's JSON-RPC (and refusing
tampered bundles and wrong roots), and the endorsement signing page with an injected EIP-1193
wallet that signs with a dev key."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from eth_account import Account
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

from chain.keys import ANVIL_DEV_KEYS, account_from_key
from tests.browser.conftest import Demo, fits, open_in, screenshot

LANGUAGES = ["en", "zh-CN"]
SPONSORED = re.compile(r"endorsed\s+(\d{14}) by (\S+): sponsored, (\d+)% commission")
VERDICT = "[data-testid=verdict]"
DONE = f"{VERDICT}:not([data-state=idle]):not([data-state=checking])"


def sponsored(demo: Demo) -> tuple[str, str, int]:
    """(GTIN, anchor handle, commission %) of the demo's sponsored endorsement."""
    found = SPONSORED.search(demo.output)
    assert found is not None, demo.output
    return found[1], found[2], int(found[3])


def verdict(page: Page) -> str:
    """Press Verify and wait for the verdict: verified, not-verified or error."""
    page.click("[data-testid=verify-button]")
    page.wait_for_selector(DONE, timeout=20_000)
    state = page.get_attribute(VERDICT, "data-state")
    assert state is not None
    return state


@pytest.mark.parametrize("language", LANGUAGES)
def test_product_page_in_both_languages_on_a_phone(
    browser: Browser, demo: Demo, language: str
) -> None:
    gtin, handle, commission = sponsored(demo)
    context, page = open_in(browser, f"{demo.base}/01/{gtin}", language)
    try:
        assert page.get_attribute("html", "lang") == language
        product = httpx.get(f"{demo.base}/v1/products/{gtin}").json()
        expect(page.get_by_test_id("product-name")).to_have_text(product["name"])
        expect(page.get_by_test_id("gtin")).to_have_text(gtin)
        # The anchor endorsing it now, with the paid-promotion badge and commission.
        endorsement = page.get_by_test_id("endorsement").filter(has_text=handle)
        expect(endorsement.get_by_test_id("ad-badge")).to_have_text("广告 / Ad")
        expect(endorsement.get_by_test_id("commission-badge")).to_contain_text(f"{commission}%")
        price = "¥128.00" if language == "zh-CN" else "CN¥128.00"
        expect(endorsement.get_by_test_id("promised-price")).to_have_text(price)
        # Claims with their state, and at least one certifier attestation.
        states = page.get_by_test_id("claim").evaluate_all("els => els.map(e => e.dataset.state)")
        assert states
        assert set(states) <= {"valid", "expired", "revoked"}
        assert page.get_by_test_id("attestation").count() >= 1
        # Every transaction link opens a page that shows the transaction's events.
        tx_links = page.locator("a.tx")
        assert tx_links.count() >= 3
        href = tx_links.first.get_attribute("href")
        assert href is not None
        assert re.fullmatch(r"/tx/0x[0-9a-f]{64}", href)
        net = page.get_by_test_id("verified-sales").get_by_test_id("net").inner_text()
        assert int(re.sub(r"\D", "", net)) > 0
        heading = "已验证销量" if language == "zh-CN" else "Verified sales"
        expect(page.locator("#sales-h")).to_have_text(heading)
        assert fits(page)
        screenshot(page, f"product-{language}")
        page.goto(f"{demo.base}{href}")
        expect(page.get_by_test_id("event").first).to_be_visible()
    finally:
        context.close()


def test_lot_and_serial_paths_and_the_language_switch(browser: Browser, demo: Demo) -> None:
    gtin, _, _ = sponsored(demo)
    context, page = open_in(browser, f"{demo.base}/01/{gtin}/10/L2026-11/21/SN0001", "en")
    try:
        expect(page.get_by_test_id("lot")).to_have_text("L2026-11")
        expect(page.get_by_test_id("serial")).to_have_text("SN0001")
        page.get_by_test_id("lang-switch").click()
        expect(page.locator("#sales-h")).to_have_text("已验证销量")
        # The choice is remembered against the browser's English preference.
        page.goto(f"{demo.base}/01/{gtin}")
        assert page.get_attribute("html", "lang") == "zh-CN"
        assert fits(page)
    finally:
        context.close()


@pytest.mark.parametrize("language", LANGUAGES)
def test_receipt_page_verifies_against_the_chain(
    browser: Browser, demo: Demo, language: str
) -> None:
    code = demo.receipt("sponsored endorsement")
    context, page = open_in(browser, f"{demo.base}/r/{code}", language)
    try:
        expect(page.get_by_test_id("status")).to_have_attribute("data-status", "committed")
        receipt = httpx.get(f"{demo.base}/v1/receipts/{code}").json()
        expect(page.get_by_test_id("batch-root")).to_have_text(receipt["batch_root"])
        expect(page.locator("#rpc")).to_have_value(demo.stack.devnet.rpc_url)
        assert verdict(page) == "verified"
        # Every check ran: this receipt's bundle, chain id, leaf and proof, verifyReceipt,
        # batch block, commit tx, and what is proven.
        expect(page.locator(f"{VERDICT} .steps li")).to_have_count(7)
        expect(page.locator(f"{VERDICT} .steps li").last).to_contain_text(receipt["receipt_id"])
        expect(page.get_by_test_id("receipt-qr")).to_be_visible()
        assert fits(page)
        screenshot(page, f"receipt-{language}")
    finally:
        context.close()


def _tamper_with(page: Page, change: Any) -> None:
    """Serve the page a proof bundle altered by ``change`` (a platform that lies)."""

    def handle(route: Route) -> None:
        bundle = route.fetch().json()
        change(bundle)
        route.fulfill(status=200, content_type="application/json", body=json.dumps(bundle))

    page.route("**/v1/receipts/*/proof", handle)


def _more_units(bundle: dict[str, Any]) -> None:
    bundle["leaf"]["quantity"] = int(bundle["leaf"]["quantity"]) + 1


def _other_buyer(bundle: dict[str, Any]) -> None:
    """A leaf value the page does not show: only folding the proof can catch it."""
    bundle["leaf"]["buyerCommitment"] = "0x" + "cd" * 32


def _other_root(bundle: dict[str, Any]) -> None:
    bundle["root"] = bundle["batchId"] = "0x" + "ab" * 32


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (_more_units, "The bundle is this receipt's: quantity"),
        (_other_buyer, "Leaf recomputed"),
        (_other_root, "Leaf recomputed"),
    ],
    ids=["tampered-shown-value", "tampered-hidden-value", "wrong-root"],
)
def test_a_tampered_bundle_or_a_wrong_root_is_not_verified(
    phone: BrowserContext, demo: Demo, change: Any, reason: str
) -> None:
    code = demo.receipt("sponsored endorsement")
    page = phone.new_page()
    _tamper_with(page, change)
    page.goto(f"{demo.base}/r/{code}")
    assert verdict(page) == "not-verified"
    expect(page.locator(VERDICT)).to_contain_text("Not verified")
    expect(page.locator(VERDICT)).to_contain_text(reason)


def test_a_root_never_committed_is_not_verified_even_if_self_consistent(
    phone: BrowserContext, demo: Demo
) -> None:
    """A forged single-leaf 'batch': the leaf is its own root, so the proof folds, but the
    ledger has no such root."""
    code = demo.receipt("sponsored endorsement")
    page = phone.new_page()

    def forge(bundle: dict[str, Any]) -> None:
        _other_buyer(bundle)
        from chain.receipts import ReceiptLeaf

        bundle["root"] = "0x" + ReceiptLeaf.from_json(bundle["leaf"]).leaf_hash().hex()
        bundle["batchId"] = bundle["root"]
        bundle["proof"] = []

    _tamper_with(page, forge)
    page.goto(f"{demo.base}/r/{code}")
    assert verdict(page) == "not-verified"
    expect(page.locator(VERDICT)).to_contain_text("verifyReceipt")


def test_another_receipts_genuine_bundle_is_not_verified(phone: BrowserContext, demo: Demo) -> None:
    """A platform that answers with some other committed receipt's (valid) proof: the chain
    would verify it, but it is not the receipt on the page."""
    code = demo.receipt("sponsored endorsement")
    other = httpx.get(f"{demo.base}/v1/receipts/{demo.receipt('refund')}/proof").json()
    page = phone.new_page()
    page.route(
        "**/v1/receipts/*/proof",
        lambda route: route.fulfill(
            status=200, content_type="application/json", body=json.dumps(other)
        ),
    )
    page.goto(f"{demo.base}/r/{code}")
    assert verdict(page) == "not-verified"
    expect(page.locator(VERDICT)).to_contain_text("The bundle is this receipt's: receiptId")


def test_a_pinned_ledger_other_than_the_bundles_is_not_verified(
    phone: BrowserContext, demo: Demo
) -> None:
    page = phone.new_page()
    page.goto(f"{demo.base}/r/{demo.receipt('sponsored endorsement')}")
    ledger = page.get_by_test_id("ledger-input")
    bundle_ledger = ledger.input_value()
    assert re.fullmatch(r"0x[0-9a-fA-F]{40}", bundle_ledger)
    page.locator("details.pin summary").click()
    ledger.fill("0x" + "11" * 20)
    assert verdict(page) == "not-verified"
    expect(page.locator(VERDICT)).to_contain_text(f"0x{'11' * 20} ≠ {bundle_ledger}")
    # Pinned to the address the deployment publishes, it verifies.
    ledger.fill(bundle_ledger.lower())
    assert verdict(page) == "verified"


def test_an_unreachable_rpc_could_not_check(phone: BrowserContext, demo: Demo) -> None:
    page = phone.new_page()
    page.goto(f"{demo.base}/r/{demo.receipt('sponsored endorsement')}")
    page.fill("#rpc", "http://127.0.0.1:9")
    assert verdict(page) == "error"
    expect(page.locator(VERDICT)).to_contain_text("Could not check")


def test_a_downloaded_bundle_is_checked_on_the_verify_page(
    phone: BrowserContext, demo: Demo
) -> None:
    code = demo.receipt("refund")
    bundle = httpx.get(f"{demo.base}/v1/receipts/{code}/proof").json()
    genuine = json.loads(json.dumps(bundle))
    page = phone.new_page()
    page.goto(f"{demo.base}/verify")
    files = page.get_by_test_id("bundle-file")
    files.set_input_files(
        {"name": "good.json", "mimeType": "application/json", "buffer": json.dumps(bundle).encode()}
    )
    assert verdict(page) == "verified"
    _more_units(bundle)
    files.set_input_files(
        {"name": "bad.json", "mimeType": "application/json", "buffer": json.dumps(bundle).encode()}
    )
    assert verdict(page) == "not-verified"
    # A file that is no proof bundle cannot be checked at all (verify-receipt exits 2), and
    # neither can a bundle that breaks the rules verify-receipt applies.
    unusable: list[tuple[Any, str]] = [
        ({}, "missing fields"),
        ({k: v for k, v in genuine.items() if k != "chainId"}, "missing fields: chainId"),
        ({**genuine, "chainId": str(genuine["chainId"])}, "chainId must be a positive integer"),
        ({**genuine, "batchId": "0x" + "00" * 32}, "batchId and root differ"),
    ]
    for broken, why in unusable:
        raw = json.dumps(broken).encode()
        files.set_input_files({"name": "x.json", "mimeType": "application/json", "buffer": raw})
        assert verdict(page) == "error", why
        expect(page.locator(VERDICT)).to_contain_text("Could not check")
        expect(page.locator(VERDICT)).to_contain_text(why)


@pytest.mark.parametrize("language", LANGUAGES)
def test_anchor_profile_on_a_phone(browser: Browser, demo: Demo, language: str) -> None:
    _, handle, _ = sponsored(demo)
    context, page = open_in(browser, f"{demo.base}/a/{handle}", language)
    try:
        expect(page.get_by_test_id("anchor-handle")).to_have_text(handle)
        expect(page.get_by_test_id("identity")).to_be_visible()
        # The demo's host displayed exactly the net units sold: nothing overstated.
        sessions = page.get_by_test_id("session")
        assert sessions.count() >= 1
        assert set(sessions.evaluate_all("els => els.map(e => e.dataset.overstated)")) == {"0"}
        expect(page.get_by_test_id("price-promise")).to_contain_text("%")
        states = page.get_by_test_id("anchor-endorsement").evaluate_all(
            "els => els.map(e => e.dataset.state)"
        )
        assert "active" in states
        assert fits(page)
        screenshot(page, f"anchor-{language}")
    finally:
        context.close()


#: An EIP-1193 provider whose signatures come from the test (a dev key, in Python).
WALLET = """
window.ethereum = {
  isTestWallet: true,
  async request({ method, params }) {
    if (method === "eth_requestAccounts" || method === "eth_accounts") return [ADDRESS];
    if (method === "eth_signTypedData_v4") {
      if (params[0].toLowerCase() !== ADDRESS.toLowerCase()) throw new Error("wrong account");
      return await window.lpTestSign(params[1]);
    }
    throw new Error("unsupported " + method);
  },
};
"""


def test_the_signing_page_records_an_endorsement_signed_by_the_wallet(
    phone: BrowserContext, demo: Demo
) -> None:
    anchor = account_from_key(ANVIL_DEV_KEYS[7])
    signed: list[dict[str, Any]] = []

    def sign(typed_json: str) -> str:
        typed = json.loads(typed_json)
        signed.append(typed)
        signature = Account.sign_typed_data(ANVIL_DEV_KEYS[7], full_message=typed).signature
        return "0x" + bytes(signature).hex()

    page = phone.new_page()
    page.expose_function("lpTestSign", sign)
    page.add_init_script(WALLET.replace("ADDRESS", json.dumps(anchor.address)))
    gtin = demo.products[-1]
    page.goto(f"{demo.base}/sign/endorsement?lang=en")
    expect(page.get_by_test_id("no-wallet")).to_be_hidden()
    page.get_by_test_id("connect").click()
    expect(page.get_by_test_id("account")).to_have_text(f"Signing as {anchor.address}")
    page.select_option("#gtin", gtin)
    page.fill("#room", "westlake-longjing-live")
    page.check("#sponsored")
    page.fill("#commission", "12.5")
    page.fill("#price", "99.90")
    page.fill("#days", "3")
    page.get_by_test_id("sign-submit").click()
    result = page.get_by_test_id("sign-result")
    expect(result).to_have_attribute("data-state", "recorded", timeout=20_000)
    screenshot(page, "sign-en")

    chain = httpx.get(f"{demo.base}/v1/chain").json()
    assert len(signed) == 1
    assert signed[0]["domain"] == chain["domains"]["AnchorRegistry"]
    endorsement_id = result.get_attribute("data-endorsement-id")
    recorded = httpx.get(f"{demo.base}/v1/endorsements/{endorsement_id}").json()
    assert recorded["anchor"] == anchor.address
    assert recorded["sponsored"] is True
    assert recorded["commission_bps"] == 1250
    assert recorded["unit_price"] == 9990
    assert recorded["currency"] == "CNY"
    assert recorded["room_id"] == "westlake-longjing-live"
    assert recorded["valid_until"] - recorded["valid_from"] == 3 * 86_400
    # The page shows the terms the chain recorded, for the anchor to read back.
    product = httpx.get(f"{demo.base}/v1/products/{gtin}").json()
    shown = result.get_by_test_id("recorded-terms")
    expect(shown.get_by_test_id("recorded-endorsement-id")).to_have_text(endorsement_id or "")
    expect(shown.get_by_test_id("recorded-product")).to_contain_text(product["name"])
    expect(shown.get_by_test_id("recorded-room")).to_have_text("westlake-longjing-live")
    expect(shown.get_by_test_id("recorded-disclosure")).to_have_text("广告 / Ad · Commission 12.5%")
    expect(shown.get_by_test_id("recorded-price")).to_have_text("99.90 CNY")
    expect(shown.get_by_test_id("recorded-block")).to_have_text(str(recorded["block_number"]))
    # The profile the page links to lists the new endorsement as active.
    page.get_by_test_id("profile-link").click()
    endorsed = page.get_by_test_id("anchor-endorsement").filter(has_text=product["name"])
    expect(endorsed.first).to_have_attribute("data-state", "active")


def test_the_signing_page_without_a_wallet_says_so(phone: BrowserContext, demo: Demo) -> None:
    page = phone.new_page()
    page.goto(f"{demo.base}/sign/endorsement")
    expect(page.get_by_test_id("no-wallet")).to_be_visible()
    expect(page.get_by_test_id("connect")).to_be_disabled()
    expect(page.get_by_test_id("sign-submit")).to_be_disabled()


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_page_fits_a_phone_in_both_languages(
    browser: Browser, demo: Demo, language: str
) -> None:
    """Each page (and the 404 page) at 390 px: no sideways scrolling; a screenshot of each."""
    gtin, handle, _ = sponsored(demo)
    product = httpx.get(f"{demo.base}/v1/products/{gtin}").json()
    pages = {
        "home": "/",
        "product": f"/01/{gtin}/10/L2026-11/21/SN0001",
        "receipt": f"/r/{demo.receipt('refund')}",
        "anchor": f"/a/{handle}",
        "sign": f"/sign/endorsement?gtin={gtin}",
        "verify": "/verify",
        "tx": f"/tx/{product['tx_hash']}",
    }
    context = open_in(browser, f"{demo.base}/", language)[0]
    try:
        page = context.pages[0]
        for name, path in pages.items():
            response = page.goto(f"{demo.base}{path}")
            assert response is not None
            assert response.status == 200, path
            assert page.get_attribute("html", "lang") == language
            assert fits(page), path
            screenshot(page, f"all-{name}-{language}")
        missing = page.goto(f"{demo.base}/01/04006381333931")  # valid, not registered
        assert missing is not None
        assert missing.status == 404
        expect(page.get_by_test_id("error")).to_be_visible()
        assert fits(page)
        screenshot(page, f"all-not-found-{language}")
    finally:
        context.close()
