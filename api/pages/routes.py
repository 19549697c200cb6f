"""The shopper's and anchor's pages: GS1 Digital Link product pages, receipts, anchor profiles,
the endorsement signing page, the bundle checker and a transaction view.

Server-rendered; the only scripts are ``static/verify.js`` (checks a proof against the chain's
JSON-RPC in the browser) and ``static/sign.js`` (EIP-1193 signing of an endorsement).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from sqlmodel import col, select
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, RedirectResponse, Response

from api.deps import SessionDep, StateDep
from api.models import Anchor, Product
from api.pages import facts
from api.pages.render import not_found, render
from api.problems import ProblemError
from api.qr import digital_link, receipt_page
from api.receipt_codes import decode
from api.state import AppState
from chain import eip712
from chain.actions import gtin_is_valid
from chain.errors import RpcUnavailableError
from chain.events import EventDecoder
from chain.paths import project_root
from chain.receipts import LEAF_FIELDS

router = APIRouter(include_in_schema=False)

#: GS1 AI (10) batch/lot and (21) serial: up to 20 characters of GS1 character set 82.
_AI_VALUE = re.compile(r"^[!\"%&'()*+,\-./0-9:;<=>?A-Z_a-z]{1,20}$")
_TX_HASH = re.compile(r"^0x[0-9a-fA-F]{64}$")
_LEAF = {
    "leaf_fields": [name for name, _ in LEAF_FIELDS],
    "leaf_types": [kind for _, kind in LEAF_FIELDS],
}
_SHA3 = Path("node_modules/js-sha3/build/sha3.min.js")
#: Leaf fields a receipt page shows, so Verify checks the bundle is that receipt's.
_SHOWN_LEAF_FIELDS = (
    "receiptId", "kind", "refersTo", "productId", "quantity", "unitPrice", "currency", "orderedAt",
)  # fmt: skip


def _public_rpc(state: AppState) -> str:
    """The RPC URL the Verify button starts with (the shopper may change it)."""
    return state.settings.public_rpc_url or state.settings.rpc_url


@router.get("/", name="home")
def home(request: Request, session: SessionDep, state: StateDep) -> Response:
    """Registered products and anchors, each linked to its page."""
    products = session.exec(select(Product).order_by(col(Product.gtin)).limit(200)).all()
    anchors = session.exec(select(Anchor).order_by(col(Anchor.handle)).limit(200)).all()
    return render(request, state.settings, "home.html", {"products": products, "anchors": anchors})


def _product(
    request: Request,
    session: SessionDep,
    state: StateDep,
    gtin: str,
    lot: str | None = None,
    serial: str | None = None,
) -> Response:
    settings = state.settings
    if not (gtin.isdigit() and len(gtin) in (8, 12, 13, 14) and gtin_is_valid(gtin)):
        return render(request, settings, "error.html", {"message_key": "bad_link"}, status_code=404)
    for value in (lot, serial):
        if value is not None and not _AI_VALUE.match(value):
            return render(
                request, settings, "error.html", {"message_key": "bad_link"}, status_code=404
            )
    if len(gtin) != 14:
        # The canonical Digital Link carries the GTIN as 14 digits.
        canonical = request.url.path.replace(f"/01/{gtin}", f"/01/{gtin.zfill(14)}", 1)
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(canonical + query, status_code=301)
    product = facts.product_by_gtin(session, gtin)
    if product is None:
        return not_found(request, settings, "not_found_product")
    return render(
        request,
        settings,
        "product.html",
        {
            "f": facts.product_facts(session, product),
            "lot": lot,
            "serial": serial,
            "link": digital_link(settings.public_url, product.gtin),
        },
    )


# Lengths are checked in the handlers, so that a bad link gets the HTML error page.
Gtin = Annotated[str, PathParam()]
Ai = Annotated[str, PathParam()]
#: Receipt codes and anchor handles longer than this are no one's.
_MAX_KEY = 80


@router.get("/01/{gtin}", name="product")
def product_page(request: Request, gtin: Gtin, session: SessionDep, state: StateDep) -> Response:
    """GS1 Digital Link ``/01/{gtin}``: the product's provenance, endorsements and sales."""
    return _product(request, session, state, gtin)


@router.get("/01/{gtin}/10/{lot}")
def product_lot_page(
    request: Request, gtin: Gtin, lot: Ai, session: SessionDep, state: StateDep
) -> Response:
    """``/01/{gtin}/10/{lot}``: the product page, showing the scanned lot."""
    return _product(request, session, state, gtin, lot=lot)


@router.get("/01/{gtin}/21/{serial}")
def product_serial_page(
    request: Request, gtin: Gtin, serial: Ai, session: SessionDep, state: StateDep
) -> Response:
    """``/01/{gtin}/21/{serial}``: the product page, showing the scanned serial."""
    return _product(request, session, state, gtin, serial=serial)


@router.get("/01/{gtin}/10/{lot}/21/{serial}")
def product_lot_serial_page(
    request: Request, gtin: Gtin, lot: Ai, serial: Ai, session: SessionDep, state: StateDep
) -> Response:
    """``/01/{gtin}/10/{lot}/21/{serial}``: lot and serial together."""
    return _product(request, session, state, gtin, lot=lot, serial=serial)


@router.get("/r/{code}", name="receipt")
def receipt_page_view(
    request: Request,
    code: str,
    session: SessionDep,
    state: StateDep,
) -> Response:
    """A receipt: pending or committed, with in-browser verification against the chain."""
    settings = state.settings
    try:
        if len(code) > _MAX_KEY:
            raise ProblemError(404, "receipt-not-found", "No such receipt")
        receipt_id = "0x" + decode(code).hex()
    except ProblemError:
        return not_found(request, settings, "not_found_receipt")
    found = facts.receipt_facts(session, receipt_id)
    if found is None:
        return not_found(request, settings, "not_found_receipt")
    headers = None if found.committed else {"Refresh": "5"}
    leaf = found.view["leaf"]
    return render(
        request,
        settings,
        "receipt.html",
        {
            "f": found,
            # What the page shows, which the bundle's leaf must repeat (verify.js).
            "expect": {name: leaf[name] for name in _SHOWN_LEAF_FIELDS},
            "rpc_url": _public_rpc(state),
            "page_url": receipt_page(settings.public_url, found.code),
            **_LEAF,
        },
        headers=headers,
    )


@router.get("/verify", name="verify")
def verify_page(request: Request, state: StateDep) -> Response:
    """Check a downloaded proof bundle against the chain, in the browser."""
    return render(
        request,
        state.settings,
        "verify.html",
        {"rpc_url": _public_rpc(state), **_LEAF},
    )


@router.get("/a/{handle}", name="anchor")
def anchor_page(
    request: Request,
    handle: str,
    session: SessionDep,
    state: StateDep,
) -> Response:
    """An anchor's profile: identity, endorsements, verified sales, refunds, price promises
    and displayed vs verified sales per session."""
    found = facts.anchor_facts(session, handle) if len(handle) <= _MAX_KEY else None
    if found is None:
        return not_found(request, state.settings, "not_found_anchor")
    return render(request, state.settings, "anchor.html", {"f": found})


@router.get("/sign/endorsement", name="sign_endorsement")
def sign_endorsement_page(
    request: Request, session: SessionDep, state: StateDep, gtin: str = "", room: str = ""
) -> Response:
    """The anchor's signing page: the browser wallet signs EIP-712 ``Endorsement``."""
    products = session.exec(select(Product).order_by(col(Product.gtin)).limit(500)).all()
    types = {
        "EIP712Domain": [
            {"name": "name", "type": "string"},
            {"name": "version", "type": "string"},
            {"name": "chainId", "type": "uint256"},
            {"name": "verifyingContract", "type": "address"},
        ],
        "Endorsement": [{"name": n, "type": k} for n, k in eip712.TYPES["Endorsement"]],
    }
    return render(
        request,
        state.settings,
        "sign.html",
        {"products": products, "gtin": gtin, "room": room, "types": types},
    )


@router.get("/tx/{tx_hash}", name="tx")
def tx_page(request: Request, tx_hash: str, state: StateDep) -> Response:
    """A transaction's LiveProof events, read from the chain (the default for tx links when
    no explorer is configured)."""
    settings = state.settings
    if not _TX_HASH.match(tx_hash):
        return not_found(request, settings, "not_found_page")
    try:
        link = state.gateway.link()
        receipt = link.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
    except RpcUnavailableError:
        raise
    except Exception:
        return not_found(request, settings, "not_found_page")
    addresses = {name: c.address for name, c in link.deployment.contracts.items()}
    events = EventDecoder(addresses).decode_receipt(receipt)
    names = {address.lower(): name for name, address in addresses.items()}
    return render(
        request,
        settings,
        "tx.html",
        {
            "tx_hash": tx_hash.lower(),
            "receipt": receipt,
            "contract": names.get(str(receipt["to"] or "").lower(), receipt["to"]),
            "events": events,
        },
    )


@router.get("/static/vendor/sha3.min.js")
async def keccak_library() -> Response:
    """js-sha3 (npm, installed into node_modules): the browser's keccak256."""
    path = project_root() / _SHA3
    if not await run_in_threadpool(path.is_file):
        raise ProblemError(404, "not-found", "js-sha3 is not installed", "run npm ci")
    return FileResponse(
        path, media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"}
    )
