"""Typed clients for the three LiveProof contracts."""

from chain.clients.anchors import AnchorRegistryClient, EndorsementState, SessionState
from chain.clients.base import ContractClient, Sent
from chain.clients.ledger import BatchState, SaleLedgerClient
from chain.clients.provenance import AttestationState, ClaimState, ProvenanceRegistryClient

__all__ = [
    "AnchorRegistryClient",
    "AttestationState",
    "BatchState",
    "ClaimState",
    "ContractClient",
    "EndorsementState",
    "ProvenanceRegistryClient",
    "SaleLedgerClient",
    "Sent",
    "SessionState",
]
