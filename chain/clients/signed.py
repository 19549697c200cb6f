"""Behaviour shared by the two registries that accept EIP-712 signed actions."""

from __future__ import annotations

from web3 import Web3

from chain.clients.base import ContractClient, Sent
from chain.eip712 import Domain


class SignedActionsClient(ContractClient):
    """A registry with an EIP-712 domain, per-account nonces and role administration."""

    def domain(self) -> Domain:
        """This contract's EIP-712 domain on the connected chain."""
        return Domain.of(self.contract_name, self.chain_id, self.address)

    def domain_separator(self) -> bytes:
        """The domain separator the contract computes (for cross-checking :meth:`domain`)."""
        return bytes(self._call("DOMAIN_SEPARATOR"))

    def increase_nonce(self) -> Sent[int]:
        """Cancel the sender's current nonce (voids every signature carrying it)."""
        receipt = self._send("increaseNonce")
        return self._sent(receipt, int(self._event_arg(receipt, "NonceCancelled", "nonce")))

    def increase_nonce_by_sig(
        self, account: str, nonce: int, deadline: int, signature: bytes
    ) -> Sent[int]:
        """Relay ``account``'s signed ``CancelNonce``."""
        receipt = self._send(
            "increaseNonceBySig", Web3.to_checksum_address(account), nonce, deadline, signature
        )
        return self._sent(receipt, nonce)

    def has_role(self, role: str, account: str) -> bool:
        """True when ``account`` holds ``role`` (e.g. ``"BRAND_ROLE"``)."""
        return bool(self._call("hasRole", self.role_id(role), Web3.to_checksum_address(account)))

    def role_id(self, role: str) -> bytes:
        """The bytes32 id of a role name."""
        if role == "DEFAULT_ADMIN_ROLE":
            return bytes(32)
        return bytes(Web3.keccak(text=role))

    def grant_role(self, role: str, account: str) -> Sent[None]:
        """Grant ``role`` to ``account`` (admin only)."""
        receipt = self._send("grantRole", self.role_id(role), Web3.to_checksum_address(account))
        return self._sent(receipt, None)

    def revoke_role(self, role: str, account: str) -> Sent[None]:
        """Revoke ``role`` from ``account`` (admin only)."""
        receipt = self._send("revokeRole", self.role_id(role), Web3.to_checksum_address(account))
        return self._sent(receipt, None)
