"""Per-test chain setup for the contract tests: role clients, registered participants, a
product with a claim and an attestation, an anchor with terms to endorse, a deployed
EIP-1271 wallet, and a clock that reads and moves the chain's time.

Everything here runs inside the autouse snapshot of ``tests/conftest.py`` (every fixture
uses ``w3``), so whatever a fixture sends, and any time travel, is rewound after the test.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract

from chain.actions import (
    AttestationInput,
    ClaimInput,
    EndorsementTerms,
    ProductInput,
    claims_digest,
    currency_code,
    label_hash,
)
from chain.artifacts import load_artifact
from chain.clients import AnchorRegistryClient, ProvenanceRegistryClient, SaleLedgerClient
from chain.clients.base import relayer_for
from chain.devnet import DevnetInfo, live_children, throwaway_anvil
from chain.keys import ANVIL_DEV_KEYS, account_from_key
from chain.relayer import Relayer

#: Order of the secp256k1 group.
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

#: A real GS1 GTIN-13 (valid check digit), used for the fixture product.
PRODUCT_GTIN = 4006381333931

DAY = 86_400


# --------------------------------------------------------------------------- time


@dataclass(frozen=True)
class Clock:
    """The chain's notion of now, and ways to move it (anvil only)."""

    w3: Web3

    def rpc(self, method: str, params: list[Any] | None = None) -> Any:
        """A raw JSON-RPC request that must succeed."""
        response = self.w3.provider.make_request(method, params or [])  # type: ignore[arg-type]
        assert "error" not in response, response
        return response.get("result")

    def now(self) -> int:
        """Timestamp of the latest block (what the next block is at least)."""
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def deadline(self, seconds: int = 3_600) -> int:
        """A signature deadline ``seconds`` after the latest block."""
        return self.now() + seconds

    def advance(self, seconds: int) -> int:
        """Move time forward by ``seconds`` and mine a block at the new time; returns it."""
        self.rpc("evm_increaseTime", [seconds])
        self.rpc("evm_mine")
        return self.now()

    def next_block_at(self, timestamp: int) -> None:
        """Make the next mined block carry exactly ``timestamp``."""
        self.rpc("evm_setNextBlockTimestamp", [timestamp])


@pytest.fixture
def clock(w3: Web3) -> Clock:
    """Reads and moves the chain's time; rewound with the snapshot after the test."""
    return Clock(w3)


# --------------------------------------------------------------------------- senders


@dataclass(frozen=True)
class Clients:
    """The three contracts' clients, all sending as one account."""

    provenance: ProvenanceRegistryClient
    anchors: AnchorRegistryClient
    ledger: SaleLedgerClient


@pytest.fixture
def as_role(
    provenance: ProvenanceRegistryClient,
    anchors: AnchorRegistryClient,
    ledger: SaleLedgerClient,
    relayers: dict[str, Relayer],
) -> Callable[[str], Clients]:
    """``as_role("stranger").provenance.register_brand(...)`` sends as that role's account."""

    def make(role: str) -> Clients:
        relayer = relayers[role]
        return Clients(
            provenance.with_sender(relayer),
            anchors.with_sender(relayer),
            ledger.with_sender(relayer),
        )

    return make


@pytest.fixture
def relay(as_role: Callable[[str], Clients]) -> Clients:
    """Clients sending as the relayer account, which relays every ``*BySig`` call."""
    return as_role("relayer")


# --------------------------------------------------------------------------- signatures


def high_s(signature: bytes) -> bytes:
    """The malleated twin of a 65-byte ``r || s || v`` signature: s' = n - s, v flipped."""
    assert len(signature) == 65
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    assert v in (27, 28)
    assert s <= SECP256K1_N // 2, "eth-account signs with low s"
    return r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])


@pytest.fixture
def malleate() -> Callable[[bytes], bytes]:
    """:func:`high_s`, as a fixture so that every test module can use it."""
    return high_s


# --------------------------------------------------------------------------- provenance


@dataclass(frozen=True)
class Product:
    """A registered product."""

    input: ProductInput
    id: bytes


@dataclass(frozen=True)
class Claim:
    """A claim on the chain."""

    input: ClaimInput
    id: bytes


@dataclass(frozen=True)
class Attestation:
    """An attestation on the chain."""

    input: AttestationInput
    id: bytes


@pytest.fixture
def brand(provenance: ProvenanceRegistryClient, accounts: Any) -> LocalAccount:
    """The brand account, registered by the admin."""
    provenance.register_brand(accounts.brand.address, "Acme Tea Co.")
    account: LocalAccount = accounts.brand
    return account


@pytest.fixture
def certifier(provenance: ProvenanceRegistryClient, accounts: Any) -> LocalAccount:
    """The certifier account, registered by the admin."""
    provenance.register_certifier(accounts.certifier.address, "Organic Inspect Ltd.")
    account: LocalAccount = accounts.certifier
    return account


@pytest.fixture
def product(brand: LocalAccount, as_role: Callable[[str], Clients]) -> Product:
    """A product registered directly by the brand."""
    product_input = ProductInput(
        gtin=PRODUCT_GTIN,
        name="Longjing green tea 250 g",
        uri="ipfs://bafy-product",
        metadata_hash=label_hash("product metadata"),
    )
    sent = as_role("brand").provenance.register_product(product_input)
    return Product(product_input, sent.value)


@pytest.fixture
def claim(product: Product, as_role: Callable[[str], Clients], clock: Clock) -> Claim:
    """An origin claim about the product, added directly by the brand, valid for 30 days."""
    claim_input = ClaimInput(
        product_id=product.id,
        claim_type=label_hash("origin"),
        content_hash=label_hash("origin certificate pdf"),
        uri="ipfs://bafy-origin",
        valid_until=clock.now() + 30 * DAY,
    )
    sent = as_role("brand").provenance.add_claim(claim_input)
    return Claim(claim_input, sent.value)


@pytest.fixture
def attestation(
    claim: Claim, certifier: LocalAccount, as_role: Callable[[str], Clients]
) -> Attestation:
    """The certifier's attestation of the claim, made directly."""
    attestation_input = AttestationInput(
        claim_id=claim.id, report_hash=label_hash("inspection report"), uri="ipfs://bafy-report"
    )
    sent = as_role("certifier").provenance.attest(attestation_input)
    return Attestation(attestation_input, sent.value)


# --------------------------------------------------------------------------- anchors


@pytest.fixture
def anchor(anchors: AnchorRegistryClient, accounts: Any) -> LocalAccount:
    """The anchor account, registered by the admin under handle ``@xiaoli``."""
    anchors.register_anchor(accounts.anchor.address, "@xiaoli")
    account: LocalAccount = accounts.anchor
    return account


@pytest.fixture
def terms(product: Product, claim: Claim, clock: Clock) -> EndorsementTerms:
    """Endorsement terms for the product, valid for a week from now."""
    now = clock.now()
    return EndorsementTerms(
        product_id=product.id,
        claims_digest=claims_digest([claim.id]),
        room_id=label_hash("room-8848"),
        sponsored=True,
        commission_bps=1_500,
        unit_price=12_900,
        currency=currency_code("CNY"),
        valid_from=now,
        valid_until=now + 7 * DAY,
    )


@pytest.fixture
def endorsement(
    anchor: LocalAccount, terms: EndorsementTerms, as_role: Callable[[str], Clients]
) -> bytes:
    """The id of an endorsement the anchor made directly on ``terms``."""
    return as_role("anchor").anchors.endorse(terms).value


# --------------------------------------------------------------------------- EIP-1271


@dataclass(frozen=True)
class Wallet:
    """A deployed MockERC1271Wallet and its owner's sender."""

    address: str
    contract: Contract
    owner: LocalAccount
    owner_relayer: Relayer

    def set_accepting(self, accepting: bool) -> None:
        """Make the wallet accept (or reject) every signature."""
        self.owner_relayer.transact(self.contract.functions.setAccepting(accepting))

    def accepting(self) -> bool:
        """Whether the wallet currently accepts its owner's signatures."""
        return bool(self.contract.functions.accepting().call())

    def execute(self, target: str, data: bytes | str) -> None:
        """Have the wallet itself call ``target`` with ``data`` (acting directly)."""
        self.owner_relayer.transact(
            self.contract.functions.execute(Web3.to_checksum_address(target), data)
        )


@pytest.fixture
def wallet_owner() -> LocalAccount:
    """The key that owns the contract wallet (a funded anvil dev key not used by any role)."""
    return account_from_key(ANVIL_DEV_KEYS[7])


@pytest.fixture
def wallet(w3: Web3, wallet_owner: LocalAccount) -> Wallet:
    """A MockERC1271Wallet owned by ``wallet_owner``, deployed from its artifact."""
    artifact = load_artifact("MockERC1271Wallet")
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    owner_relayer = relayer_for(w3, wallet_owner)
    receipt = owner_relayer.transact(factory.constructor(wallet_owner.address))  # type: ignore[arg-type]
    address = Web3.to_checksum_address(receipt["contractAddress"])
    contract = w3.eth.contract(address=address, abi=artifact["abi"])
    assert contract.functions.owner().call() == wallet_owner.address
    return Wallet(address, contract, wallet_owner, owner_relayer)


@pytest.fixture
def no_leaked_anvils() -> Iterator[None]:
    """Fail the test if an anvil it started is still running once it is over."""
    before = set(live_children())
    yield
    leaked = set(live_children()) - before
    for pgid in leaked:
        os.killpg(pgid, signal.SIGKILL)
    assert not leaked, f"test left anvil process groups running: {sorted(leaked)}"


@pytest.fixture
def fresh_anvil() -> Iterator[DevnetInfo]:
    """A stateless anvil of this test's own (the session ``anvil`` is shared)."""
    with throwaway_anvil() as info:
        yield info
