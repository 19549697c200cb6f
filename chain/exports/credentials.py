"""``export credentials``: each anchor endorsement as a W3C Verifiable Credential 2.0 document,
secured with an ``ecdsa-jcs-2019`` Data Integrity proof (:mod:`chain.exports.data_integrity`).

Who says what: the issuer is the exporter, the holder of a P-256 issuer key named as a
``did:key``, attesting "the chain records this endorsement". The subject is the anchor, as a
``did:pkh`` (``did:pkh:eip155:<chainId>:<address>``) with its platform handle as ``name``, and
the endorsement's terms: the product class it endorsed (GS1 Digital Link URI, GTIN, name), the
live room (its hash), the claims digest, the disclosure (sponsored, commission), the promised
unit price and the terms' validity window. ``validFrom``/``validUntil`` are that window, and a
revocation brings ``validUntil`` forward to the revocation time (the subject then says
``revokedAt`` too). ``evidence`` names the AnchorRegistry transaction that recorded the
endorsement, and the one that revoked it: the registry checked the anchor's EIP-712 signature
(or EIP-1271 wallet) before recording it, so anyone with an RPC URL of the chain can check the
claim there, whoever issued the credential. No status list is published, so there is no
``credentialStatus``. Every term the documents use is defined by the VC 2.0 context or by the
inline context that follows it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from web3 import Web3

from chain.audit.chain_audit import Progress
from chain.audit.findings import AuditReport
from chain.audit.registry import Endorsement, Product
from chain.deploy import Deployment
from chain.events import ScanCursor
from chain.exports import caip2, digital_link, gtin14, hex0x, iso_utc, stable_uuid_urn
from chain.exports.data_integrity import IssuerKey, add_proof, verify_proof
from chain.exports.endorsement_state import EndorsementState, Revocation, scan_endorsements

VC_V2_CONTEXT: Final = "https://www.w3.org/ns/credentials/v2"
CREDENTIAL_TYPE: Final = "LiveProofEndorsementCredential"
EVIDENCE_TYPE: Final = "LiveProofChainTransaction"
VOCAB: Final = "urn:liveproof:vocab:"

#: Every check ``export credentials`` runs, by stable name, with what it asserts.
CREDENTIAL_CHECKS: Final = {
    "credential-written": "each endorsement recorded on chain became a credential whose "
    "ecdsa-jcs-2019 proof verifies",
    "product-registered": "each endorsed product is registered, so its credential names it by GTIN",
}

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
    "endorsedProduct": _term("endorsedProduct"),
    "productId": _term("productId"),
    "gtin": "https://gs1.org/voc/gtin",
    "roomId": _term("roomId"),
    "claimsDigest": _term("claimsDigest"),
    "sponsored": _term("sponsored", "xsd:boolean"),
    "commissionBps": _term("commissionBps", "xsd:integer"),
    "promisedUnitPrice": _term("promisedUnitPrice", "xsd:integer"),
    "priceCurrency": "https://schema.org/priceCurrency",
    "termsValidFrom": _term("termsValidFrom", "xsd:dateTime"),
    "termsValidUntil": _term("termsValidUntil", "xsd:dateTime"),
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


def _evidence(chain_id: int, registry: str, tx_hash: str, block: int, event: str) -> dict[str, Any]:
    return {
        "type": [EVIDENCE_TYPE],
        "chainId": caip2(chain_id),
        "contract": Web3.to_checksum_address(registry),
        "transactionHash": tx_hash,
        "blockNumber": block,
        "eventName": event,
    }


def endorsement_credential(
    endorsement: Endorsement,
    *,
    chain_id: int,
    anchor_registry: str,
    issuer: str,
    product: Product | None,
    handle: str | None,
    revocation: Revocation | None = None,
) -> dict[str, Any]:
    """The VC 2.0 document of one endorsement issued by ``issuer``, before its proof."""
    e = endorsement
    subject: dict[str, Any] = {"id": did_pkh(chain_id, e.anchor)}
    if handle:
        subject["name"] = handle
    endorsed: dict[str, Any] = {}
    if product is not None:
        endorsed["id"] = digital_link(product.gtin)
    endorsed["productId"] = hex0x(e.product_id)
    if product is not None:
        endorsed |= {"gtin": gtin14(product.gtin), "name": product.name}
    subject |= {
        "endorsementId": hex0x(e.endorsement_id),
        "endorsedProduct": endorsed,
        "roomId": hex0x(e.room_id),
        "claimsDigest": hex0x(e.claims_digest),
        "sponsored": e.sponsored,
        "commissionBps": e.commission_bps,
        "promisedUnitPrice": str(e.unit_price),
        "priceCurrency": e.currency.decode("ascii", "replace"),
        "termsValidFrom": iso_utc(e.valid_from),
        "termsValidUntil": iso_utc(e.valid_until),
    }
    valid_until = e.valid_until
    evidence = [_evidence(chain_id, anchor_registry, e.tx_hash, e.block, "EndorsementRecorded")]
    if e.revoked_at is not None:
        subject["revokedAt"] = iso_utc(e.revoked_at)
        # Valid no longer than until the revocation, and never ending before it began.
        valid_until = max(e.valid_from, min(e.valid_until, e.revoked_at))
        if revocation is not None:
            evidence.append(
                _evidence(chain_id, anchor_registry, revocation.tx_hash, revocation.block,
                          "EndorsementRevoked")
            )  # fmt: skip
    what = product.name if product is not None else hex0x(e.product_id)
    return {
        "@context": [VC_V2_CONTEXT, LIVEPROOF_CONTEXT],
        "id": stable_uuid_urn(chain_id, anchor_registry, "endorsement", hex0x(e.endorsement_id)),
        "type": ["VerifiableCredential", CREDENTIAL_TYPE],
        "name": f"Endorsement of {what} by {handle or e.anchor}",
        "description": "A live-stream host's endorsement of a product for one live room, with "
        "its disclosure and promised unit price, as LiveProof's AnchorRegistry recorded it "
        "after checking the host's signature. Issued by the party that read it from the "
        "chain; the transactions in evidence are where to check it.",
        "issuer": issuer,
        "validFrom": iso_utc(e.valid_from),
        "validUntil": iso_utc(valid_until),
        "credentialSubject": subject,
        "evidence": evidence,
    }


@dataclass
class CredentialExport:
    """The secured credentials of one run, and what was checked on the way."""

    credentials: list[dict[str, Any]]
    report: AuditReport
    chain_id: int
    #: The first and last block this run read (the first is after the cursor when resuming).
    scanned_from: int
    to_block: int
    revoked: int = 0
    issuer: str = ""


def secured_credentials(
    state: EndorsementState, deployment: Deployment, key: IssuerKey, *, created: str
) -> tuple[list[dict[str, Any]], AuditReport]:
    """Every endorsement in ``state``, in chain order, as a credential secured by ``key``; and
    the report of :data:`CREDENTIAL_CHECKS`."""
    registry = state.registry
    address = deployment.address("AnchorRegistry")
    report = AuditReport("credentials", dict(CREDENTIAL_CHECKS))
    credentials = []
    for endorsement in registry.endorsements.values():
        subject = f"endorsement {hex0x(endorsement.endorsement_id)}"
        product = registry.products.get(endorsement.product_id)
        report.checked["product-registered"] += 1
        if product is None:
            report.add("product-registered", subject, "a registered product (for its GTIN)",
                       f"unregistered product {hex0x(endorsement.product_id)}")  # fmt: skip
        document = endorsement_credential(
            endorsement, chain_id=deployment.chain_id, anchor_registry=address, issuer=key.did,
            product=product, handle=registry.handles.get(endorsement.anchor),
            revocation=state.revocations.get(endorsement.endorsement_id),
        )  # fmt: skip
        secured = add_proof(document, key, created=created)
        report.checked["credential-written"] += 1
        if not verify_proof(secured):
            report.add("credential-written", subject, "a proof that verifies", "one that does not")
        credentials.append(secured)
    return credentials, report


def export_credentials(
    w3: Web3,
    deployment: Deployment,
    key: IssuerKey,
    *,
    to_block: int | None = None,
    chunk_size: int = 10_000,
    progress: Progress | None = None,
    cursor_file: Path | None = None,
    created: str | None = None,
) -> CredentialExport:
    """Every endorsement up to ``to_block`` (default: the latest block) as a credential secured
    by ``key``, its proof made at ``created`` (default: now).

    With ``cursor_file`` what was read is kept there: a later run with the same file reads
    only the blocks since, and still returns every credential (revocations of earlier
    endorsements included)."""
    if cursor_file is not None and cursor_file.exists():
        state = EndorsementState.load(cursor_file, deployment)
    else:
        state = EndorsementState(ScanCursor(deployment.start_block))
    start, end = scan_endorsements(
        w3, state, deployment, to_block=to_block, chunk_size=chunk_size, progress=progress
    )
    if cursor_file is not None:
        state.save(cursor_file, deployment)
    credentials, report = secured_credentials(
        state, deployment, key, created=created or iso_utc(int(time.time()))
    )
    revoked = sum(1 for e in state.registry.endorsements.values() if e.revoked_at is not None)
    report.stats = {
        "chain_id": deployment.chain_id,
        "from_block": deployment.start_block,
        "scanned_from": start,
        "to_block": end,
        "endorsements": len(credentials),
        "revoked": revoked,
        "issuer": key.did,
    }
    return CredentialExport(credentials, report, deployment.chain_id, start, end, revoked, key.did)


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
