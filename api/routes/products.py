"""Products: a brand signs ``RegisterProduct`` and the API relays it to the ProvenanceRegistry."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query
from sqlmodel import col, select
from starlette.responses import Response

from api.deps import BrandDep, Limit, Offset, SessionDep, StateDep, save
from api.models import Brand, Product
from api.models.common import Address, Gtin, hex32, unhex
from api.models.registry import ProductCreate, ProductPublic
from api.problems import ProblemError
from api.qr import digital_link, qr_response
from api.signatures import domain, recorded_event, relay_signed, require_subject
from chain import eip712
from chain.actions import ProductInput, gtin_is_valid, product_id_of

router = APIRouter(prefix="/products", tags=["products"])

_EXAMPLE = {
    "brand": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "gtin": "06901234567892",
    "name": "Longjing tea 250 g",
    "uri": "https://tea.example/p/longjing-250",
    "metadata_hash": "0x" + "5e" * 32,
    "nonce": 0,
    "deadline": 1_790_000_000,
    "signature": "0x" + "11" * 65,
}


def product_not_found(gtin: str) -> ProblemError:
    """The 404 for an unknown product (or, to a brand's key, another brand's product)."""
    return ProblemError(404, "product-not-found", "No such product", gtin)


@router.post(
    "",
    status_code=201,
    response_model=ProductPublic,
    summary="Register a product the brand signed (written on-chain)",
    description=(
        "The brand signs EIP-712 `RegisterProduct` (brand, gtin, name, uri, metadataHash, "
        "nonce, deadline) on the ProvenanceRegistry's domain; the API checks the GTIN, the "
        "deadline, the nonce (`nonces(brand)`) and the signature before relaying "
        "`registerProductBySig`, so a bad request costs no gas. A product already on chain "
        "with the same details (an earlier attempt whose answer was lost) is adopted."
    ),
    responses={
        401: {"description": "No or bad API key"},
        403: {"description": "Not a brand key, or the key acts for another brand"},
        409: {"description": "The GTIN is already registered"},
        422: {
            "description": "Invalid body or GTIN check digit, brand not registered, deadline "
            "passed, nonce not the brand's next, or signature not the brand's"
        },
    },
)
def register_product(
    body: Annotated[
        ProductCreate,
        Body(openapi_examples={"product": {"summary": "A signed product", "value": _EXAMPLE}}),
    ],
    principal: BrandDep,
    session: SessionDep,
    state: StateDep,
) -> Product:
    """Relay the brand's signed ``RegisterProduct`` and store the product."""
    require_subject(principal, body.brand, "brand")
    if not gtin_is_valid(body.gtin):
        raise ProblemError(
            422, "invalid-gtin", "The GTIN's check digit is wrong", f"{body.gtin} is not a GTIN"
        )
    gtin = int(body.gtin)
    product_id = product_id_of(gtin)
    if session.get(Brand, body.brand) is None:
        raise ProblemError(422, "unknown-brand", "The brand is not registered", body.brand)
    if session.get(Product, hex32(product_id)) is not None:
        raise ProblemError(409, "product-exists", "The GTIN is already registered", body.gtin)
    product = ProductInput(gtin, body.name, body.uri, unhex(body.metadata_hash))
    link = state.gateway.link()
    if link.provenance.brand_of(product_id) is not None:
        earlier = recorded_event(
            link,
            "ProvenanceRegistry",
            "ProductRegistered",
            "productId",
            hex32(product_id),
            {
                "brand": body.brand,
                "gtin": gtin,
                "name": body.name,
                "uri": body.uri,
                "metadataHash": body.metadata_hash,
            },
        )
        if earlier is None:
            raise ProblemError(
                409,
                "product-exists",
                "The GTIN is already registered",
                f"{body.gtin} is registered on chain with other details",
            )
        tx_hash, block = earlier.tx_hash, earlier.block_number
    else:
        typed = eip712.register_product(
            domain(link, "ProvenanceRegistry"), body.brand, product, body.nonce, body.deadline
        )
        sent = relay_signed(
            state,
            link,
            "ProvenanceRegistry",
            typed,
            signer=body.brand,
            body=body,
            send=lambda lk, signature: lk.provenance.register_product_by_sig(
                body.brand, product, body.nonce, body.deadline, signature
            ),
        )
        tx_hash, block = sent.tx_hash, sent.block_number
    row = Product(
        product_id=hex32(product_id),
        gtin=f"{gtin:014d}",
        brand=body.brand,
        name=body.name,
        uri=body.uri,
        metadata_hash=body.metadata_hash,
        tx_hash=tx_hash,
        block_number=block,
    )
    save(state, row)
    return row


@router.get("", response_model=list[ProductPublic], summary="Registered products (public)")
def list_products(
    session: SessionDep,
    brand: Annotated[Address | None, Query(description="Only this brand's products")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[Product]:
    """Products in GTIN order, optionally of one brand."""
    query = select(Product)
    if brand is not None:
        query = query.where(col(Product.brand) == brand)
    return list(session.exec(query.order_by(col(Product.gtin)).offset(offset).limit(limit)))


def product_by_gtin(session: SessionDep, gtin: str) -> Product | None:
    """The product with GTIN-8/12/13/14 ``gtin`` (zero-padded to 14 digits), or None."""
    return session.exec(select(Product).where(col(Product.gtin) == gtin.zfill(14))).first()


@router.get(
    "/{gtin}",
    response_model=ProductPublic,
    summary="A product by GTIN (public)",
    responses={404: {"description": "No such product"}},
)
def get_product(gtin: Gtin, session: SessionDep) -> Product:
    """GTIN-8, -12, -13 or -14: shorter forms are zero-padded to 14 digits."""
    row = product_by_gtin(session, gtin)
    if row is None:
        raise product_not_found(gtin)
    return row


@router.get(
    "/{gtin}/qr.{fmt}",
    summary="QR code (png or svg) of the product's GS1 Digital Link URL",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}, "image/svg+xml": {}}},
        404: {"description": "No such product or format"},
    },
)
def get_product_qr(gtin: Gtin, fmt: str, session: SessionDep, state: StateDep) -> Response:
    """The QR code printed on the pack or shown in the live room: ``<base>/01/<GTIN-14>``."""
    product = product_by_gtin(session, gtin)
    if product is None:
        raise product_not_found(gtin)
    return qr_response(digital_link(state.settings.public_url, product.gtin), fmt)
