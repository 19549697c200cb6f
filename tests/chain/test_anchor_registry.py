"""AnchorRegistry on a real anvil: anchors, endorsements (direct and relayed), revocations,
nonce cancellation, contract-wallet anchors and live sessions."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from eth_abi import encode
from eth_account.signers.local import LocalAccount
from eth_hash.auto import keccak
from eth_keys import keys
from web3 import Web3

from chain import eip712
from chain.actions import EndorsementTerms, label_hash, product_id_of
from chain.clients import AnchorRegistryClient
from chain.contract_errors import (
    AccessControlUnauthorizedAccount,
    AnchorAlreadyRegistered,
    EndorsementAlreadyRevoked,
    EndorsementExpired,
    HandleTaken,
    InvalidAccountNonce,
    InvalidCommission,
    InvalidSignature,
    InvalidValidityWindow,
    NotAnchor,
    NotEndorser,
    NotSessionManager,
    SessionAlreadyClosed,
    SessionAlreadyExists,
    SignatureExpired,
    UnknownEndorsement,
    UnknownProduct,
    UnknownSession,
)

DAY = 86_400
OPERATOR_ROLE = Web3.keccak(text="OPERATOR_ROLE")
SESSION = label_hash("session-1")
ROOM = label_hash("room-8848")
RECORDING = label_hash("recording transcript")


def _addr(value: Any) -> str:
    return Web3.to_checksum_address(value)


def _endorsement_id(anchor: str, terms: EndorsementTerms, nonce: int) -> bytes:
    """keccak256(abi.encode(anchor, terms, nonce)), computed independently of the contract."""
    terms_type = "(bytes32,bytes32,bytes32,bool,uint16,uint256,bytes3,uint64,uint64)"
    return keccak(encode(["address", terms_type, "uint256"], [anchor, terms.as_tuple(), nonce]))


def _signed_endorsement(
    anchors: AnchorRegistryClient,
    signer: LocalAccount,
    anchor: str,
    terms: EndorsementTerms,
    deadline: int,
    nonce: int | None = None,
) -> tuple[int, bytes]:
    """(nonce, signature) of ``signer``'s Endorsement for ``anchor`` with its next nonce."""
    nonce = anchors.nonce(anchor) if nonce is None else nonce
    data = eip712.endorsement(anchors.domain(), anchor, terms, nonce, deadline)
    return nonce, eip712.sign(signer, data)


# --------------------------------------------------------------------------- anchors


def test_admin_registers_and_removes_an_anchor(
    anchors: AnchorRegistryClient, accounts: Any, as_role: Any, terms: EndorsementTerms
) -> None:
    address = accounts.anchor.address
    assert anchors.handle_of(address) is None
    anchors.register_anchor(address, "@xiaoli")
    assert anchors.handle_of(address) == label_hash("@xiaoli")
    anchors.remove_anchor(address)
    assert anchors.handle_of(address) is None
    with pytest.raises(NotAnchor) as caught:
        as_role("anchor").anchors.endorse(terms)
    assert _addr(caught.value.error_args["account"]) == address
    # The handle is free again.
    anchors.register_anchor(accounts.anchor2.address, "@xiaoli")
    assert anchors.handle_of(accounts.anchor2.address) == label_hash("@xiaoli")


def test_anchor_registered_twice_is_refused(anchor: LocalAccount, anchors: Any) -> None:
    with pytest.raises(AnchorAlreadyRegistered):
        anchors.register_anchor(anchor.address, "@another-handle")
    assert anchors.handle_of(anchor.address) == label_hash("@xiaoli")


def test_taken_handle_is_refused(anchor: LocalAccount, anchors: Any, accounts: Any) -> None:
    with pytest.raises(HandleTaken) as caught:
        anchors.register_anchor(accounts.anchor2.address, "@xiaoli")
    assert caught.value.error_args == {"handleHash": label_hash("@xiaoli")}
    assert anchors.handle_of(accounts.anchor2.address) is None


def test_removing_a_non_anchor_is_refused(anchors: Any, accounts: Any) -> None:
    with pytest.raises(NotAnchor):
        anchors.remove_anchor(accounts.stranger.address)


@pytest.mark.parametrize(
    "call",
    [
        lambda c, a: c.register_anchor(a.stranger.address, "@fake"),
        lambda c, a: c.remove_anchor(a.anchor.address),
        lambda c, a: c.grant_role("OPERATOR_ROLE", a.stranger.address),
        lambda c, a: c.revoke_role("OPERATOR_ROLE", a.relayer.address),
    ],
    ids=["registerAnchor", "removeAnchor", "grantRole", "revokeRole"],
)
def test_admin_writes_refuse_a_stranger(
    call: Any, anchor: LocalAccount, accounts: Any, as_role: Any, anchors: Any
) -> None:
    with pytest.raises(AccessControlUnauthorizedAccount) as caught:
        call(as_role("stranger").anchors, accounts)
    assert _addr(caught.value.error_args["account"]) == accounts.stranger.address
    assert caught.value.error_args["neededRole"] == bytes(32)
    assert anchors.handle_of(anchor.address) == label_hash("@xiaoli")
    assert anchors.handle_of(accounts.stranger.address) is None
    assert anchors.has_role("OPERATOR_ROLE", accounts.relayer.address)
    assert not anchors.has_role("OPERATOR_ROLE", accounts.stranger.address)


# --------------------------------------------------------------------------- endorsements


def test_anchor_endorses_directly(
    anchor: LocalAccount, terms: EndorsementTerms, as_role: Any, anchors: AnchorRegistryClient
) -> None:
    assert anchors.nonce(anchor.address) == 0
    sent = as_role("anchor").anchors.endorse(terms)
    assert sent.value == _endorsement_id(anchor.address, terms, 0)
    assert sent.value == anchors.endorsement_id_of(anchor.address, terms, 0)
    state = anchors.endorsement(sent.value)
    assert (state.anchor, state.valid_until, state.revoked) == (
        anchor.address,
        terms.valid_until,
        False,
    )
    # A direct endorsement consumes a nonce too, so the same terms make a new id.
    assert anchors.nonce(anchor.address) == 1
    again = as_role("anchor").anchors.endorse(terms)
    assert again.value == _endorsement_id(anchor.address, terms, 1) != sent.value


def test_endorsement_event_carries_the_terms(
    anchor: LocalAccount, terms: EndorsementTerms, as_role: Any, anchors: AnchorRegistryClient
) -> None:
    sent = as_role("anchor").anchors.endorse(terms)
    logs = anchors.contract.events.EndorsementRecorded().get_logs(
        from_block=sent.block_number, to_block=sent.block_number
    )
    assert len(logs) == 1
    args = logs[0]["args"]
    assert args["anchor"] == anchor.address
    assert args["nonce"] == 0
    assert tuple(args["terms"].values()) == terms.as_tuple()


def test_endorsement_relayed_by_signature(
    anchor: LocalAccount,
    terms: EndorsementTerms,
    relay: Any,
    anchors: AnchorRegistryClient,
    clock: Any,
) -> None:
    deadline = clock.deadline()
    nonce, signature = _signed_endorsement(anchors, anchor, anchor.address, terms, deadline)
    sent = relay.anchors.endorse_by_sig(anchor.address, terms, nonce, deadline, signature)
    assert sent.value == _endorsement_id(anchor.address, terms, nonce)
    assert anchors.endorsement(sent.value).anchor == anchor.address  # not the relayer
    assert anchors.nonce(anchor.address) == nonce + 1


def test_anchor_revokes_directly(endorsement: bytes, as_role: Any, anchors: Any) -> None:
    assert not anchors.endorsement(endorsement).revoked
    as_role("anchor").anchors.revoke_endorsement(endorsement)
    assert anchors.endorsement(endorsement).revoked
    with pytest.raises(EndorsementAlreadyRevoked):
        as_role("anchor").anchors.revoke_endorsement(endorsement)


def test_revocation_relayed_by_signature(
    anchor: LocalAccount, endorsement: bytes, relay: Any, anchors: AnchorRegistryClient, clock: Any
) -> None:
    nonce, deadline = anchors.nonce(anchor.address), clock.deadline()
    data = eip712.revoke_endorsement(anchors.domain(), anchor.address, endorsement, nonce, deadline)
    signature = eip712.sign(anchor, data)
    relay.anchors.revoke_endorsement_by_sig(anchor.address, endorsement, nonce, deadline, signature)
    assert anchors.endorsement(endorsement).revoked
    assert anchors.nonce(anchor.address) == nonce + 1
    with pytest.raises(InvalidAccountNonce):
        relay.anchors.revoke_endorsement_by_sig(
            anchor.address, endorsement, nonce, deadline, signature
        )


def test_revoking_an_unknown_endorsement_is_refused(anchor: LocalAccount, as_role: Any) -> None:
    with pytest.raises(UnknownEndorsement):
        as_role("anchor").anchors.revoke_endorsement(label_hash("nothing"))


def test_revoking_someone_elses_endorsement_is_refused(
    endorsement: bytes, accounts: Any, as_role: Any, anchors: Any, relay: Any, clock: Any
) -> None:
    anchors.register_anchor(accounts.anchor2.address, "@rival")
    for role in ("anchor2", "stranger", "admin", "relayer"):
        with pytest.raises(NotEndorser) as caught:
            as_role(role).anchors.revoke_endorsement(endorsement)
        assert caught.value.error_args["endorsementId"] == endorsement
        assert _addr(caught.value.error_args["account"]) == getattr(accounts, role).address
    rival, deadline = accounts.anchor2, clock.deadline()
    nonce = anchors.nonce(rival.address)
    data = eip712.revoke_endorsement(anchors.domain(), rival.address, endorsement, nonce, deadline)
    with pytest.raises(NotEndorser):
        relay.anchors.revoke_endorsement_by_sig(
            rival.address, endorsement, nonce, deadline, eip712.sign(rival, data)
        )
    assert not anchors.endorsement(endorsement).revoked


def test_replayed_endorsement_is_refused(
    anchor: LocalAccount, terms: EndorsementTerms, relay: Any, anchors: Any, clock: Any
) -> None:
    deadline = clock.deadline()
    nonce, signature = _signed_endorsement(anchors, anchor, anchor.address, terms, deadline)
    relay.anchors.endorse_by_sig(anchor.address, terms, nonce, deadline, signature)
    with pytest.raises(InvalidAccountNonce) as caught:
        relay.anchors.endorse_by_sig(anchor.address, terms, nonce, deadline, signature)
    assert _addr(caught.value.error_args["account"]) == anchor.address
    assert caught.value.error_args["currentNonce"] == nonce + 1
    assert anchors.nonce(anchor.address) == nonce + 1


def test_expired_endorsement_signature_is_refused(
    anchor: LocalAccount, terms: EndorsementTerms, relay: Any, anchors: Any, clock: Any
) -> None:
    deadline = clock.deadline(30)
    nonce, signature = _signed_endorsement(anchors, anchor, anchor.address, terms, deadline)
    clock.advance(31)
    with pytest.raises(SignatureExpired) as caught:
        relay.anchors.endorse_by_sig(anchor.address, terms, nonce, deadline, signature)
    assert caught.value.error_args == {"deadline": deadline}
    assert anchors.nonce(anchor.address) == nonce


def test_deadline_in_the_past_is_refused_without_moving_time(
    anchor: LocalAccount, terms: EndorsementTerms, relay: Any, anchors: Any, clock: Any
) -> None:
    deadline = clock.now() - 1
    nonce, signature = _signed_endorsement(anchors, anchor, anchor.address, terms, deadline)
    with pytest.raises(SignatureExpired):
        relay.anchors.endorse_by_sig(anchor.address, terms, nonce, deadline, signature)


@pytest.mark.parametrize("wrong", ["chain_id", "verifying_contract"])
def test_endorsement_signed_for_another_domain_is_refused(
    wrong: str,
    anchor: LocalAccount,
    terms: EndorsementTerms,
    relay: Any,
    anchors: AnchorRegistryClient,
    provenance: Any,
    clock: Any,
) -> None:
    domain = anchors.domain()
    other = (
        replace(domain, chain_id=domain.chain_id + 1)
        if wrong == "chain_id"
        else replace(domain, verifying_contract=provenance.address)
    )
    deadline, nonce = clock.deadline(), anchors.nonce(anchor.address)
    data = eip712.endorsement(other, anchor.address, terms, nonce, deadline)
    with pytest.raises(InvalidSignature) as caught:
        relay.anchors.endorse_by_sig(
            anchor.address, terms, nonce, deadline, eip712.sign(anchor, data)
        )
    assert _addr(caught.value.error_args["signer"]) == anchor.address
    assert anchors.nonce(anchor.address) == nonce


def test_signature_for_other_terms_is_refused(
    anchor: LocalAccount, terms: EndorsementTerms, relay: Any, anchors: Any, clock: Any
) -> None:
    deadline = clock.deadline()
    nonce, signature = _signed_endorsement(anchors, anchor, anchor.address, terms, deadline)
    cheaper = replace(terms, unit_price=terms.unit_price - 1)
    with pytest.raises(InvalidSignature):
        relay.anchors.endorse_by_sig(anchor.address, cheaper, nonce, deadline, signature)
    # The deadline is signed too.
    with pytest.raises(InvalidSignature):
        relay.anchors.endorse_by_sig(anchor.address, terms, nonce, deadline + 1, signature)


def test_unregistered_account_signing_its_own_endorsement_is_refused(
    accounts: Any, terms: EndorsementTerms, relay: Any, as_role: Any, anchors: Any, clock: Any
) -> None:
    stranger, deadline = accounts.stranger, clock.deadline()
    nonce, signature = _signed_endorsement(anchors, stranger, stranger.address, terms, deadline)
    with pytest.raises(NotAnchor) as caught:
        relay.anchors.endorse_by_sig(stranger.address, terms, nonce, deadline, signature)
    assert _addr(caught.value.error_args["account"]) == stranger.address
    # Nor may it endorse directly.
    with pytest.raises(NotAnchor):
        as_role("stranger").anchors.endorse(terms)
    assert anchors.nonce(stranger.address) == nonce


def test_someone_elses_key_signing_for_the_anchor_is_refused(
    anchor: LocalAccount,
    accounts: Any,
    terms: EndorsementTerms,
    relay: Any,
    anchors: Any,
    clock: Any,
) -> None:
    deadline = clock.deadline()
    for impostor in (accounts.stranger, accounts.admin, accounts.relayer):
        nonce, signature = _signed_endorsement(anchors, impostor, anchor.address, terms, deadline)
        with pytest.raises(InvalidSignature) as caught:
            relay.anchors.endorse_by_sig(anchor.address, terms, nonce, deadline, signature)
        assert _addr(caught.value.error_args["signer"]) == anchor.address
    assert anchors.nonce(anchor.address) == 0


def test_removed_anchor_signature_is_refused(
    anchor: LocalAccount, terms: EndorsementTerms, relay: Any, anchors: Any, clock: Any
) -> None:
    deadline = clock.deadline()
    nonce, signature = _signed_endorsement(anchors, anchor, anchor.address, terms, deadline)
    anchors.remove_anchor(anchor.address)
    with pytest.raises(NotAnchor):
        relay.anchors.endorse_by_sig(anchor.address, terms, nonce, deadline, signature)


def test_high_s_endorsement_signature_is_refused(
    anchor: LocalAccount,
    terms: EndorsementTerms,
    relay: Any,
    anchors: AnchorRegistryClient,
    clock: Any,
    malleate: Any,
) -> None:
    deadline = clock.deadline()
    nonce, signature = _signed_endorsement(anchors, anchor, anchor.address, terms, deadline)
    twin = malleate(signature)
    assert twin != signature
    # Plain ecrecover accepts the twin: only the contract's low-s rule refuses it.
    data = eip712.endorsement(anchors.domain(), anchor.address, terms, nonce, deadline)
    r, s, v = (int.from_bytes(twin[a:b], "big") for a, b in ((0, 32), (32, 64), (64, 65)))
    recovered = keys.Signature(vrs=(v - 27, r, s)).recover_public_key_from_msg_hash(
        eip712.digest(data)
    )
    assert recovered.to_checksum_address() == anchor.address
    with pytest.raises(InvalidSignature):
        relay.anchors.endorse_by_sig(anchor.address, terms, nonce, deadline, twin)
    relay.anchors.endorse_by_sig(anchor.address, terms, nonce, deadline, signature)
    assert anchors.nonce(anchor.address) == nonce + 1


@pytest.mark.parametrize(
    "signature",
    [b"", b"\x00" * 65, b"\x01" * 64, b"\x01" * 66],
    ids=["empty", "zeros", "64-bytes", "66-bytes"],
)
def test_malformed_signature_is_refused(
    signature: bytes, anchor: LocalAccount, terms: EndorsementTerms, relay: Any, clock: Any
) -> None:
    with pytest.raises(InvalidSignature):
        relay.anchors.endorse_by_sig(anchor.address, terms, 0, clock.deadline(), signature)


# --------------------------------------------------------------------------- nonce cancellation


def test_signature_cancelled_by_increase_nonce(
    anchor: LocalAccount,
    terms: EndorsementTerms,
    as_role: Any,
    relay: Any,
    anchors: Any,
    clock: Any,
) -> None:
    deadline = clock.deadline()
    nonce, signature = _signed_endorsement(anchors, anchor, anchor.address, terms, deadline)
    cancelled = as_role("anchor").anchors.increase_nonce()
    assert cancelled.value == nonce
    assert anchors.nonce(anchor.address) == nonce + 1
    with pytest.raises(InvalidAccountNonce) as caught:
        relay.anchors.endorse_by_sig(anchor.address, terms, nonce, deadline, signature)
    assert caught.value.error_args["currentNonce"] == nonce + 1
    assert not anchors.endorsement(_endorsement_id(anchor.address, terms, nonce)).exists


def test_signature_cancelled_by_a_signed_cancel_nonce(
    anchor: LocalAccount, terms: EndorsementTerms, relay: Any, anchors: Any, clock: Any
) -> None:
    deadline = clock.deadline()
    nonce, signature = _signed_endorsement(anchors, anchor, anchor.address, terms, deadline)
    cancel = eip712.cancel_nonce(anchors.domain(), anchor.address, nonce, deadline)
    relay.anchors.increase_nonce_by_sig(
        anchor.address, nonce, deadline, eip712.sign(anchor, cancel)
    )
    assert anchors.nonce(anchor.address) == nonce + 1
    with pytest.raises(InvalidAccountNonce):
        relay.anchors.endorse_by_sig(anchor.address, terms, nonce, deadline, signature)
    # The cancellation itself cannot be replayed either.
    with pytest.raises(InvalidAccountNonce):
        relay.anchors.increase_nonce_by_sig(
            anchor.address, nonce, deadline, eip712.sign(anchor, cancel)
        )


def test_cancel_nonce_signed_by_someone_else_is_refused(
    anchor: LocalAccount, accounts: Any, relay: Any, anchors: Any, clock: Any
) -> None:
    deadline = clock.deadline()
    cancel = eip712.cancel_nonce(anchors.domain(), anchor.address, 0, deadline)
    with pytest.raises(InvalidSignature):
        relay.anchors.increase_nonce_by_sig(
            anchor.address, 0, deadline, eip712.sign(accounts.stranger, cancel)
        )
    assert anchors.nonce(anchor.address) == 0


def test_endorsement_nonce_consumed_by_a_signed_revocation(
    anchor: LocalAccount,
    endorsement: bytes,
    terms: EndorsementTerms,
    relay: Any,
    anchors: AnchorRegistryClient,
    clock: Any,
) -> None:
    # Both the new endorsement and the revocation of the old one carry the next nonce.
    deadline = clock.deadline()
    nonce = anchors.nonce(anchor.address)
    newer = replace(terms, unit_price=9_900)
    _, endorse_signature = _signed_endorsement(anchors, anchor, anchor.address, newer, deadline)
    revoke = eip712.revoke_endorsement(
        anchors.domain(), anchor.address, endorsement, nonce, deadline
    )
    relay.anchors.revoke_endorsement_by_sig(
        anchor.address, endorsement, nonce, deadline, eip712.sign(anchor, revoke)
    )
    assert anchors.endorsement(endorsement).revoked
    with pytest.raises(InvalidAccountNonce):
        relay.anchors.endorse_by_sig(anchor.address, newer, nonce, deadline, endorse_signature)
    assert not anchors.endorsement(_endorsement_id(anchor.address, newer, nonce)).exists


def test_nonces_are_per_contract(
    anchor: LocalAccount, as_role: Any, anchors: Any, provenance: Any
) -> None:
    as_role("anchor").anchors.increase_nonce()
    as_role("anchor").anchors.increase_nonce()
    assert anchors.nonce(anchor.address) == 2
    assert provenance.nonce(anchor.address) == 0


# --------------------------------------------------------------------------- terms


def test_empty_validity_window_is_refused(
    anchor: LocalAccount, terms: EndorsementTerms, as_role: Any
) -> None:
    for valid_until in (terms.valid_from, terms.valid_from - 1):
        bad = replace(terms, valid_until=valid_until)
        with pytest.raises(InvalidValidityWindow) as caught:
            as_role("anchor").anchors.endorse(bad)
        assert caught.value.error_args == {
            "validFrom": terms.valid_from,
            "validUntil": valid_until,
        }


def test_endorsement_already_expired_is_refused(
    anchor: LocalAccount, terms: EndorsementTerms, as_role: Any, clock: Any
) -> None:
    now = clock.now()
    bad = replace(terms, valid_from=now - DAY, valid_until=now)
    with pytest.raises(EndorsementExpired) as caught:
        as_role("anchor").anchors.endorse(bad)
    assert caught.value.error_args == {"validUntil": now}


def test_endorsement_expires_with_time(
    anchor: LocalAccount,
    terms: EndorsementTerms,
    as_role: Any,
    relay: Any,
    anchors: Any,
    clock: Any,
) -> None:
    deadline = terms.valid_until + DAY
    nonce, signature = _signed_endorsement(anchors, anchor, anchor.address, terms, deadline)
    clock.advance(8 * DAY)
    with pytest.raises(EndorsementExpired):
        relay.anchors.endorse_by_sig(anchor.address, terms, nonce, deadline, signature)


def test_future_validity_window_is_accepted(
    anchor: LocalAccount, terms: EndorsementTerms, as_role: Any, anchors: Any
) -> None:
    later = replace(
        terms, valid_from=terms.valid_from + DAY, valid_until=terms.valid_from + 2 * DAY
    )
    sent = as_role("anchor").anchors.endorse(later)
    assert anchors.endorsement(sent.value).valid_until == later.valid_until


def test_commission_above_100_percent_is_refused(
    anchor: LocalAccount, terms: EndorsementTerms, as_role: Any, anchors: Any
) -> None:
    with pytest.raises(InvalidCommission) as caught:
        as_role("anchor").anchors.endorse(replace(terms, commission_bps=10_001))
    assert caught.value.error_args == {"commissionBps": 10_001}
    # Exactly 100% and 0% are fine.
    for bps in (10_000, 0):
        sent = as_role("anchor").anchors.endorse(replace(terms, commission_bps=bps))
        assert anchors.endorsement(sent.value).exists


def test_unknown_product_is_refused(
    anchor: LocalAccount, terms: EndorsementTerms, as_role: Any
) -> None:
    unknown = product_id_of(96385074)
    with pytest.raises(UnknownProduct) as caught:
        as_role("anchor").anchors.endorse(replace(terms, product_id=unknown))
    assert caught.value.error_args == {"productId": unknown}


def test_endorsement_refers_to_this_deployments_provenance(
    anchors: AnchorRegistryClient, provenance: Any
) -> None:
    assert anchors.provenance() == provenance.address


# --------------------------------------------------------------------------- EIP-1271


def test_contract_wallet_anchor(
    wallet: Any, terms: EndorsementTerms, relay: Any, anchors: AnchorRegistryClient, clock: Any
) -> None:
    anchors.register_anchor(wallet.address, "@wallet-anchor")
    deadline = clock.deadline()
    nonce, signature = _signed_endorsement(anchors, wallet.owner, wallet.address, terms, deadline)
    sent = relay.anchors.endorse_by_sig(wallet.address, terms, nonce, deadline, signature)
    assert anchors.endorsement(sent.value).anchor == wallet.address
    assert anchors.nonce(wallet.address) == nonce + 1

    wallet.set_accepting(False)
    nonce, signature = _signed_endorsement(anchors, wallet.owner, wallet.address, terms, deadline)
    with pytest.raises(InvalidSignature) as caught:
        relay.anchors.endorse_by_sig(wallet.address, terms, nonce, deadline, signature)
    assert _addr(caught.value.error_args["signer"]) == wallet.address
    # Its signed revocation is refused the same way.
    revoke = eip712.revoke_endorsement(
        anchors.domain(), wallet.address, sent.value, nonce, deadline
    )
    with pytest.raises(InvalidSignature):
        relay.anchors.revoke_endorsement_by_sig(
            wallet.address, sent.value, nonce, deadline, eip712.sign(wallet.owner, revoke)
        )
    assert not anchors.endorsement(sent.value).revoked

    wallet.set_accepting(True)
    relay.anchors.endorse_by_sig(wallet.address, terms, nonce, deadline, signature)
    assert anchors.nonce(wallet.address) == nonce + 1


def test_contract_wallet_refuses_another_key(
    wallet: Any, accounts: Any, terms: EndorsementTerms, relay: Any, anchors: Any, clock: Any
) -> None:
    anchors.register_anchor(wallet.address, "@wallet-anchor")
    deadline = clock.deadline()
    nonce, signature = _signed_endorsement(
        anchors, accounts.stranger, wallet.address, terms, deadline
    )
    with pytest.raises(InvalidSignature):
        relay.anchors.endorse_by_sig(wallet.address, terms, nonce, deadline, signature)


def test_contract_wallet_high_s_is_refused(
    wallet: Any, terms: EndorsementTerms, relay: Any, anchors: Any, clock: Any, malleate: Any
) -> None:
    anchors.register_anchor(wallet.address, "@wallet-anchor")
    deadline = clock.deadline()
    nonce, signature = _signed_endorsement(anchors, wallet.owner, wallet.address, terms, deadline)
    with pytest.raises(InvalidSignature):
        relay.anchors.endorse_by_sig(wallet.address, terms, nonce, deadline, malleate(signature))


# --------------------------------------------------------------------------- sessions


def test_operator_opens_and_closes_a_session(
    anchor: LocalAccount, relay: Any, anchors: AnchorRegistryClient, clock: Any
) -> None:
    assert not anchors.session(SESSION).exists
    opened = relay.anchors.open_session(SESSION, ROOM, anchor.address)
    state = anchors.session(SESSION)
    assert state.anchor == anchor.address
    assert state.opened_at == clock.now()
    assert state.closed_at == 0
    clock.advance(3_600)
    closed = relay.anchors.close_session(SESSION, RECORDING, 42)
    state = anchors.session(SESSION)
    assert state.closed_at == clock.now() >= state.opened_at + 3_600
    events = anchors.contract.events.SessionClosed().get_logs(
        from_block=opened.block_number, to_block=closed.block_number
    )
    assert [(e["args"]["recordingHash"], e["args"]["displayedSales"]) for e in events] == [
        (RECORDING, 42)
    ]
    with pytest.raises(SessionAlreadyClosed) as caught:
        relay.anchors.close_session(SESSION, RECORDING, 43)
    assert caught.value.error_args == {"sessionId": SESSION}


def test_anchor_opens_and_closes_its_own_session(
    anchor: LocalAccount, as_role: Any, anchors: AnchorRegistryClient
) -> None:
    as_role("anchor").anchors.open_session(SESSION, ROOM, anchor.address)
    assert anchors.session(SESSION).anchor == anchor.address
    as_role("anchor").anchors.close_session(SESSION, RECORDING, 7)
    assert anchors.session(SESSION).closed_at > 0


def test_session_opened_by_operator_closed_by_anchor(
    anchor: LocalAccount, relay: Any, as_role: Any, anchors: Any
) -> None:
    relay.anchors.open_session(SESSION, ROOM, anchor.address)
    as_role("anchor").anchors.close_session(SESSION, RECORDING, 1)
    assert anchors.session(SESSION).closed_at > 0


def test_stranger_cannot_open_or_close_sessions(
    anchor: LocalAccount, accounts: Any, as_role: Any, relay: Any, anchors: Any
) -> None:
    stranger = as_role("stranger").anchors
    with pytest.raises(NotSessionManager) as caught:
        stranger.open_session(SESSION, ROOM, anchor.address)
    assert caught.value.error_args["sessionId"] == SESSION
    assert _addr(caught.value.error_args["account"]) == accounts.stranger.address
    assert not anchors.session(SESSION).exists

    relay.anchors.open_session(SESSION, ROOM, anchor.address)
    with pytest.raises(NotSessionManager):
        stranger.close_session(SESSION, RECORDING, 0)
    assert anchors.session(SESSION).closed_at == 0


def test_another_anchor_cannot_manage_a_session(
    anchor: LocalAccount, accounts: Any, as_role: Any, anchors: Any, relay: Any
) -> None:
    anchors.register_anchor(accounts.anchor2.address, "@rival")
    rival = as_role("anchor2").anchors
    with pytest.raises(NotSessionManager):
        rival.open_session(SESSION, ROOM, anchor.address)
    relay.anchors.open_session(SESSION, ROOM, anchor.address)
    with pytest.raises(NotSessionManager):
        rival.close_session(SESSION, RECORDING, 0)
    # The admin is not an operator either.
    with pytest.raises(NotSessionManager):
        anchors.close_session(SESSION, RECORDING, 0)


def test_session_for_a_non_anchor_is_refused(accounts: Any, relay: Any, as_role: Any) -> None:
    with pytest.raises(NotAnchor):
        relay.anchors.open_session(SESSION, ROOM, accounts.stranger.address)
    # Even when the account opens it for itself.
    with pytest.raises(NotAnchor):
        as_role("stranger").anchors.open_session(SESSION, ROOM, accounts.stranger.address)


def test_session_ids_are_unique(anchor: LocalAccount, relay: Any) -> None:
    relay.anchors.open_session(SESSION, ROOM, anchor.address)
    with pytest.raises(SessionAlreadyExists):
        relay.anchors.open_session(SESSION, label_hash("another room"), anchor.address)


def test_closing_an_unknown_session_is_refused(relay: Any) -> None:
    with pytest.raises(UnknownSession) as caught:
        relay.anchors.close_session(SESSION, RECORDING, 0)
    assert caught.value.error_args == {"sessionId": SESSION}


def test_operator_role_can_be_granted_and_revoked(
    anchor: LocalAccount, accounts: Any, anchors: AnchorRegistryClient, as_role: Any
) -> None:
    deputy = as_role("anchor2").anchors
    anchors.grant_role("OPERATOR_ROLE", accounts.anchor2.address)
    deputy.open_session(SESSION, ROOM, anchor.address)
    anchors.revoke_role("OPERATOR_ROLE", accounts.anchor2.address)
    with pytest.raises(NotSessionManager):
        deputy.close_session(SESSION, RECORDING, 0)
    assert anchors.session(SESSION).closed_at == 0
