"""Typed client for AnchorRegistry: anchors, endorsements, revocations and live sessions."""

from __future__ import annotations

from dataclasses import dataclass

from web3 import Web3

from chain.actions import EndorsementTerms
from chain.clients.base import Sent
from chain.clients.signed import SignedActionsClient

_ZERO = "0x0000000000000000000000000000000000000000"


@dataclass(frozen=True)
class EndorsementState:
    """An endorsement's anchor, end of validity and revocation state."""

    anchor: str
    valid_until: int
    revoked: bool

    @property
    def exists(self) -> bool:
        """True when the endorsement was ever recorded."""
        return self.anchor != _ZERO


@dataclass(frozen=True)
class SessionState:
    """A live session's anchor and open/close times (closed_at 0: still open)."""

    anchor: str
    opened_at: int
    closed_at: int

    @property
    def exists(self) -> bool:
        """True when the session was ever opened."""
        return self.anchor != _ZERO


class AnchorRegistryClient(SignedActionsClient):
    """Client for ``AnchorRegistry``."""

    contract_name = "AnchorRegistry"

    def register_anchor(self, anchor: str, handle: str) -> Sent[None]:
        """Register ``anchor`` under platform ``handle`` (admin only)."""
        receipt = self._send("registerAnchor", Web3.to_checksum_address(anchor), handle)
        return self._sent(receipt, None)

    def remove_anchor(self, anchor: str) -> Sent[None]:
        """Remove ``anchor`` (admin only)."""
        return self._sent(self._send("removeAnchor", Web3.to_checksum_address(anchor)), None)

    def endorse(self, terms: EndorsementTerms) -> Sent[bytes]:
        """Endorse as the sending anchor; the value is the endorsement id."""
        receipt = self._send("endorse", terms.as_tuple())
        return self._sent(receipt, self._endorsement_id(receipt))

    def endorse_by_sig(
        self, anchor: str, terms: EndorsementTerms, nonce: int, deadline: int, signature: bytes
    ) -> Sent[bytes]:
        """Relay ``anchor``'s signed ``Endorsement``; the value is the endorsement id."""
        receipt = self._send(
            "endorseBySig",
            Web3.to_checksum_address(anchor),
            terms.as_tuple(),
            nonce,
            deadline,
            signature,
        )
        return self._sent(receipt, self._endorsement_id(receipt))

    def _endorsement_id(self, receipt: object) -> bytes:
        return bytes(self._event_arg(receipt, "EndorsementRecorded", "endorsementId"))  # type: ignore[arg-type]

    def revoke_endorsement(self, endorsement_id: bytes) -> Sent[bytes]:
        """Revoke an endorsement the sender made."""
        return self._sent(self._send("revokeEndorsement", endorsement_id), endorsement_id)

    def revoke_endorsement_by_sig(
        self, anchor: str, endorsement_id: bytes, nonce: int, deadline: int, signature: bytes
    ) -> Sent[bytes]:
        """Relay ``anchor``'s signed ``RevokeEndorsement``."""
        receipt = self._send(
            "revokeEndorsementBySig",
            Web3.to_checksum_address(anchor),
            endorsement_id,
            nonce,
            deadline,
            signature,
        )
        return self._sent(receipt, endorsement_id)

    def open_session(self, session_id: bytes, room_id: bytes, anchor: str) -> Sent[bytes]:
        """Open a live session (operator or the anchor)."""
        receipt = self._send("openSession", session_id, room_id, Web3.to_checksum_address(anchor))
        return self._sent(receipt, session_id)

    def close_session(
        self, session_id: bytes, recording_hash: bytes, displayed_sales: int
    ) -> Sent[bytes]:
        """Close a live session with its recording hash and the sales count shown to viewers."""
        receipt = self._send("closeSession", session_id, recording_hash, displayed_sales)
        return self._sent(receipt, session_id)

    def endorsement_id_of(self, anchor: str, terms: EndorsementTerms, nonce: int) -> bytes:
        """The id the contract gives ``anchor``'s endorsement on ``terms`` with ``nonce``."""
        return bytes(
            self._call("endorsementIdOf", Web3.to_checksum_address(anchor), terms.as_tuple(), nonce)
        )

    def handle_of(self, account: str) -> bytes | None:
        """The handle hash of ``account``, or None when it is not an anchor."""
        handle = bytes(self._call("handleOf", Web3.to_checksum_address(account)))
        return None if handle == bytes(32) else handle

    def endorsement(self, endorsement_id: bytes) -> EndorsementState:
        """An endorsement's current state."""
        anchor, valid_until, revoked = self._call("endorsement", endorsement_id)
        return EndorsementState(str(anchor), int(valid_until), bool(revoked))

    def session(self, session_id: bytes) -> SessionState:
        """A session's current state."""
        anchor, opened_at, closed_at = self._call("session", session_id)
        return SessionState(str(anchor), int(opened_at), int(closed_at))

    def provenance(self) -> str:
        """Address of the ProvenanceRegistry this registry checks products against."""
        return str(self._call("provenance"))
