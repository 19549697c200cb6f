"""``export credentials``: each anchor endorsement as a W3C Verifiable Credential 2.0 document.

The issuer is the anchor's account as a ``did:pkh`` (``did:pkh:eip155:<chainId>:<address>``);
the subject is the endorsed product class (its GS1 Digital Link URI), with the endorsement's
terms: the live room (its hash), the disclosure (sponsored, commission) and the promised unit
price. ``validFrom``/``validUntil`` are the terms' validity window. ``evidence`` names the
AnchorRegistry transaction that recorded the endorsement.

The credentials carry no ``proof``: they are unsigned credential documents, and the
transaction in ``evidence`` is what secures them. The AnchorRegistry recorded the endorsement
only after checking the anchor's EIP-712 signature (or its EIP-1271 wallet), so anyone with
an RPC URL of the chain can check the claim by reading that transaction's
``EndorsementRecorded`` event; a revocation shows as ``revokedAt`` in the subject. Every term
the documents use is defined by the VC 2.0 context or by the inline context that follows it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

from web3 import Web3

from chain.audit.chain_audit import Progress
from chain.audit.registry import Endorsement, Product, Registry
from chain.audit.verified import read_registry
from chain.deploy import Deployment
from chain.exports import caip2, digital_link, gtin14, hex0x, iso_utc, stable_uuid_urn

VC_V2_CONTEXT: Final = "https://www.w3.org/ns/credentials/v2"
CREDENTIAL_TYPE: Final = "LiveProofEndorsementCredential"
EVIDENCE_TYPE: Final = "LiveProofChainTransaction"
VOCAB: Final = "urn:liveproof:vocab:"

_XSD: Final = "http://www.w3.org/2001/XMLSchema#"


def _term(name: str, datatype: str | None = None) -> str | dict[str, str]:
    if datatype is None:
        return f"lp:{name}"
    return {"@id": f"lp:{name}", "@type": datatype}


#: Our terms, as an inline JSON-LD context after the VC 2.0 one (which is protected; none of
#: these redefine its terms).
LIVEPROOF_CONTEXT: Final[dict[str, Any]] = {
    "@protected": True,
    "lp": VOCAB,
    "xsd": _XSD,
    CREDENTIAL_TYPE: _term(CREDENTIAL_TYPE),
    EVIDENCE_TYPE: _term(EVIDENCE_TYPE),
    "endorsementId": _term("endorsementId"),
    "productId": _term("productId"),
    "productName": _term("productName"),
    "gtin": "https://gs1.org/voc/gtin",
    "roomId": _term("roomId"),
    "claimsDigest": _term("claimsDigest"),
    "sponsored": _term("sponsored", "xsd:boolean"),
    "commissionBps": _term("commissionBps", "xsd:integer"),
    "promisedUnitPrice": _term("promisedUnitPrice", "xsd:integer"),
    "priceCurrency": "https://schema.org/priceCurrency",
    "revokedAt": _term("revokedAt", "xsd:dateTime"),
    "chainId": _term("chainId"),
    "contract": _term("contract"),
    "transactionHash": _term("transactionHash"),
    "blockNumber": _term("blockNumber", "xsd:integer"),
    "eventName": _term("eventName"),
}


def did_pkh(chain_id: int, address: str) -> str:
    """The account as a ``did:pkh`` DID: ``did:pkh:eip155:<chainId>:<EIP-55 address>``."""
    return f"did:pkh:{caip2(chain_id)}:{Web3.to_checksum_address(address)}"


def endorsement_credential(
    endorsement: Endorsement,
    *,
    chain_id: int,
    anchor_registry: str,
    product: Product | None,
    handle: str | None,
) -> dict[str, Any]:
    """The VC 2.0 document of one endorsement (unsigned: see the module's docstring)."""
    e = endorsement
    subject: dict[str, Any] = {}
    if product is not None:
        subject["id"] = digital_link(product.gtin)
    subject |= {
        "endorsementId": hex0x(e.endorsement_id),
        "productId": hex0x(e.product_id),
    }
    if product is not None:
        subject |= {"gtin": gtin14(product.gtin), "productName": product.name}
    subject |= {
        "roomId": hex0x(e.room_id),
        "claimsDigest": hex0x(e.claims_digest),
        "sponsored": e.sponsored,
        "commissionBps": e.commission_bps,
        "promisedUnitPrice": str(e.unit_price),
        "priceCurrency": e.currency.decode("ascii", "replace"),
    }
    if e.revoked_at is not None:
        subject["revokedAt"] = iso_utc(e.revoked_at)
    issuer: dict[str, Any] = {"id": did_pkh(chain_id, e.anchor)}
    if handle:
        issuer["name"] = handle
    what = product.name if product is not None else hex0x(e.product_id)
    return {
        "@context": [VC_V2_CONTEXT, LIVEPROOF_CONTEXT],
        "id": stable_uuid_urn(chain_id, anchor_registry, "endorsement", hex0x(e.endorsement_id)),
        "type": ["VerifiableCredential", CREDENTIAL_TYPE],
        "name": f"Endorsement of {what} by {handle or e.anchor}",
        "description": "A live-stream host's endorsement of a product for one live room, with "
        "its disclosure and promised unit price, as recorded by LiveProof's AnchorRegistry. "
        "Unsigned: the transaction in evidence is the proof.",
        "issuer": issuer,
        "validFrom": iso_utc(e.valid_from),
        "validUntil": iso_utc(e.valid_until),
        "credentialSubject": subject,
        "evidence": [
            {
                "type": [EVIDENCE_TYPE],
                "chainId": caip2(chain_id),
                "contract": Web3.to_checksum_address(anchor_registry),
                "transactionHash": e.tx_hash,
                "blockNumber": e.block,
                "eventName": "EndorsementRecorded",
            }
        ],
    }


def credentials_of(registry: Registry, deployment: Deployment) -> list[dict[str, Any]]:
    """Every endorsement the registry recorded, in chain order, as a credential."""
    registry_address = deployment.address("AnchorRegistry")
    return [
        endorsement_credential(
            endorsement,
            chain_id=deployment.chain_id,
            anchor_registry=registry_address,
            product=registry.products.get(endorsement.product_id),
            handle=registry.handles.get(endorsement.anchor),
        )
        for endorsement in registry.endorsements.values()
    ]


def export_credentials(
    w3: Web3,
    deployment: Deployment,
    *,
    to_block: int | None = None,
    chunk_size: int = 10_000,
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """Every endorsement up to ``to_block`` (default: the latest block) as a credential."""
    registry = read_registry(
        w3, deployment, to_block=to_block, chunk_size=chunk_size, progress=progress
    )
    return credentials_of(registry, deployment)


def write_credentials(credentials: list[dict[str, Any]], out: Path) -> list[Path]:
    """Write the credentials: to ``out`` as one JSON array when it ends in ``.json``, else
    into the directory ``out`` as ``<endorsementId>.json`` each; the paths written."""
    if out.suffix.lower() == ".json":
        out.write_text(json.dumps(credentials, indent=2, ensure_ascii=False) + "\n", "utf-8")
        return [out]
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for credential in credentials:
        path = out / f"{credential['credentialSubject']['endorsementId']}.json"
        path.write_text(json.dumps(credential, indent=2, ensure_ascii=False) + "\n", "utf-8")
        written.append(path)
    return written
