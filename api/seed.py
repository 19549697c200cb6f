"""Register a brand's product and an anchor on chain and in the database in one go.

For benchmarks and tests that need a catalogue without going through the signed-action
endpoints; the demo uses the API itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_account.signers.local import LocalAccount
from sqlmodel import Session
from web3 import Web3

from api.db import make_engine
from api.models import Anchor, Brand, Product
from chain.actions import ProductInput, label_hash
from chain.clients.base import relayer_for
from chain.deploy import Deployment


@dataclass(frozen=True)
class Catalogue:
    """What was registered."""

    gtin: str
    product_id: str
    anchor: str


def seed_catalogue(
    database_url: str,
    w3: Web3,
    deployment: Deployment,
    *,
    registrar: LocalAccount,
    brand: LocalAccount,
    anchor: LocalAccount,
    gtin: int = 6_901_234_567_892,
    product_name: str = "Longjing tea 250 g",
    handle: str = "@tea-master-li",
) -> Catalogue:
    """Register ``brand`` with one product and ``anchor``; ``registrar`` holds the admin role."""
    admin = relayer_for(w3, registrar)
    provenance = deployment.provenance(w3, admin)
    b = provenance.register_brand(brand.address, "Example Tea Co.")
    metadata = label_hash(product_name)
    p = deployment.provenance(w3, relayer_for(w3, brand)).register_product(
        ProductInput(gtin, product_name, "https://tea.example/p", metadata)
    )
    a = deployment.anchors(w3, admin).register_anchor(anchor.address, handle)
    engine = make_engine(database_url, pool_size=1)
    try:
        with Session(engine) as session:
            session.add(
                Brand(
                    address=brand.address,
                    name="Example Tea Co.",
                    tx_hash=b.tx_hash,
                    block_number=b.block_number,
                )
            )
            session.commit()
            session.add(
                Product(
                    product_id="0x" + p.value.hex(),
                    gtin=f"{gtin:014d}",
                    brand=brand.address,
                    name=product_name,
                    uri="https://tea.example/p",
                    metadata_hash="0x" + metadata.hex(),
                    tx_hash=p.tx_hash,
                    block_number=p.block_number,
                )
            )
            session.add(
                Anchor(
                    address=anchor.address,
                    handle=handle,
                    handle_hash="0x" + label_hash(handle).hex(),
                    tx_hash=a.tx_hash,
                    block_number=a.block_number,
                )
            )
            session.commit()
    finally:
        engine.dispose()
    return Catalogue(gtin=f"{gtin:014d}", product_id="0x" + p.value.hex(), anchor=anchor.address)
