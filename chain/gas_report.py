"""Measure the gas of every LiveProof operation on a fresh deployment.

Participants (brand, certifier, anchor) are fresh random keys that only sign: the deployer
relays and pays for everything, exactly as the platform's relayer does in production.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TypeVar

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from web3 import Web3

from chain import eip712
from chain.actions import (
    AttestationInput,
    ClaimInput,
    EndorsementTerms,
    ProductInput,
    claims_digest,
    currency_code,
    label_hash,
)
from chain.clients.base import Sent, relayer_for
from chain.deploy import deploy

#: Targets from the EVM's own costs (issue: contracts, chain layer and devnet).
GAS_TARGETS = {"commit_batch": 48_000, "record_receipt": 48_000, "endorse_relayed": 80_000}

_DAY = 86_400
T = TypeVar("T")


@dataclass(frozen=True)
class GasReport:
    """Gas used per operation (total transaction gas, 21,000 base included)."""

    chain_id: int
    gas: dict[str, int]

    def misses(self) -> dict[str, tuple[int, int]]:
        """Operations over their target: name -> (used, target)."""
        return {k: (self.gas[k], t) for k, t in GAS_TARGETS.items() if self.gas.get(k, 0) > t}


def _random_account() -> LocalAccount:
    account: LocalAccount = Account.from_key(os.urandom(32))
    return account


def measure_gas(w3: Web3, deployer: LocalAccount) -> GasReport:
    """Deploy fresh contracts with ``deployer`` and run one of every operation on them."""
    dep, _ = deploy(w3, deployer, write=False)
    relayer = relayer_for(w3, deployer)
    provenance, anchors, ledger = (
        dep.provenance(w3, relayer),
        dep.anchors(w3, relayer),
        dep.ledger(w3, relayer),
    )
    brand, certifier, anchor = _random_account(), _random_account(), _random_account()
    gas: dict[str, int] = {
        f"deploy_{name}": int(w3.eth.get_transaction_receipt(HexStr(c.tx_hash))["gasUsed"])
        for name, c in dep.contracts.items()
    }

    def record(name: str, sent: Sent[T]) -> T:
        gas[name] = sent.gas_used
        return sent.value

    now = int(w3.eth.get_block("latest")["timestamp"])
    deadline = now + _DAY
    prov_domain, anchor_domain = provenance.domain(), anchors.domain()

    record("register_brand", provenance.register_brand(brand.address, "Example Tea Co."))
    record("register_certifier", provenance.register_certifier(certifier.address, "Lab"))
    product = ProductInput(
        6_901_234_567_892, "Longjing green tea 250 g", "https://example.com/p", label_hash("m")
    )
    signed = eip712.sign(
        brand, eip712.register_product(prov_domain, brand.address, product, 0, deadline)
    )
    product_id = record(
        "register_product_relayed",
        provenance.register_product_by_sig(brand.address, product, 0, deadline, signed),
    )
    claim = ClaimInput(
        product_id, label_hash("origin"), label_hash("report"), "ipfs://origin", now + 365 * _DAY
    )
    signed = eip712.sign(
        brand, eip712.product_claim(prov_domain, brand.address, claim, 1, deadline)
    )
    claim_id = record(
        "add_claim_relayed",
        provenance.add_claim_by_sig(brand.address, claim, 1, deadline, signed),
    )
    attestation = AttestationInput(claim_id, label_hash("inspection"), "ipfs://inspection")
    signed = eip712.sign(
        certifier, eip712.attestation(prov_domain, certifier.address, attestation, 0, deadline)
    )
    record(
        "attest_relayed",
        provenance.attest_by_sig(certifier.address, attestation, 0, deadline, signed),
    )

    record("register_anchor", anchors.register_anchor(anchor.address, "@gas-report-host"))
    endorsement_ids: list[bytes] = []
    for nonce, name in ((0, "endorse_relayed_first"), (1, "endorse_relayed")):
        terms = EndorsementTerms(
            product_id,
            claims_digest([claim_id]),
            label_hash(f"room-{nonce}"),
            True,
            1_500,
            12_800,
            currency_code("CNY"),
            now,
            now + 30 * _DAY,
        )
        signed = eip712.sign(
            anchor, eip712.endorsement(anchor_domain, anchor.address, terms, nonce, deadline)
        )
        endorsement_ids.append(
            record(name, anchors.endorse_by_sig(anchor.address, terms, nonce, deadline, signed))
        )
    signed = eip712.sign(
        anchor,
        eip712.revoke_endorsement(anchor_domain, anchor.address, endorsement_ids[0], 2, deadline),
    )
    record(
        "revoke_endorsement",
        anchors.revoke_endorsement_by_sig(anchor.address, endorsement_ids[0], 2, deadline, signed),
    )
    session_id, room_id = label_hash("session-1"), label_hash("room-1")
    record("open_session", anchors.open_session(session_id, room_id, anchor.address))
    record("close_session", anchors.close_session(session_id, label_hash("recording"), 1_024))
    record("commit_batch", ledger.commit_batch(os.urandom(32), 1_024))
    record("record_receipt", ledger.record_receipt(os.urandom(32)))
    signed = eip712.sign(
        brand, eip712.revoke_claim(prov_domain, brand.address, claim_id, 2, deadline)
    )
    record(
        "revoke_claim_relayed",
        provenance.revoke_claim_by_sig(brand.address, claim_id, 2, deadline, signed),
    )
    return GasReport(chain_id=int(w3.eth.chain_id), gas=gas)
