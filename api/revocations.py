"""The one revocation flow behind claims, attestations and endorsements.

A signed revocation is checked (deadline, signature, nonce) before any gas is spent and then
relayed; when the chain already shows the object revoked (a retry after a lost answer), the
earlier transaction is adopted instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from api.chain_gateway import ChainLink
from api.chain_records import find_event
from api.models.common import unhex
from api.models.registry import RevocationCreate
from api.signatures import Registry, domain, relay_signed
from api.state import AppState
from chain import eip712
from chain.clients.base import Sent

TypedData = Callable[[eip712.Domain, str, bytes, int, int], dict[str, Any]]


@dataclass(frozen=True)
class Revocable:
    """How one kind of record is revoked on chain."""

    contract: Registry
    event: str
    id_arg: str
    typed_data: TypedData
    is_revoked: Callable[[ChainLink, bytes], bool]
    send: Callable[[ChainLink, str, bytes, int, int, bytes], Sent[bytes]]


CLAIM = Revocable(
    contract="ProvenanceRegistry",
    event="ClaimRevoked",
    id_arg="claimId",
    typed_data=eip712.revoke_claim,
    is_revoked=lambda link, i: link.provenance.claim(i).revoked,
    send=lambda link, *args: link.provenance.revoke_claim_by_sig(*args),
)
ATTESTATION = Revocable(
    contract="ProvenanceRegistry",
    event="AttestationRevoked",
    id_arg="attestationId",
    typed_data=eip712.revoke_attestation,
    is_revoked=lambda link, i: link.provenance.attestation(i).revoked,
    send=lambda link, *args: link.provenance.revoke_attestation_by_sig(*args),
)
ENDORSEMENT = Revocable(
    contract="AnchorRegistry",
    event="EndorsementRevoked",
    id_arg="endorsementId",
    typed_data=eip712.revoke_endorsement,
    is_revoked=lambda link, i: link.anchors.endorsement(i).revoked,
    send=lambda link, *args: link.anchors.revoke_endorsement_by_sig(*args),
)


def relay_revocation(
    state: AppState, kind: Revocable, object_id: str, body: RevocationCreate
) -> str:
    """The transaction that revoked ``object_id``: found on chain, or relayed now."""
    link = state.gateway.link()
    raw_id = unhex(object_id)
    if kind.is_revoked(link, raw_id):
        found = find_event(link, kind.contract, kind.event, kind.id_arg, object_id)
        if found is not None:
            return found[0]
    typed = kind.typed_data(
        domain(link, kind.contract), body.signer, raw_id, body.nonce, body.deadline
    )
    sent = relay_signed(
        state,
        link,
        kind.contract,
        typed,
        signer=body.signer,
        body=body,
        send=lambda lk, sig: kind.send(lk, body.signer, raw_id, body.nonce, body.deadline, sig),
    )
    return sent.tx_hash
