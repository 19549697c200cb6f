"""ProvenanceRegistry on a real anvil: brands, certifiers, products by GTIN, claims,
attestations and revocations, sent directly and relayed as EIP-712 signatures."""

from __future__ import annotations

import time
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3

from chain import eip712
from chain.actions import (
    AttestationInput,
    ClaimInput,
    ProductInput,
    gtin_is_valid,
    label_hash,
    product_id_of,
)
from chain.clients import ProvenanceRegistryClient
from chain.contract_errors import (
    AccessControlBadConfirmation,
    AccessControlUnauthorizedAccount,
    AttestationAlreadyExists,
    AttestationAlreadyRevoked,
    ClaimAlreadyExists,
    ClaimAlreadyRevoked,
    ClaimExpired,
    InvalidAccountNonce,
    InvalidGtin,
    InvalidSignature,
    NotAttestationIssuer,
    NotBrand,
    NotCertifier,
    NotClaimIssuer,
    NotProductBrand,
    ProductAlreadyRegistered,
    SignatureExpired,
    UnknownAttestation,
    UnknownClaim,
    UnknownProduct,
)

DAY = 86_400
BRAND_ROLE = Web3.keccak(text="BRAND_ROLE")
CERTIFIER_ROLE = Web3.keccak(text="CERTIFIER_ROLE")


def _addr(value: Any) -> str:
    return Web3.to_checksum_address(value)


def _product(gtin: int, name: str = "Oolong 100 g") -> ProductInput:
    return ProductInput(gtin, name, f"ipfs://bafy-{gtin}", label_hash(f"metadata {gtin}"))


def _claim(product_id: bytes, valid_until: int, kind: str = "batch") -> ClaimInput:
    return ClaimInput(
        product_id=product_id,
        claim_type=label_hash(kind),
        content_hash=label_hash(f"{kind} document"),
        uri=f"ipfs://bafy-{kind}",
        valid_until=valid_until,
    )


# --------------------------------------------------------------------------- admin


def test_admin_registers_brand_and_certifier(
    provenance: ProvenanceRegistryClient, accounts: Any
) -> None:
    assert not provenance.is_brand(accounts.brand.address)
    assert not provenance.is_certifier(accounts.certifier.address)
    provenance.register_brand(accounts.brand.address, "Acme")
    provenance.register_certifier(accounts.certifier.address, "Inspect")
    assert provenance.is_brand(accounts.brand.address)
    assert provenance.has_role("BRAND_ROLE", accounts.brand.address)
    assert provenance.is_certifier(accounts.certifier.address)
    assert not provenance.is_certifier(accounts.brand.address)
    assert not provenance.is_brand(accounts.stranger.address)
    assert provenance.has_role("DEFAULT_ADMIN_ROLE", accounts.admin.address)


def test_admin_grants_and_revokes_the_brand_role(
    provenance: ProvenanceRegistryClient, accounts: Any, as_role: Any
) -> None:
    provenance.grant_role("BRAND_ROLE", accounts.stranger.address)
    assert provenance.is_brand(accounts.stranger.address)
    provenance.revoke_role("BRAND_ROLE", accounts.stranger.address)
    assert not provenance.is_brand(accounts.stranger.address)
    with pytest.raises(NotBrand):
        as_role("stranger").provenance.register_product(_product(96385074))


@pytest.mark.parametrize(
    ("call", "role"),
    [
        (lambda c, a: c.register_brand(a.stranger.address, "Fake"), bytes(32)),
        (lambda c, a: c.register_certifier(a.stranger.address, "Fake"), bytes(32)),
        (lambda c, a: c.grant_role("BRAND_ROLE", a.stranger.address), bytes(32)),
        (lambda c, a: c.revoke_role("BRAND_ROLE", a.brand.address), bytes(32)),
        (lambda c, a: c.grant_role("DEFAULT_ADMIN_ROLE", a.stranger.address), bytes(32)),
    ],
    ids=["registerBrand", "registerCertifier", "grantRole", "revokeRole", "grantAdmin"],
)
def test_admin_writes_refuse_a_stranger(
    call: Any, role: bytes, brand: LocalAccount, accounts: Any, as_role: Any, provenance: Any
) -> None:
    with pytest.raises(AccessControlUnauthorizedAccount) as caught:
        call(as_role("stranger").provenance, accounts)
    assert _addr(caught.value.error_args["account"]) == accounts.stranger.address
    assert caught.value.error_args["neededRole"] == role
    # Nothing changed.
    assert not provenance.is_brand(accounts.stranger.address)
    assert not provenance.is_certifier(accounts.stranger.address)
    assert provenance.is_brand(brand.address)
    assert not provenance.has_role("DEFAULT_ADMIN_ROLE", accounts.stranger.address)


def test_renouncing_someone_elses_role_is_refused(
    brand: LocalAccount, accounts: Any, provenance: ProvenanceRegistryClient
) -> None:
    fn = provenance.contract.functions.renounceRole(BRAND_ROLE, brand.address)
    with pytest.raises(AccessControlBadConfirmation):
        provenance.relayer.transact(fn)  # type: ignore[union-attr]
    assert provenance.is_brand(brand.address)


# --------------------------------------------------------------------------- products


def test_brand_registers_product_directly(
    brand: LocalAccount, as_role: Any, provenance: ProvenanceRegistryClient
) -> None:
    gtin = 4006381333931
    assert provenance.brand_of(product_id_of(gtin)) is None
    sent = as_role("brand").provenance.register_product(_product(gtin))
    assert sent.value == product_id_of(gtin) == provenance.product_id_of(gtin)
    assert provenance.brand_of(sent.value) == brand.address
    events = provenance.contract.events.ProductRegistered().get_logs(
        from_block=sent.block_number, to_block=sent.block_number
    )
    assert [e["args"]["gtin"] for e in events] == [gtin]
    assert events[0]["args"]["name"] == "Oolong 100 g"


@pytest.mark.parametrize(
    "gtin",
    [
        96385074,  # GTIN-8 (EAN-8)
        36000291452,  # GTIN-12 (UPC-A 036000291452), leading zero dropped
        4006381333931,  # GTIN-13 (EAN-13)
        10012345678902,  # GTIN-14
        "00000096385074",  # GTIN-8 zero-padded to 14 digits
        "00036000291452",  # GTIN-12 zero-padded
        "04006381333931",  # GTIN-13 zero-padded
    ],
)
def test_valid_gtins_of_every_length_register(
    gtin: int | str, brand: LocalAccount, as_role: Any, provenance: ProvenanceRegistryClient
) -> None:
    assert gtin_is_valid(gtin)
    number = int(gtin)
    sent = as_role("brand").provenance.register_product(_product(number))
    assert sent.value == product_id_of(number)
    assert provenance.brand_of(product_id_of(number)) == brand.address


@pytest.mark.parametrize(
    "gtin",
    [
        4006381333932,  # GTIN-13 with a wrong check digit
        96385075,  # GTIN-8 with a wrong check digit
        10012345678903,  # GTIN-14 with a wrong check digit
        0,
        100012345678905,  # 15 digits
        2**64 - 1,
    ],
)
def test_invalid_gtin_is_refused(
    gtin: int, brand: LocalAccount, as_role: Any, provenance: ProvenanceRegistryClient
) -> None:
    assert not gtin_is_valid(gtin)
    with pytest.raises(InvalidGtin) as caught:
        as_role("brand").provenance.register_product(_product(gtin))
    assert caught.value.error_args == {"gtin": gtin}
    assert provenance.brand_of(product_id_of(gtin)) is None


def test_registering_a_product_twice_is_refused(product: Any, as_role: Any) -> None:
    with pytest.raises(ProductAlreadyRegistered) as caught:
        as_role("brand").provenance.register_product(_product(product.input.gtin, "Copycat"))
    assert caught.value.error_args == {"productId": product.id}


def test_non_brand_cannot_register_a_product(
    accounts: Any, as_role: Any, provenance: ProvenanceRegistryClient
) -> None:
    with pytest.raises(NotBrand) as caught:
        as_role("stranger").provenance.register_product(_product(96385074))
    assert _addr(caught.value.error_args["account"]) == accounts.stranger.address
    # A certifier is not a brand either.
    provenance.register_certifier(accounts.certifier.address, "Inspect")
    with pytest.raises(NotBrand):
        as_role("certifier").provenance.register_product(_product(96385074))
    assert provenance.brand_of(product_id_of(96385074)) is None


def test_product_registered_by_signature(
    brand: LocalAccount, relay: Any, provenance: ProvenanceRegistryClient, clock: Any
) -> None:
    product_input = _product(96385074)
    nonce, deadline = provenance.nonce(brand.address), clock.deadline()
    data = eip712.register_product(
        provenance.domain(), brand.address, product_input, nonce, deadline
    )
    sent = relay.provenance.register_product_by_sig(
        brand.address, product_input, nonce, deadline, eip712.sign(brand, data)
    )
    assert sent.value == product_id_of(96385074)
    assert provenance.brand_of(sent.value) == brand.address  # the brand, not the relayer
    assert provenance.nonce(brand.address) == nonce + 1


def test_product_signed_by_a_non_brand_is_refused(
    accounts: Any, relay: Any, provenance: ProvenanceRegistryClient, clock: Any
) -> None:
    stranger = accounts.stranger
    product_input = _product(96385074)
    deadline = clock.deadline()
    data = eip712.register_product(
        provenance.domain(), stranger.address, product_input, 0, deadline
    )
    with pytest.raises(NotBrand):
        relay.provenance.register_product_by_sig(
            stranger.address, product_input, 0, deadline, eip712.sign(stranger, data)
        )
    assert provenance.nonce(stranger.address) == 0


def test_product_signature_by_another_key_is_refused(
    brand: LocalAccount, accounts: Any, relay: Any, provenance: ProvenanceRegistryClient, clock: Any
) -> None:
    product_input = _product(96385074)
    deadline = clock.deadline()
    data = eip712.register_product(provenance.domain(), brand.address, product_input, 0, deadline)
    with pytest.raises(InvalidSignature) as caught:
        relay.provenance.register_product_by_sig(
            brand.address, product_input, 0, deadline, eip712.sign(accounts.stranger, data)
        )
    assert _addr(caught.value.error_args["signer"]) == brand.address
    assert provenance.brand_of(product_id_of(96385074)) is None


# --------------------------------------------------------------------------- claims


def test_brand_adds_and_revokes_a_claim_directly(
    brand: LocalAccount,
    product: Any,
    as_role: Any,
    provenance: ProvenanceRegistryClient,
    clock: Any,
) -> None:
    claim_input = _claim(product.id, clock.now() + 10 * DAY)
    sent = as_role("brand").provenance.add_claim(claim_input)
    assert sent.value == claim_input.claim_id()
    state = provenance.claim(sent.value)
    assert (state.issuer, state.valid_until, state.revoked) == (
        brand.address,
        claim_input.valid_until,
        False,
    )
    as_role("brand").provenance.revoke_claim(sent.value)
    assert provenance.claim(sent.value).revoked
    with pytest.raises(ClaimAlreadyRevoked):
        as_role("brand").provenance.revoke_claim(sent.value)


def test_claim_added_and_revoked_by_signature(
    brand: LocalAccount, product: Any, relay: Any, provenance: ProvenanceRegistryClient, clock: Any
) -> None:
    domain = provenance.domain()
    claim_input = _claim(product.id, clock.now() + 10 * DAY)
    nonce, deadline = provenance.nonce(brand.address), clock.deadline()
    data = eip712.product_claim(domain, brand.address, claim_input, nonce, deadline)
    sent = relay.provenance.add_claim_by_sig(
        brand.address, claim_input, nonce, deadline, eip712.sign(brand, data)
    )
    claim_id = sent.value
    assert claim_id == claim_input.claim_id()
    assert provenance.claim(claim_id).issuer == brand.address
    assert not provenance.claim(claim_id).revoked

    nonce += 1
    data = eip712.revoke_claim(domain, brand.address, claim_id, nonce, deadline)
    relay.provenance.revoke_claim_by_sig(
        brand.address, claim_id, nonce, deadline, eip712.sign(brand, data)
    )
    assert provenance.claim(claim_id).revoked
    assert provenance.nonce(brand.address) == nonce + 1


def test_replayed_claim_signature_is_refused(
    brand: LocalAccount, product: Any, relay: Any, provenance: ProvenanceRegistryClient, clock: Any
) -> None:
    claim_input = _claim(product.id, clock.now() + 10 * DAY)
    nonce, deadline = provenance.nonce(brand.address), clock.deadline()
    data = eip712.product_claim(provenance.domain(), brand.address, claim_input, nonce, deadline)
    signature = eip712.sign(brand, data)
    relay.provenance.add_claim_by_sig(brand.address, claim_input, nonce, deadline, signature)
    with pytest.raises(InvalidAccountNonce) as caught:
        relay.provenance.add_claim_by_sig(brand.address, claim_input, nonce, deadline, signature)
    assert caught.value.error_args["currentNonce"] == nonce + 1
    assert _addr(caught.value.error_args["account"]) == brand.address


def test_replayed_claim_revocation_is_refused(
    brand: LocalAccount, claim: Any, relay: Any, provenance: ProvenanceRegistryClient, clock: Any
) -> None:
    nonce, deadline = provenance.nonce(brand.address), clock.deadline()
    data = eip712.revoke_claim(provenance.domain(), brand.address, claim.id, nonce, deadline)
    signature = eip712.sign(brand, data)
    relay.provenance.revoke_claim_by_sig(brand.address, claim.id, nonce, deadline, signature)
    with pytest.raises(InvalidAccountNonce):
        relay.provenance.revoke_claim_by_sig(brand.address, claim.id, nonce, deadline, signature)


def test_expired_claim_signature_is_refused(
    brand: LocalAccount, product: Any, relay: Any, provenance: ProvenanceRegistryClient, clock: Any
) -> None:
    claim_input = _claim(product.id, clock.now() + 10 * DAY)
    deadline = clock.deadline(60)
    data = eip712.product_claim(provenance.domain(), brand.address, claim_input, 0, deadline)
    signature = eip712.sign(brand, data)
    clock.advance(61)
    with pytest.raises(SignatureExpired) as caught:
        relay.provenance.add_claim_by_sig(brand.address, claim_input, 0, deadline, signature)
    assert caught.value.error_args == {"deadline": deadline}
    assert not provenance.claim(claim_input.claim_id()).exists
    assert provenance.nonce(brand.address) == 0


def test_claim_signature_is_good_up_to_its_deadline_second(
    brand: LocalAccount, product: Any, relay: Any, provenance: ProvenanceRegistryClient, clock: Any
) -> None:
    claim_input = _claim(product.id, clock.now() + 10 * DAY)
    deadline = clock.deadline(120)
    data = eip712.product_claim(provenance.domain(), brand.address, claim_input, 0, deadline)
    clock.next_block_at(deadline)  # block.timestamp == deadline is still in time
    sent = relay.provenance.add_claim_by_sig(
        brand.address, claim_input, 0, deadline, eip712.sign(brand, data)
    )
    assert clock.now() == deadline
    assert provenance.claim(sent.value).issuer == brand.address


@pytest.mark.parametrize("wrong", ["chain_id", "verifying_contract", "name"])
def test_claim_signed_for_another_domain_is_refused(
    wrong: str,
    brand: LocalAccount,
    product: Any,
    relay: Any,
    provenance: ProvenanceRegistryClient,
    anchors: Any,
    clock: Any,
) -> None:
    domain = provenance.domain()
    other = {
        "chain_id": eip712.Domain(domain.name, domain.version, 1, domain.verifying_contract),
        "verifying_contract": eip712.Domain(
            domain.name, domain.version, domain.chain_id, anchors.address
        ),
        "name": eip712.Domain.of("AnchorRegistry", domain.chain_id, domain.verifying_contract),
    }[wrong]
    claim_input = _claim(product.id, clock.now() + 10 * DAY)
    deadline = clock.deadline()
    data = eip712.product_claim(other, brand.address, claim_input, 0, deadline)
    with pytest.raises(InvalidSignature):
        relay.provenance.add_claim_by_sig(
            brand.address, claim_input, 0, deadline, eip712.sign(brand, data)
        )


def test_high_s_claim_signature_is_refused(
    brand: LocalAccount,
    product: Any,
    relay: Any,
    provenance: ProvenanceRegistryClient,
    clock: Any,
    malleate: Any,
) -> None:
    claim_input = _claim(product.id, clock.now() + 10 * DAY)
    deadline = clock.deadline()
    data = eip712.product_claim(provenance.domain(), brand.address, claim_input, 0, deadline)
    signature = eip712.sign(brand, data)
    with pytest.raises(InvalidSignature):
        relay.provenance.add_claim_by_sig(
            brand.address, claim_input, 0, deadline, malleate(signature)
        )
    # The low-s original still works: the refusal was about the form, not the content.
    relay.provenance.add_claim_by_sig(brand.address, claim_input, 0, deadline, signature)
    assert provenance.claim(claim_input.claim_id()).exists


def test_claim_on_another_brands_product_is_refused(
    product: Any, accounts: Any, as_role: Any, provenance: ProvenanceRegistryClient, clock: Any
) -> None:
    provenance.register_brand(accounts.anchor2.address, "Rival Tea")
    claim_input = _claim(product.id, clock.now() + DAY)
    with pytest.raises(NotProductBrand) as caught:
        as_role("anchor2").provenance.add_claim(claim_input)
    assert caught.value.error_args["productId"] == product.id
    assert _addr(caught.value.error_args["account"]) == accounts.anchor2.address
    assert not provenance.claim(claim_input.claim_id()).exists


def test_claim_by_a_non_brand_is_refused(
    product: Any, accounts: Any, as_role: Any, clock: Any
) -> None:
    with pytest.raises(NotBrand):
        as_role("stranger").provenance.add_claim(_claim(product.id, clock.now() + DAY))


def test_claim_on_an_unknown_product_is_refused(
    brand: LocalAccount, as_role: Any, clock: Any
) -> None:
    unknown = product_id_of(96385074)
    with pytest.raises(UnknownProduct) as caught:
        as_role("brand").provenance.add_claim(_claim(unknown, clock.now() + DAY))
    assert caught.value.error_args == {"productId": unknown}


@pytest.mark.parametrize("offset", [0, -1, -DAY])
def test_claim_already_expired_is_refused(
    offset: int, product: Any, as_role: Any, clock: Any
) -> None:
    # The claim would be mined at the next block, whose timestamp is at least now.
    valid_until = clock.now() + offset
    claim_input = _claim(product.id, valid_until)
    with pytest.raises(ClaimExpired) as caught:
        as_role("brand").provenance.add_claim(claim_input)
    assert caught.value.error_args == {"claimId": claim_input.claim_id(), "validUntil": valid_until}


def test_duplicate_claim_is_refused(claim: Any, as_role: Any) -> None:
    with pytest.raises(ClaimAlreadyExists) as caught:
        as_role("brand").provenance.add_claim(claim.input)
    assert caught.value.error_args == {"claimId": claim.id}


def test_revoking_someone_elses_claim_is_refused(
    claim: Any,
    accounts: Any,
    as_role: Any,
    relay: Any,
    provenance: ProvenanceRegistryClient,
    clock: Any,
) -> None:
    with pytest.raises(NotClaimIssuer) as caught:
        as_role("stranger").provenance.revoke_claim(claim.id)
    assert caught.value.error_args["claimId"] == claim.id
    assert _addr(caught.value.error_args["account"]) == accounts.stranger.address
    # Nor can the admin, nor a stranger's own signature relayed.
    with pytest.raises(NotClaimIssuer):
        provenance.revoke_claim(claim.id)
    stranger, deadline = accounts.stranger, clock.deadline()
    data = eip712.revoke_claim(provenance.domain(), stranger.address, claim.id, 0, deadline)
    with pytest.raises(NotClaimIssuer):
        relay.provenance.revoke_claim_by_sig(
            stranger.address, claim.id, 0, deadline, eip712.sign(stranger, data)
        )
    assert not provenance.claim(claim.id).revoked


def test_revoking_an_unknown_claim_is_refused(brand: LocalAccount, as_role: Any) -> None:
    with pytest.raises(UnknownClaim):
        as_role("brand").provenance.revoke_claim(label_hash("no such claim"))


# --------------------------------------------------------------------------- attestations


def test_certifier_attests_and_revokes_directly(
    claim: Any, certifier: LocalAccount, as_role: Any, provenance: ProvenanceRegistryClient
) -> None:
    attestation_input = AttestationInput(claim.id, label_hash("report"), "ipfs://bafy-report")
    sent = as_role("certifier").provenance.attest(attestation_input)
    assert sent.value == attestation_input.attestation_id(certifier.address)
    state = provenance.attestation(sent.value)
    assert (state.certifier, state.revoked) == (certifier.address, False)
    as_role("certifier").provenance.revoke_attestation(sent.value)
    assert provenance.attestation(sent.value).revoked
    with pytest.raises(AttestationAlreadyRevoked):
        as_role("certifier").provenance.revoke_attestation(sent.value)


def test_attestation_made_and_revoked_by_signature(
    claim: Any,
    certifier: LocalAccount,
    relay: Any,
    provenance: ProvenanceRegistryClient,
    clock: Any,
) -> None:
    domain = provenance.domain()
    attestation_input = AttestationInput(claim.id, label_hash("report"), "ipfs://bafy-report")
    nonce, deadline = provenance.nonce(certifier.address), clock.deadline()
    data = eip712.attestation(domain, certifier.address, attestation_input, nonce, deadline)
    sent = relay.provenance.attest_by_sig(
        certifier.address, attestation_input, nonce, deadline, eip712.sign(certifier, data)
    )
    assert sent.value == attestation_input.attestation_id(certifier.address)
    assert provenance.attestation(sent.value).certifier == certifier.address

    nonce += 1
    data = eip712.revoke_attestation(domain, certifier.address, sent.value, nonce, deadline)
    relay.provenance.revoke_attestation_by_sig(
        certifier.address, sent.value, nonce, deadline, eip712.sign(certifier, data)
    )
    assert provenance.attestation(sent.value).revoked


def test_attestation_by_a_non_certifier_is_refused(
    claim: Any,
    brand: LocalAccount,
    accounts: Any,
    as_role: Any,
    relay: Any,
    provenance: Any,
    clock: Any,
) -> None:
    attestation_input = AttestationInput(claim.id, label_hash("report"), "ipfs://x")
    with pytest.raises(NotCertifier) as caught:
        as_role("stranger").provenance.attest(attestation_input)
    assert _addr(caught.value.error_args["account"]) == accounts.stranger.address
    # A brand cannot certify its own claim.
    with pytest.raises(NotCertifier):
        as_role("brand").provenance.attest(attestation_input)
    nonce, deadline = provenance.nonce(brand.address), clock.deadline()
    data = eip712.attestation(
        provenance.domain(), brand.address, attestation_input, nonce, deadline
    )
    with pytest.raises(NotCertifier):
        relay.provenance.attest_by_sig(
            brand.address, attestation_input, nonce, deadline, eip712.sign(brand, data)
        )


def test_attestation_of_an_unknown_claim_is_refused(certifier: LocalAccount, as_role: Any) -> None:
    unknown = label_hash("no such claim")
    with pytest.raises(UnknownClaim) as caught:
        as_role("certifier").provenance.attest(AttestationInput(unknown, bytes(32), ""))
    assert caught.value.error_args == {"claimId": unknown}


def test_attestation_of_a_revoked_claim_is_refused(
    claim: Any, certifier: LocalAccount, as_role: Any
) -> None:
    as_role("brand").provenance.revoke_claim(claim.id)
    with pytest.raises(ClaimAlreadyRevoked):
        as_role("certifier").provenance.attest(AttestationInput(claim.id, bytes(32), ""))


def test_attestation_of_an_expired_claim_is_refused(
    claim: Any, certifier: LocalAccount, as_role: Any, clock: Any
) -> None:
    clock.advance(31 * DAY)
    assert clock.now() > claim.input.valid_until
    with pytest.raises(ClaimExpired) as caught:
        as_role("certifier").provenance.attest(AttestationInput(claim.id, bytes(32), ""))
    assert caught.value.error_args == {"claimId": claim.id, "validUntil": claim.input.valid_until}


def test_time_travel_is_rewound_between_tests(clock: Any) -> None:
    # Runs after the test above in file order: the 31 days it skipped are gone again, so the
    # chain's clock is back near the wall clock anvil started from.
    assert abs(clock.now() - time.time()) < 3_600


def test_duplicate_attestation_is_refused(attestation: Any, as_role: Any) -> None:
    with pytest.raises(AttestationAlreadyExists) as caught:
        as_role("certifier").provenance.attest(attestation.input)
    assert caught.value.error_args == {"attestationId": attestation.id}


def test_revoking_someone_elses_attestation_is_refused(
    attestation: Any, accounts: Any, as_role: Any, provenance: ProvenanceRegistryClient
) -> None:
    provenance.register_certifier(accounts.anchor2.address, "Other Inspect")
    for role in ("stranger", "anchor2", "brand"):
        with pytest.raises(NotAttestationIssuer) as caught:
            as_role(role).provenance.revoke_attestation(attestation.id)
        assert caught.value.error_args["attestationId"] == attestation.id
    assert not provenance.attestation(attestation.id).revoked


def test_revoking_an_unknown_attestation_is_refused(certifier: LocalAccount, as_role: Any) -> None:
    with pytest.raises(UnknownAttestation):
        as_role("certifier").provenance.revoke_attestation(label_hash("nothing"))


# --------------------------------------------------------------------------- nonces


def test_claim_signature_cancelled_by_increase_nonce(
    brand: LocalAccount, product: Any, as_role: Any, relay: Any, provenance: Any, clock: Any
) -> None:
    claim_input = _claim(product.id, clock.now() + DAY)
    nonce, deadline = provenance.nonce(brand.address), clock.deadline()
    data = eip712.product_claim(provenance.domain(), brand.address, claim_input, nonce, deadline)
    signature = eip712.sign(brand, data)
    cancelled = as_role("brand").provenance.increase_nonce()
    assert cancelled.value == nonce
    assert provenance.nonce(brand.address) == nonce + 1
    with pytest.raises(InvalidAccountNonce):
        relay.provenance.add_claim_by_sig(brand.address, claim_input, nonce, deadline, signature)
    assert not provenance.claim(claim_input.claim_id()).exists


# --------------------------------------------------------------------------- EIP-1271


def test_contract_wallet_brand_signs_with_its_owner_key(
    wallet: Any, relay: Any, provenance: ProvenanceRegistryClient, clock: Any
) -> None:
    provenance.register_brand(wallet.address, "Wallet Brand")
    domain = provenance.domain()
    product_input = _product(96385074)
    deadline = clock.deadline()
    data = eip712.register_product(domain, wallet.address, product_input, 0, deadline)
    sent = relay.provenance.register_product_by_sig(
        wallet.address, product_input, 0, deadline, eip712.sign(wallet.owner, data)
    )
    assert provenance.brand_of(sent.value) == wallet.address

    wallet.set_accepting(False)
    assert not wallet.accepting()
    claim_input = _claim(sent.value, clock.now() + DAY)
    data = eip712.product_claim(domain, wallet.address, claim_input, 1, deadline)
    with pytest.raises(InvalidSignature) as caught:
        relay.provenance.add_claim_by_sig(
            wallet.address, claim_input, 1, deadline, eip712.sign(wallet.owner, data)
        )
    assert _addr(caught.value.error_args["signer"]) == wallet.address
    assert provenance.nonce(wallet.address) == 1


def test_contract_wallet_refuses_a_signature_by_another_key(
    wallet: Any, accounts: Any, relay: Any, provenance: ProvenanceRegistryClient, clock: Any
) -> None:
    provenance.register_brand(wallet.address, "Wallet Brand")
    product_input = _product(96385074)
    deadline = clock.deadline()
    data = eip712.register_product(provenance.domain(), wallet.address, product_input, 0, deadline)
    with pytest.raises(InvalidSignature):
        relay.provenance.register_product_by_sig(
            wallet.address, product_input, 0, deadline, eip712.sign(accounts.stranger, data)
        )


def test_contract_wallet_acts_directly_through_execute(
    wallet: Any, provenance: ProvenanceRegistryClient
) -> None:
    provenance.register_brand(wallet.address, "Wallet Brand")
    product_input = _product(96385074)
    call = provenance.contract.encode_abi("registerProduct", args=[product_input.as_tuple()])
    wallet.execute(provenance.address, call)
    assert provenance.brand_of(product_id_of(96385074)) == wallet.address
    # A revert inside the wallet's call surfaces as the registry's named error.
    with pytest.raises(ProductAlreadyRegistered):
        wallet.execute(provenance.address, call)
