"""The Python EIP-712 builders against the contracts: every primary type signed in Python is
accepted on chain (so the type strings match the Solidity typehashes), the domains match
``DOMAIN_SEPARATOR()``, and the Python GTIN rules agree with the contract's."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

import pytest
from eth_abi import encode
from eth_account.messages import encode_typed_data
from eth_hash.auto import keccak
from hypothesis import given
from hypothesis import strategies as st
from web3 import Web3
from web3.exceptions import ContractLogicError

from chain import eip712
from chain.actions import (
    AttestationInput,
    ClaimInput,
    ProductInput,
    gtin_is_valid,
    label_hash,
    product_id_of,
)
from chain.clients import AnchorRegistryClient, ProvenanceRegistryClient
from chain.clients.signed import SignedActionsClient
from chain.contract_errors import InvalidGtin
from chain.deploy import Deployment
from chain.paths import project_root
from chain.revert import decode_revert, revert_data

DAY = 86_400
EIP712_DOMAIN_TYPEHASH = keccak(
    b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)


class Setup:
    """Fixtures on demand, so that each signed-action case builds only what it needs."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._request = request

    def __getattr__(self, name: str) -> Any:
        return self._request.getfixturevalue(name)


# --------------------------------------------------------------------------- one case per type
# Each case signs its action with the chain.eip712 builder, has the relayer send it, and
# checks the state the action changed. The signer is never the sender.


def _register_product(s: Setup) -> None:
    brand, prov = s.brand, s.provenance
    product = ProductInput(96385074, "Pu'er cake 357 g", "ipfs://bafy-puer", label_hash("meta"))
    nonce, deadline = prov.nonce(brand.address), s.clock.deadline()
    data = eip712.register_product(prov.domain(), brand.address, product, nonce, deadline)
    sig = eip712.sign(brand, data)
    sent = s.relay.provenance.register_product_by_sig(brand.address, product, nonce, deadline, sig)
    assert prov.brand_of(sent.value) == brand.address


def _product_claim(s: Setup) -> None:
    brand, prov, product = s.brand, s.provenance, s.product
    claim = ClaimInput(
        product.id,
        label_hash("batch"),
        label_hash("lot 7"),
        "ipfs://bafy-lot7",
        s.clock.now() + DAY,
    )
    nonce, deadline = prov.nonce(brand.address), s.clock.deadline()
    data = eip712.product_claim(prov.domain(), brand.address, claim, nonce, deadline)
    sig = eip712.sign(brand, data)
    sent = s.relay.provenance.add_claim_by_sig(brand.address, claim, nonce, deadline, sig)
    assert prov.claim(sent.value).issuer == brand.address


def _revoke_claim(s: Setup) -> None:
    brand, prov, claim = s.brand, s.provenance, s.claim
    nonce, deadline = prov.nonce(brand.address), s.clock.deadline()
    data = eip712.revoke_claim(prov.domain(), brand.address, claim.id, nonce, deadline)
    sig = eip712.sign(brand, data)
    s.relay.provenance.revoke_claim_by_sig(brand.address, claim.id, nonce, deadline, sig)
    assert prov.claim(claim.id).revoked


def _attestation(s: Setup) -> None:
    certifier, prov, claim = s.certifier, s.provenance, s.claim
    attestation = AttestationInput(claim.id, label_hash("lab report"), "ipfs://bafy-lab")
    nonce, deadline = prov.nonce(certifier.address), s.clock.deadline()
    data = eip712.attestation(prov.domain(), certifier.address, attestation, nonce, deadline)
    sig = eip712.sign(certifier, data)
    sent = s.relay.provenance.attest_by_sig(certifier.address, attestation, nonce, deadline, sig)
    assert prov.attestation(sent.value).certifier == certifier.address


def _revoke_attestation(s: Setup) -> None:
    certifier, prov, attestation = s.certifier, s.provenance, s.attestation
    nonce, deadline = prov.nonce(certifier.address), s.clock.deadline()
    data = eip712.revoke_attestation(
        prov.domain(), certifier.address, attestation.id, nonce, deadline
    )
    sig = eip712.sign(certifier, data)
    s.relay.provenance.revoke_attestation_by_sig(
        certifier.address, attestation.id, nonce, deadline, sig
    )
    assert prov.attestation(attestation.id).revoked


def _endorsement(s: Setup) -> None:
    anchor, anchors, terms = s.anchor, s.anchors, s.terms
    nonce, deadline = anchors.nonce(anchor.address), s.clock.deadline()
    data = eip712.endorsement(anchors.domain(), anchor.address, terms, nonce, deadline)
    sig = eip712.sign(anchor, data)
    sent = s.relay.anchors.endorse_by_sig(anchor.address, terms, nonce, deadline, sig)
    assert anchors.endorsement(sent.value).anchor == anchor.address


def _revoke_endorsement(s: Setup) -> None:
    anchor, anchors, endorsement = s.anchor, s.anchors, s.endorsement
    nonce, deadline = anchors.nonce(anchor.address), s.clock.deadline()
    data = eip712.revoke_endorsement(anchors.domain(), anchor.address, endorsement, nonce, deadline)
    sig = eip712.sign(anchor, data)
    s.relay.anchors.revoke_endorsement_by_sig(anchor.address, endorsement, nonce, deadline, sig)
    assert anchors.endorsement(endorsement).revoked


def _cancel_nonce(contract: str) -> Callable[[Setup], None]:
    def case(s: Setup) -> None:
        account = s.accounts.stranger  # any account may cancel its own nonces
        client: SignedActionsClient = getattr(s, contract)
        relayed: SignedActionsClient = getattr(s.relay, contract)
        nonce, deadline = client.nonce(account.address), s.clock.deadline()
        data = eip712.cancel_nonce(client.domain(), account.address, nonce, deadline)
        relayed.increase_nonce_by_sig(account.address, nonce, deadline, eip712.sign(account, data))
        assert client.nonce(account.address) == nonce + 1

    return case


CASES: dict[tuple[str, str], Callable[[Setup], None]] = {
    ("RegisterProduct", "ProvenanceRegistry"): _register_product,
    ("ProductClaim", "ProvenanceRegistry"): _product_claim,
    ("RevokeClaim", "ProvenanceRegistry"): _revoke_claim,
    ("Attestation", "ProvenanceRegistry"): _attestation,
    ("RevokeAttestation", "ProvenanceRegistry"): _revoke_attestation,
    ("Endorsement", "AnchorRegistry"): _endorsement,
    ("RevokeEndorsement", "AnchorRegistry"): _revoke_endorsement,
    ("CancelNonce", "ProvenanceRegistry"): _cancel_nonce("provenance"),
    ("CancelNonce", "AnchorRegistry"): _cancel_nonce("anchors"),
}


def test_every_primary_type_has_an_on_chain_case() -> None:
    assert {primary for primary, _ in CASES} == set(eip712.TYPES)
    for (primary, contract), _ in CASES.items():
        if primary != "CancelNonce":
            assert eip712.VERIFIER[primary] == contract


@pytest.mark.parametrize(("primary", "contract"), list(CASES), ids=lambda v: str(v))
def test_contract_accepts_the_python_signature(
    primary: str, contract: str, request: pytest.FixtureRequest, deployment: Deployment
) -> None:
    # ``deployment`` is asked for by name, so the contracts are deployed before the autouse
    # snapshot is taken and that snapshot rewinds whatever the case sends. Fixtures fetched
    # later with getfixturevalue are not known when the snapshot is taken: a session fixture
    # first created that way would be reverted away after this test.
    CASES[primary, contract](Setup(request))


def _solidity_type_strings() -> set[str]:
    pattern = re.compile(r'keccak256\(\s*"([A-Za-z]+\([^"]*\))"\s*\)')
    found: set[str] = set()
    for path in (project_root() / "contracts" / "src").rglob("*.sol"):
        found.update(pattern.findall(path.read_text(encoding="utf-8")))
    return found


def test_type_strings_are_the_solidity_typehash_preimages() -> None:
    assert {eip712.type_string(t) for t in eip712.TYPES} == _solidity_type_strings()


@pytest.mark.parametrize("primary", list(eip712.TYPES))
def test_type_hash_is_keccak_of_the_type_string(primary: str) -> None:
    assert eip712.type_hash(primary) == keccak(eip712.type_string(primary).encode())
    assert eip712.type_string(primary).startswith(primary + "(")


# --------------------------------------------------------------------------- digests


def _struct_hash(primary: str, message: dict[str, Any]) -> bytes:
    """hashStruct as the contracts compute it: strings hashed, everything else ABI-encoded."""
    kinds = ["bytes32"]
    values: list[Any] = [eip712.type_hash(primary)]
    for name, kind in eip712.TYPES[primary]:
        if kind == "string":
            kinds.append("bytes32")
            values.append(keccak(message[name].encode()))
        else:
            kinds.append(kind)
            values.append(message[name])
    return keccak(encode(kinds, values))


def test_digest_is_the_solidity_hash_typed_data(
    provenance: ProvenanceRegistryClient,
    anchors: AnchorRegistryClient,
    accounts: Any,
    terms: Any,
    claim: Any,
) -> None:
    a = accounts.anchor.address
    builders = [
        (provenance, eip712.product_claim(provenance.domain(), a, claim.input, 3, 99)),
        (provenance, eip712.revoke_claim(provenance.domain(), a, claim.id, 4, 99)),
        (anchors, eip712.endorsement(anchors.domain(), a, terms, 5, 99)),
        (anchors, eip712.cancel_nonce(anchors.domain(), a, 6, 99)),
    ]
    for client, data in builders:
        expected = keccak(
            b"\x19\x01"
            + client.domain_separator()
            + _struct_hash(data["primaryType"], data["message"])
        )
        assert eip712.digest(data) == expected, data["primaryType"]


def test_sign_and_recover_round_trip(
    accounts: Any, anchors: AnchorRegistryClient, terms: Any
) -> None:
    data = eip712.endorsement(anchors.domain(), accounts.anchor.address, terms, 0, 10**10)
    signature = eip712.sign(accounts.anchor, data)
    assert len(signature) == 65
    assert signature[64] in (27, 28)
    assert eip712.recover(data, signature) == accounts.anchor.address
    assert eip712.recover(data, eip712.sign(accounts.stranger, data)) != accounts.anchor.address


def test_typed_data_refuses_missing_or_extra_fields(provenance: ProvenanceRegistryClient) -> None:
    domain = provenance.domain()
    with pytest.raises(ValueError, match="missing"):
        eip712.typed_data("CancelNonce", domain, {"account": "0x" + "00" * 20, "nonce": 0})
    with pytest.raises(ValueError, match="unexpected"):
        eip712.typed_data(
            "CancelNonce",
            domain,
            {"account": "0x" + "00" * 20, "nonce": 0, "deadline": 1, "extra": 2},
        )


# --------------------------------------------------------------------------- domains


def _separator(name: str, version: str, chain_id: int, contract: str) -> bytes:
    return keccak(
        encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [
                EIP712_DOMAIN_TYPEHASH,
                keccak(name.encode()),
                keccak(version.encode()),
                chain_id,
                contract,
            ],
        )
    )


@pytest.mark.parametrize("fixture", ["provenance", "anchors"])
def test_domain_matches_the_contracts_domain_separator(
    fixture: str, request: pytest.FixtureRequest, w3: Web3, deployment: Deployment
) -> None:
    client: SignedActionsClient = request.getfixturevalue(fixture)
    domain = eip712.Domain.of(client.contract_name, w3.eth.chain_id, client.address)
    assert domain == client.domain()
    on_chain = client.domain_separator()
    assert on_chain == _separator(
        eip712.DOMAIN_NAMES[client.contract_name], "1", w3.eth.chain_id, client.address
    )
    # eth-account's encoding of the same domain agrees (the header of every signed message).
    signable = encode_typed_data(full_message=eip712.cancel_nonce(domain, client.address, 0, 0))
    assert signable.header == on_chain
    # EIP-5267: the contract describes its own domain.
    fields, name, version, chain_id, contract, salt, extensions = (
        client.contract.functions.eip712Domain().call()
    )
    assert (name, version, chain_id, contract) == (
        domain.name,
        domain.version,
        domain.chain_id,
        domain.verifying_contract,
    )
    assert fields == b"\x0f"
    assert salt == bytes(32)
    assert extensions == []


def test_the_two_registries_have_distinct_domains(
    provenance: ProvenanceRegistryClient, anchors: AnchorRegistryClient
) -> None:
    assert provenance.domain_separator() != anchors.domain_separator()
    assert provenance.domain().name != anchors.domain().name


# --------------------------------------------------------------------------- GTINs


def _gtin_sample() -> list[int]:
    rng = random.Random(20_261_125)
    sample: list[int] = []
    # Random bodies of every GTIN length with each of the ten check digits: one is valid.
    for _ in range(30):
        body_digits = rng.choice([7, 11, 12, 13])
        body = rng.randrange(10 ** (body_digits - 1), 10**body_digits)
        sample.extend(body * 10 + check for check in range(10))
    # Anything that fits a uint64, at every magnitude.
    for _ in range(60):
        sample.append(rng.randrange(1, 10 ** rng.randrange(1, 20)))
    sample.extend([0, 1, 9, 10, 99_999_999_999_994, 99_999_999_999_999, 10**14, 2**64 - 1])
    return sample


def test_gtin_validation_agrees_with_the_contract(
    provenance: ProvenanceRegistryClient, brand: Any
) -> None:
    def contract_accepts(gtin: int) -> bool:
        fn = provenance.contract.functions.registerProduct((gtin, "", "", bytes(32)))
        try:
            assert bytes(fn.call({"from": brand.address})) == product_id_of(gtin)
        except ContractLogicError as exc:
            data = revert_data(exc)
            assert data is not None
            error = decode_revert(data)
            assert isinstance(error, InvalidGtin), error
            assert error.error_args == {"gtin": gtin}
            return False
        return True

    sample = _gtin_sample()
    verdicts = {gtin: contract_accepts(gtin) for gtin in sample}
    disagreements = [g for g, ok in verdicts.items() if gtin_is_valid(g) != ok]
    assert disagreements == []
    # The zero-padded 14-digit text form gets the same verdict.
    assert all(gtin_is_valid(str(g).zfill(14)) == ok for g, ok in verdicts.items())
    # Exactly one check digit of ten is valid for each body.
    for start in range(0, 300, 10):
        assert sum(verdicts[g] for g in sample[start : start + 10]) == 1
    assert 30 <= sum(verdicts.values()) < len(verdicts)


def test_product_id_agrees_with_the_contract(provenance: ProvenanceRegistryClient) -> None:
    for gtin in _gtin_sample()[::3]:
        assert provenance.product_id_of(gtin) == product_id_of(gtin), gtin


@given(st.integers(min_value=1, max_value=99_999_999_999_999))
def test_gtin_text_and_number_forms_agree(gtin: int) -> None:
    verdict = gtin_is_valid(gtin)
    assert gtin_is_valid(str(gtin)) == verdict
    assert gtin_is_valid(str(gtin).zfill(14)) == verdict
    # Changing only the check digit changes the verdict whenever the GTIN was valid.
    if verdict:
        assert not gtin_is_valid(gtin - gtin % 10 + (gtin + 1) % 10)


@pytest.mark.parametrize("bad", ["", "-4006381333931", "4006381333931a", "4 006381333931", -1])
def test_gtin_text_must_be_digits(bad: str | int) -> None:
    assert not gtin_is_valid(bad)


def test_well_known_gtins() -> None:
    for valid in (96385074, 36000291452, 4006381333931, 10012345678902, "00000096385074"):
        assert gtin_is_valid(valid), valid
    for invalid in (96385075, 4006381333932, 0, 10**14 + 5):
        assert not gtin_is_valid(invalid), invalid
