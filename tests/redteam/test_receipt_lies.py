"""The platform lies in the receipts it commits with the recorder key: every field of a receipt
is judged against everything on the chain that constrains it (invariants 3-6 and 8 of the
auditor's table in docs/auditor.md).

Each test starts from an honest world (a registered brand, product, claim and anchor), stages
one lie as the platform would (a leaf it commits, with a manifest that rebuilds the root, so
the lie is not a tampered manifest), and asserts that ``liveproof audit chain`` exits 1 naming
exactly the check that catches it."""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path

from chain.actions import EndorsementTerms, ProductInput, claims_digest, currency_code, label_hash
from chain.merkle import root_of_leaf_hashes
from chain.receipts import ReceiptLeaf
from tests.audit.test_audit_chain import audit
from tests.audit.test_report_sales import report as report_sales
from tests.audit.world import AuditWorld
from tests.redteam.conftest import assert_caught, assert_clean

GTIN2 = 4_006_381_333_931


def _open_and_endorse(world: AuditWorld, **terms: int) -> tuple[bytes, bytes]:
    """An open session of the anchor in room-1 and the anchor's promise there (12,800 CNY)."""
    return world.open_session(), world.endorse(**terms)


def _second_anchor_session(world: AuditWorld, room: str = "room-1") -> bytes:
    """A second registered anchor hosting a session in ``room``; the session id."""
    world.admin.anchors.register_anchor(world.accounts.anchor2.address, "@guest")
    session = label_hash("guest-live")
    world.admin.anchors.open_session(session, label_hash(room), world.accounts.anchor2.address)
    return session


# -- the honest world --------------------------------------------------------------------------


def test_the_honest_world_audits_clean(world: AuditWorld, tmp_path: Path) -> None:
    """Sales under the promise (one at a coupon price), a sale of an unendorsed product, a
    partial refund, a revoked promise no longer binding, the session closed at its net count."""
    session, endorsement = _open_and_endorse(world)
    sales = [
        world.sale(session, endorsement_id=endorsement, quantity=2),
        world.sale(session, endorsement_id=endorsement, unit_price=11_800),
    ]
    world.commit(sales)
    world.commit([world.refund(sales[0])])
    time.sleep(1.1)  # block times count seconds: revoked after the sales' second
    world.revoke_endorsement(endorsement)
    time.sleep(1.1)  # ordered after the revocation's block
    world.commit([world.sale(session, unit_price=15_000)])  # list price once revoked
    world.close_session(session, displayed=3)
    report = tmp_path / "report.json"
    assert_clean(audit(world, "--report", str(report)))
    stats = json.loads(report.read_text())["stats"]
    (detail,) = stats["sessions_detail"]
    assert (detail["displayed"], detail["sold"], detail["refunded"]) == (3, 4, 1)
    assert detail["verified_net"] == 3
    assert stats["refund_rate"] == 0.25


# -- invariant 3: every receipt field against the chain ---------------------------------------


def test_a_sale_in_another_room_than_its_session(world: AuditWorld) -> None:
    session = world.open_session(room="room-1")
    sale = replace(world.sale(session), room_id=label_hash("room-2"))
    world.commit([sale])
    (line,) = assert_caught(audit(world), "receipt-room")
    assert f"vs room 0x{label_hash('room-2').hex()}" in line


def test_a_refund_naming_another_room(world: AuditWorld) -> None:
    session = world.open_session()
    sale = world.sale(session, quantity=2)
    world.commit([sale])
    world.commit([replace(world.refund(sale), room_id=label_hash("room-2"))])
    assert_caught(audit(world), "receipt-room")


def test_a_sale_of_a_product_never_registered(world: AuditWorld) -> None:
    session = world.open_session()
    world.commit([replace(world.sale(session), product_id=label_hash("counterfeit"))])
    (line,) = assert_caught(audit(world), "receipt-product")
    assert line.endswith("vs not registered")


def test_a_sale_of_a_product_registered_only_after_its_commit(world: AuditWorld) -> None:
    session = world.open_session()
    brand = world.as_(world.accounts.brand)
    later = brand.provenance.product_id_of(GTIN2)
    world.commit([replace(world.sale(session), product_id=later)])
    brand.provenance.register_product(
        ProductInput(GTIN2, "Backdated tin", "https://tea.example/b", label_hash("b"))
    )
    assert_caught(audit(world), "receipt-product")


def test_a_sale_in_another_anchors_session_naming_this_anchors_promise(
    world: AuditWorld,
) -> None:
    endorsement = world.endorse(unit_price=12_000)
    guest = _second_anchor_session(world)
    world.commit([world.sale(guest, endorsement_id=endorsement, unit_price=12_000)])
    (line,) = assert_caught(audit(world), "sale-endorsement")
    assert "the session's host" in line


def test_a_sale_naming_a_promise_made_for_another_room(world: AuditWorld) -> None:
    session = world.open_session(room="room-1")
    elsewhere = world.endorse(room="room-2")
    world.commit([world.sale(session, endorsement_id=elsewhere)])
    (line,) = assert_caught(audit(world), "sale-endorsement")
    assert f"room 0x{label_hash('room-2').hex()}" in line


def test_a_sale_naming_an_endorsement_recorded_after_its_commit(world: AuditWorld) -> None:
    session = world.open_session()
    anchors = world.as_(world.accounts.anchor).anchors
    now = world.now()
    terms = EndorsementTerms(
        product_id=world.product_id,
        claims_digest=claims_digest(world.claim_ids),
        room_id=label_hash("room-1"),
        sponsored=False,
        commission_bps=0,
        unit_price=12_800,
        currency=currency_code("CNY"),
        valid_from=now - 3_600,
        valid_until=now + 86_400,
    )
    future = anchors.endorsement_id_of(
        world.accounts.anchor.address, terms, anchors.nonce(world.accounts.anchor.address)
    )
    world.commit([world.sale(session, endorsement_id=future)])
    assert anchors.endorse(terms).value == future
    (line,) = assert_caught(audit(world), "sale-endorsement")
    assert "the sale's commit" in line


def test_a_sale_after_the_host_was_removed_as_an_anchor(world: AuditWorld) -> None:
    session = world.open_session()
    world.admin.anchors.remove_anchor(world.accounts.anchor.address)
    time.sleep(1.1)
    world.commit([world.sale(session)])
    (line,) = assert_caught(audit(world), "sale-anchor")
    assert line.endswith("not registered then")


def test_a_sale_ordered_before_its_session_opened(world: AuditWorld) -> None:
    """Backdated an hour: before the session, and before its host was an anchor at all."""
    session = world.open_session()
    world.commit([world.sale(session, ordered_at=world.now() - 3_600)])
    assert_caught(audit(world), "order-in-session", "sale-anchor")


def test_a_sale_in_a_session_never_opened_on_chain(world: AuditWorld) -> None:
    world.commit([world.sale(label_hash("ghost-session"))])
    assert_caught(audit(world), "order-in-session")


def test_a_receipt_dated_after_the_block_that_committed_it(world: AuditWorld) -> None:
    session = world.open_session()
    ahead = world.now() + 3_600
    world.commit([world.sale(session, ordered_at=ahead)])
    (line,) = assert_caught(audit(world), "order-time")
    assert line.endswith(f"vs ordered at {ahead}")


def test_the_clock_tolerance_is_the_auditors_to_set(world: AuditWorld) -> None:
    """A sale stamped 100 s ahead passes the default 300 s and fails at 10 s."""
    session = world.open_session()
    world.commit([world.sale(session, ordered_at=world.now() + 100)])
    assert_clean(audit(world))
    assert_caught(audit(world, "--clock-tolerance", "10"), "order-time")


# -- invariant 4: promises cannot be dodged ----------------------------------------------------


def test_a_sale_that_omits_the_promise_in_force(world: AuditWorld) -> None:
    session, endorsement = _open_and_endorse(world)
    world.commit([world.sale(session, unit_price=12_800)])
    (line,) = assert_caught(audit(world), "promise-omitted")
    assert f"endorsement 0x{endorsement.hex()}" in line


def test_a_sale_above_the_promise_it_omits(world: AuditWorld) -> None:
    session, _ = _open_and_endorse(world)
    world.commit([world.sale(session, unit_price=19_900)])
    assert_caught(audit(world), "promise-omitted", "sale-price")


def test_a_sale_naming_the_dearer_of_two_promises_in_force(world: AuditWorld) -> None:
    session = world.open_session()
    dear = world.endorse(unit_price=12_800)
    cheap = world.endorse(unit_price=9_900)
    world.commit([world.sale(session, endorsement_id=dear, unit_price=12_800)])
    (line,) = assert_caught(audit(world), "sale-price")
    assert f"(endorsement 0x{cheap.hex()}) vs 12800 CNY" in line


def test_a_sale_in_another_currency_than_its_promise(world: AuditWorld) -> None:
    session, endorsement = _open_and_endorse(world)
    sale = replace(world.sale(session, endorsement_id=endorsement), currency=b"USD")
    world.commit([sale])
    (line,) = assert_caught(audit(world), "sale-price")
    assert line.endswith("vs 12800 USD")


# -- invariant 5: refunds ----------------------------------------------------------------------


def _sold(world: AuditWorld, quantity: int = 3) -> tuple[bytes, ReceiptLeaf]:
    session = world.open_session()
    sale = world.sale(session, quantity=quantity)
    world.commit([sale])
    return session, sale


def test_a_refund_that_names_another_session(world: AuditWorld) -> None:
    _, sale = _sold(world)
    other = world.open_session("live-2")
    world.commit([replace(world.refund(sale), session_id=other)])
    (line,) = assert_caught(audit(world), "refund-terms")
    assert f"session 0x{other.hex()}" in line


def test_a_refund_that_hides_an_inflated_counter_in_another_session(world: AuditWorld) -> None:
    """Session A sells 3 and refunds 2 but displays 3: the platform files the refund under
    session B, which it closes showing nothing. The refund still counts against A."""
    session, sale = _sold(world)
    other = world.open_session("live-2")
    world.commit([replace(world.refund(sale, 2), session_id=other)])
    world.close_session(session, displayed=3)
    world.close_session(other, displayed=0)
    assert_caught(audit(world), "refund-terms", "displayed-sales")


def test_a_refund_of_another_product(world: AuditWorld) -> None:
    _, sale = _sold(world)
    brand = world.as_(world.accounts.brand)
    other = brand.provenance.register_product(
        ProductInput(GTIN2, "Cheaper tin", "https://tea.example/c", label_hash("c"))
    ).value
    world.commit([replace(world.refund(sale), product_id=other)])
    assert_caught(audit(world), "refund-terms")


def test_a_refund_above_the_sales_price(world: AuditWorld) -> None:
    _, sale = _sold(world)
    world.commit([replace(world.refund(sale), unit_price=sale.unit_price + 1)])
    (line,) = assert_caught(audit(world), "refund-terms")
    assert line.endswith(f"unit price at most {sale.unit_price} vs {sale.unit_price + 1}")


def test_a_refund_in_another_currency(world: AuditWorld) -> None:
    _, sale = _sold(world)
    world.commit([replace(world.refund(sale), currency=b"USD")])
    assert_caught(audit(world), "refund-terms")


def test_a_refund_dated_before_its_sale(world: AuditWorld) -> None:
    _, sale = _sold(world)
    world.commit([replace(world.refund(sale), ordered_at=sale.ordered_at - 60)])
    (line,) = assert_caught(audit(world), "refund-terms")
    assert "dated at or after the sale" in line


def test_refunds_beyond_what_remains(world: AuditWorld) -> None:
    _, sale = _sold(world, quantity=2)
    world.commit([world.refund(sale, 1), world.refund(sale, 2)])
    assert_caught(audit(world), "over-refund")


def test_a_refund_of_a_sale_never_committed(world: AuditWorld) -> None:
    session = world.open_session()
    ghost = world.sale(session)
    world.commit([world.refund(ghost)])
    assert_caught(audit(world), "refund-match")


# -- invariant 6: timeliness and counts --------------------------------------------------------


def test_sales_backfilled_after_their_session_closed(world: AuditWorld) -> None:
    """The session shows 2 sold but sold 0; afterwards the platform commits two sales dated
    inside the session to make the counter look honest."""
    session = world.open_session()
    inside = world.now()
    world.close_session(session, displayed=2)
    time.sleep(2.1)
    world.commit([world.sale(session, ordered_at=inside), world.sale(session, ordered_at=inside)])
    assert_clean(audit(world))  # within the default hour
    lines = assert_caught(audit(world, "--late-commit-tolerance", "1"), "late-commit")
    assert len(lines) == 2


def test_a_commit_counting_more_receipts_than_its_manifest_holds(world: AuditWorld) -> None:
    """The platform commits a root with count 3 (a sales counter read from the chain says 3)
    and publishes the 2 leaves that really rebuild the root."""
    session = world.open_session()
    leaves = [world.sale(session), world.sale(session)]
    root = root_of_leaf_hashes([leaf.leaf_hash() for leaf in leaves])
    world.admin.ledger.commit_batch(root, 3)
    world.write_manifest(root, [leaf.to_json() for leaf in leaves])
    (line,) = assert_caught(audit(world), "batch-count")
    assert line.endswith("3 leaves vs 2")


def test_one_receipt_id_in_a_batch_and_again_recorded_alone(world: AuditWorld) -> None:
    session = world.open_session()
    sale = world.sale(session)
    world.commit([sale, world.sale(session)])
    world.commit([replace(sale, buyer_commitment=os.urandom(32))])  # recordReceipt
    assert_caught(audit(world), "duplicate-receipt")


def test_a_session_displaying_more_than_it_sold(world: AuditWorld) -> None:
    session = world.open_session()
    world.commit([world.sale(session, quantity=2)])
    world.close_session(session, displayed=40)
    assert_caught(audit(world), "displayed-sales")


# -- invariant 8: statistics a reader needs ----------------------------------------------------


def test_one_buyer_commitment_on_many_sales_is_a_warning_not_a_failure(
    world: AuditWorld, tmp_path: Path
) -> None:
    session = world.open_session()
    brusher = os.urandom(32)
    fakes = [replace(world.sale(session), buyer_commitment=brusher) for _ in range(6)]
    world.commit([*fakes[:3], world.sale(session)])
    world.commit(fakes[3:])
    report = tmp_path / "report.json"
    result = audit(world, "--report", str(report))
    assert_clean(result)
    (warning,) = [x for x in result.output.splitlines() if x.startswith("WARN: ")]
    assert warning == f"WARN: buyer-reuse 0x{brusher.hex()}: on 6 sales (threshold 5)"
    data = json.loads(report.read_text())
    assert data["warnings"] == [warning.removeprefix("WARN: ")]
    assert data["stats"]["buyer_commitments"]["most_sales_per_commitment"] == 6
    assert not [x for x in audit(world, "--reuse-threshold", "7").output.splitlines()
                if x.startswith("WARN: ")]  # fmt: skip


def test_a_refund_filed_under_another_anchors_session_still_counts_against_the_seller(
    world: AuditWorld, tmp_path: Path
) -> None:
    """The host sold 3 and 2 came back; the platform files the refund under a guest anchor's
    session so the host's record shows 3 net. ``report sales`` counts the refund where its sale
    counted, and ``audit chain`` names the refund."""
    _, sale = _sold(world)
    guest = _second_anchor_session(world)
    world.commit([replace(world.refund(sale, 2), session_id=guest)])
    out = tmp_path / "by-anchor.json"
    result = report_sales(world, out, "--by", "anchor")
    assert result.exit_code == 0, result.output
    rows = {row["key"]: row for row in json.loads(out.read_text())}
    host = rows[world.accounts.anchor.address]
    assert (host["units_sold"], host["units_refunded"], host["net_units"]) == (3, 2, 1)
    assert world.accounts.anchor2.address not in rows
    assert_caught(audit(world), "refund-terms")


def test_a_sale_under_a_claim_the_brand_revoked(world: AuditWorld) -> None:
    """The brand revoked its origin claim (the inspection failed); the platform keeps selling
    the product as if it stood."""
    session = world.open_session()
    world.revoke_claim(world.claim_ids[0])
    time.sleep(1.1)
    world.commit([world.sale(session)])
    (line,) = assert_caught(audit(world), "sale-claims")
    assert f"claim 0x{world.claim_ids[0].hex()} in force vs revoked at" in line


def test_a_sale_backdated_to_before_the_promise_was_made(world: AuditWorld) -> None:
    """The host promises 12,800 at T; the platform sells at 19,900 and dates the sale just
    before T, out of the promise's reach. The order time is the platform's word, but the
    commit is the chain's: the backdating shows as a lag past the tolerance."""
    session = world.open_session()
    time.sleep(1.1)
    before = world.now()
    time.sleep(1.1)
    world.endorse(unit_price=12_800)
    time.sleep(2.1)
    world.commit([world.sale(session, unit_price=19_900, ordered_at=before)])
    assert_clean(audit(world))  # within the default hour: the promise is out of reach
    (line,) = assert_caught(audit(world, "--late-commit-tolerance", "2"), "late-commit")
    assert f"(ordered at {before}, +2 s)" in line
