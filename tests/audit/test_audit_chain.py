"""``liveproof audit chain`` on a devnet: a clean chain exits 0, each flagged condition is
created for real and exits 1 with its FAIL line, an unreachable RPC exits 2."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import CliRunner, Result
from web3 import Web3

from chain.actions import EndorsementTerms, currency_code, label_hash
from chain.artifacts import load_artifact
from chain.audit import batch_loader, chain_audit
from chain.audit.chain_audit import ChainAudit
from chain.audit.manifests import ApiManifests, DirectoryManifests
from chain.audit.registry import Registry
from chain.clients.base import relayer_for
from chain.deploy import DeployedContract, Deployment, deployment_path
from chain.events import ChainEvent
from scripts.cli import app
from tests.audit.world import AuditWorld
from tests.conftest import Accounts

runner = CliRunner()


def audit(world: AuditWorld, *extra: str, deployment: Path | None = None) -> Result:
    """``liveproof audit chain`` against the session's anvil, reading the world's manifests."""
    rpc = world.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    dep = deployment or deployment_path(world.deployment.chain_id, _deployments_dir(world))
    return runner.invoke(
        app,
        ["audit", "chain", "--rpc", rpc, "--deployment", str(dep),
         "--manifests", str(world.manifests), *extra],
    )  # fmt: skip


def _deployments_dir(world: AuditWorld) -> Path:
    path = world.manifests.parent / "deployments"
    path.mkdir(exist_ok=True)
    file = deployment_path(world.deployment.chain_id, path)
    if not file.exists():
        file.write_text(world.deployment.to_json(), encoding="utf-8")
    return path


def fails(result: Result, check: str) -> list[str]:
    """The FAIL lines of ``check``."""
    return [line for line in result.output.splitlines() if line.startswith(f"FAIL: {check} ")]


def assert_only(result: Result, check: str) -> list[str]:
    """Exit 1, FAIL lines for ``check`` and no other check."""
    assert result.exit_code == 1, result.output
    lines = fails(result, check)
    assert lines, result.output
    others = [
        line
        for line in result.output.splitlines()
        if line.startswith("FAIL: ") and not line.startswith(f"FAIL: {check} ")
    ]
    assert others == [], result.output
    return lines


def clean_sales(world: AuditWorld) -> tuple[bytes, bytes]:
    """An open session, an endorsement, two sales at the promised price and a refund, all
    committed, and the session closed showing its net sales. (session id, endorsement id)"""
    session = world.open_session()
    endorsement = world.endorse()
    sales = [world.sale(session, endorsement_id=endorsement, quantity=q) for q in (2, 3)]
    world.commit(sales)
    world.commit([world.refund(sales[0])])
    world.close_session(session, displayed=4)
    return session, endorsement


def test_a_clean_chain_passes_every_check(world: AuditWorld, tmp_path: Path) -> None:
    clean_sales(world)
    report_file = tmp_path / "report.json"
    result = audit(world, "--report", str(report_file))
    assert result.exit_code == 0, result.output
    assert "FAIL" not in result.output
    assert "OK: batch-root: 2 checked" in result.output
    assert "OK: duplicate-receipt: 3 checked" in result.output
    assert "OK: displayed-sales: 1 checked" in result.output
    report = json.loads(report_file.read_text())
    assert report["ok"] is True
    assert report["stats"]["receipts"] == 3
    assert report["checks"]["sale-price"] == {
        "asserts": report["checks"]["sale-price"]["asserts"],
        "checked": 2,
        "failed": 0,
    }


def test_an_unreachable_rpc_exits_2(world: AuditWorld) -> None:
    result = runner.invoke(
        app, ["audit", "chain", "--rpc", "http://127.0.0.1:9", "--manifests", str(world.manifests)]
    )
    assert result.exit_code == 2, result.output


def test_usage_errors_exit_2(world: AuditWorld, tmp_path: Path) -> None:
    assert audit(world, "--api", "http://127.0.0.1:9").exit_code == 2  # both sources
    bad = tmp_path / "dep.json"
    bad.write_text("{}")
    assert audit(world, deployment=bad).exit_code == 2
    other = replace(world.deployment, chain_id=1)
    wrong_chain = tmp_path / "1.json"
    wrong_chain.write_text(other.to_json())
    assert audit(world, deployment=wrong_chain).exit_code == 2


def _change_one(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows[0] = {**rows[0], "quantity": int(rows[0]["quantity"]) + 1}
    return rows


def _drop_one(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return rows[1:]


def _add_one(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [*rows, {**rows[0], "receiptId": "0x" + os.urandom(32).hex()}]


@pytest.mark.parametrize(
    ("tamper", "checks"),
    [
        (_change_one, {"batch-root"}),
        (_drop_one, {"batch-root", "batch-count"}),
        (_add_one, {"batch-root", "batch-count"}),
    ],
    ids=["leaf-changed", "leaf-dropped", "leaf-added"],
)
def test_a_tampered_manifest_is_caught(world: AuditWorld, tamper: Any, checks: set[str]) -> None:
    session = world.open_session()
    world.commit([world.sale(session) for _ in range(3)], tamper=tamper)
    result = audit(world)
    assert result.exit_code == 1, result.output
    failed = {line.split()[1] for line in result.output.splitlines() if line.startswith("FAIL: ")}
    assert failed == checks, result.output
    # The tampered batch's leaves are not counted as verified receipts.
    assert "0 checked" in next(
        line for line in result.output.splitlines() if "duplicate-receipt" in line
    )


def test_a_missing_or_unreadable_manifest_is_caught(world: AuditWorld) -> None:
    session = world.open_session()
    root = world.commit([world.sale(session), world.sale(session)])
    (world.manifests / f"0x{root.hex()}.json").unlink()
    lines = assert_only(audit(world), "batch-manifest")
    assert lines == [f"FAIL: batch-manifest batch 0x{root.hex()} {lines[0].split(' ', 4)[4]}"]
    assert "a manifest vs none" in lines[0]
    world.write_manifest(root, [{"receiptId": "0x00"}])
    assert "receipt leaf v1 values" in assert_only(audit(world), "batch-manifest")[0]


def test_an_endorsement_by_an_unregistered_signer_is_caught(
    world: AuditWorld, w3: Web3, accounts: Accounts, tmp_path: Path
) -> None:
    """The real AnchorRegistry refuses such an endorsement, so a forged registry logs one."""
    forged, sender, file = _forged_registry(world, w3, accounts, tmp_path)
    terms = _day_terms(world)
    sender.transact(forged.functions.registerAnchor(accounts.anchor.address, "@registered"))
    sender.transact(
        forged.functions.endorseAs(accounts.anchor.address, os.urandom(32), terms.as_tuple())
    )
    stranger_endorsement = os.urandom(32)
    sender.transact(
        forged.functions.endorseAs(
            accounts.stranger.address, stranger_endorsement, terms.as_tuple()
        )
    )
    lines = assert_only(audit(world, deployment=file), "endorsement-signer")
    assert len(lines) == 1
    assert f"endorsement 0x{stranger_endorsement.hex()}" in lines[0]
    assert f"{accounts.stranger.address} a registered anchor vs not registered" in lines[0]


def _day_terms(world: AuditWorld) -> EndorsementTerms:
    """Terms of an unsponsored endorsement of the world's product, valid for a day."""
    now = world.now()
    return EndorsementTerms(
        world.product_id, bytes(32), label_hash("room-1"), False, 0, 100,
        currency_code("CNY"), now, now + 86_400,
    )  # fmt: skip


def _forged_registry(
    world: AuditWorld, w3: Web3, accounts: Accounts, tmp_path: Path
) -> tuple[Any, Any, Path]:
    """A ForgedAnchorRegistry (logs whatever it is told), a sender, and a deployment file
    whose AnchorRegistry is it."""
    artifact = load_artifact("ForgedAnchorRegistry")
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    sender = relayer_for(w3, accounts.stranger)
    receipt = sender.transact(factory.constructor())  # type: ignore[arg-type]
    forged = w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])
    contracts = dict(world.deployment.contracts)
    contracts["AnchorRegistry"] = DeployedContract(
        forged.address, receipt["transactionHash"].to_0x_hex(), receipt["blockNumber"], "", ""
    )
    file = tmp_path / "forged.json"
    file.write_text(Deployment.to_json(replace(world.deployment, contracts=contracts)))
    return forged, sender, file


def test_an_endorsement_after_the_anchor_was_removed_is_caught(
    world: AuditWorld, w3: Web3, accounts: Accounts, tmp_path: Path
) -> None:
    forged, sender, file = _forged_registry(world, w3, accounts, tmp_path)
    terms = _day_terms(world).as_tuple()
    anchor = accounts.anchor.address
    before, after = os.urandom(32), os.urandom(32)
    sender.transact(forged.functions.registerAnchor(anchor, "@host"))
    sender.transact(forged.functions.endorseAs(anchor, before, terms))
    sender.transact(forged.functions.removeAnchor(anchor, "@host"))
    sender.transact(forged.functions.endorseAs(anchor, after, terms))
    (line,) = assert_only(audit(world, deployment=file), "endorsement-signer")
    assert f"endorsement 0x{after.hex()}" in line
    assert f"{anchor} a registered anchor vs not registered" in line


def _event(name: str, block: int, log_index: int, **args: Any) -> ChainEvent:
    return ChainEvent("AnchorRegistry", name, args, block, "0x", "0x", log_index, "0x")


def test_an_anchors_removal_counts_from_its_place_in_the_block() -> None:
    """Removed and endorsing in one block: the log order decides, not the block number."""
    anchor = "0x" + "ab" * 20
    terms = {
        "claimsDigest": bytes(32), "roomId": bytes(32), "sponsored": False, "commissionBps": 0,
        "unitPrice": 1, "currency": b"CNY", "validFrom": 0, "validUntil": 1,
    }  # fmt: skip

    def endorsed(eid: bytes, block: int, log: int) -> ChainEvent:
        return _event(
            "EndorsementRecorded", block, log, endorsementId=eid, anchor=anchor,
            productId=bytes(32), terms=terms, nonce=0,
        )  # fmt: skip

    registry = Registry.of(
        [
            _event("AnchorRegistered", 5, 0, anchor=anchor, handleHash=bytes(32), handle="@a"),
            endorsed(b"\x01" * 32, 9, 0),
            _event("AnchorRemoved", 9, 1, anchor=anchor, handleHash=bytes(32)),
            endorsed(b"\x02" * 32, 9, 2),
            _event("AnchorRegistered", 12, 0, anchor=anchor, handleHash=bytes(32), handle="@a"),
            endorsed(b"\x03" * 32, 12, 1),
        ]
    )
    verdicts = [(e.endorsement_id[0], ok) for e, ok in registry.endorsement_signers]
    assert verdicts == [(1, True), (2, False), (3, True)]


def test_a_sale_under_a_revoked_endorsement_is_caught(world: AuditWorld) -> None:
    session = world.open_session()
    endorsement = world.endorse()
    world.revoke_endorsement(endorsement)
    world.commit([world.sale(session, endorsement_id=endorsement, ordered_at=world.now() + 1)])
    line = assert_only(audit(world), "sale-endorsement")[0]
    assert "ordered before revocation" in line


def test_a_sale_after_its_endorsement_expired_is_caught(world: AuditWorld) -> None:
    session = world.open_session()
    endorsement = world.endorse(valid_for=3_600)
    late = world.now() + 7_200
    world.commit([world.sale(session, endorsement_id=endorsement, ordered_at=late)])
    result = audit(world)
    assert result.exit_code == 1, result.output
    (line,) = fails(result, "sale-endorsement")
    assert re.search(rf"ordered in \[\d+, \d+\] vs ordered at {late}$", line), line


def test_sales_under_a_revoked_or_expired_claim_are_caught(world: AuditWorld) -> None:
    session = world.open_session()
    short = world.claim(valid_for=600)
    world.revoke_claim(world.claim_ids[0])
    now = world.now()
    world.commit(
        [world.sale(session, ordered_at=now + 1), world.sale(session, ordered_at=now + 900)]
    )
    # A tolerance past the later sale's date: only the claims are judged here.
    lines = assert_only(audit(world, "--clock-tolerance", "1000"), "sale-claims")
    revoked = [x for x in lines if f"claim 0x{world.claim_ids[0].hex()}" in x and "revoked" in x]
    expired = [x for x in lines if f"claim 0x{short.hex()}" in x and "expired" in x]
    assert len(revoked) == 2  # the revoked claim covers both sales
    assert len(expired) == 1  # the short claim had expired only for the later one


def test_a_sale_above_the_promised_price_is_caught(world: AuditWorld) -> None:
    session = world.open_session()
    endorsement = world.endorse(unit_price=12_800)
    world.commit(
        [
            world.sale(session, endorsement_id=endorsement, unit_price=12_800),
            world.sale(session, endorsement_id=endorsement, unit_price=12_900),
        ]
    )
    (line,) = assert_only(audit(world), "sale-price")
    assert f"at most 12800 CNY (endorsement 0x{endorsement.hex()}) vs 12900 CNY" in line


def test_a_refund_with_no_sale_and_an_over_refund_are_caught(world: AuditWorld) -> None:
    session = world.open_session()
    sale = world.sale(session, quantity=2)
    ghost = world.sale(session)  # never committed
    world.commit([sale, world.refund(ghost)])
    world.commit([world.refund(sale, 2), world.refund(sale, 1)])
    result = audit(world)
    assert result.exit_code == 1
    (unmatched,) = fails(result, "refund-match")
    assert f"sale 0x{ghost.receipt_id.hex()} vs none" in unmatched
    (over,) = fails(result, "over-refund")
    assert "at most 2 refunded vs 3 refunded" in over


def test_a_refund_committed_before_its_sale_is_matched(world: AuditWorld) -> None:
    session = world.open_session()
    sale = world.sale(session, quantity=2)
    world.commit([world.refund(sale)])
    world.commit([sale])
    result = audit(world)
    assert result.exit_code == 0, result.output


def test_a_duplicate_receipt_id_is_caught(world: AuditWorld) -> None:
    session = world.open_session()
    first = world.sale(session)
    world.commit([first])
    again = replace(first, buyer_commitment=os.urandom(32))  # another leaf, same receipt id
    world.commit([again, world.sale(session)])
    (line,) = assert_only(audit(world), "duplicate-receipt")
    assert f"receipt 0x{first.receipt_id.hex()}: one commit vs two" in line


def test_orders_outside_their_session_are_caught(world: AuditWorld) -> None:
    session = world.open_session()
    opened = world.now()
    world.close_session(session, displayed=0)
    closed = world.now()
    world.commit(
        [
            world.sale(session, ordered_at=opened - 60),  # within the clock tolerance
            world.sale(session, ordered_at=opened - 400),
            world.sale(session, ordered_at=closed + 400),
            world.sale(label_hash("never-opened")),
        ]
    )
    result = audit(world)
    assert result.exit_code == 1, result.output
    lines = fails(result, "order-in-session")
    assert len(lines) == 3, result.output
    assert any(f"ordered at {opened - 400}" in x for x in lines)
    assert any(f"ordered at {closed + 400}" in x for x in lines)
    assert any("a session opened on chain vs none" in x for x in lines)


def test_a_session_displaying_more_than_it_sold_is_caught(world: AuditWorld) -> None:
    session = world.open_session()
    sale = world.sale(session, quantity=5)
    world.commit([sale, world.sale(session, quantity=1)])
    world.commit([world.refund(sale, 2)])
    world.close_session(session, displayed=5)  # 6 sold, 2 refunded: 4 net
    (line,) = assert_only(audit(world), "displayed-sales")
    assert line.endswith("at most 4 (verified net) vs 5 displayed")


def test_the_cursor_file_resumes_and_reads_only_new_commits(
    world: AuditWorld, tmp_path: Path
) -> None:
    cursor = tmp_path / "audit.cursor"
    session, endorsement = clean_sales(world)
    first = audit(world, "--cursor", str(cursor), "--report", str(tmp_path / "r1.json"))
    assert first.exit_code == 0, first.output
    assert json.loads((tmp_path / "r1.json").read_text())["stats"]["receipts"] == 3
    # A later commit: the second run scans only it, and still knows every earlier receipt.
    sale = world.sale(session, endorsement_id=endorsement, unit_price=20_000)
    world.commit([sale])
    second = audit(world, "--cursor", str(cursor), "--report", str(tmp_path / "r2.json"))
    report = json.loads((tmp_path / "r2.json").read_text())
    assert report["stats"]["receipts"] == 4
    assert report["checks"]["batch-root"]["checked"] == 3
    assert fails(second, "sale-price")
    assert fails(second, "displayed-sales") == []  # closed before this sale: 5 sold, 1 refunded
    cursor.write_text("{}")
    assert audit(world, "--cursor", str(cursor)).exit_code == 2


def _troubled_chain(world: AuditWorld) -> None:
    """Batches with what the receipt index must remember across them: a refund committed
    before its sale, a refund after, an over-refund, a duplicate receipt id and a refund of a
    sale never committed."""
    session = world.open_session()
    first, second = world.sale(session, quantity=2), world.sale(session, quantity=1)
    world.commit([world.refund(first)])
    world.commit([first, second, world.sale(session)])
    world.commit([world.refund(second), world.refund(second)])
    world.commit([replace(first, buyer_commitment=os.urandom(32))])
    world.commit([world.refund(world.sale(session)), world.sale(session)])


def _verdicts(report_file: Path) -> tuple[Any, Any]:
    report = json.loads(report_file.read_text())
    findings = sorted(tuple(f.values()) for f in report["findings"])
    return report["checks"], findings


def test_receipt_ids_kept_on_disk_give_the_same_verdicts(world: AuditWorld, tmp_path: Path) -> None:
    _troubled_chain(world)
    in_memory, on_disk = tmp_path / "memory.json", tmp_path / "disk.json"
    assert audit(world, "--report", str(in_memory)).exit_code == 1
    assert audit(world, "--report", str(on_disk), "--memory-limit", "1").exit_code == 1
    checks, findings = _verdicts(in_memory)
    assert {f[0] for f in findings} == {"refund-match", "over-refund", "duplicate-receipt"}
    assert _verdicts(on_disk) == (checks, findings)
    assert checks["over-refund"]["checked"] == 2


def test_a_scan_that_crashes_resumes_from_its_last_checkpoint(
    world: AuditWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed mid-scan after some checkpoints: the next run with the cursor neither loses nor
    double-counts a receipt, and judges exactly as one uninterrupted run."""
    _troubled_chain(world)
    full = tmp_path / "full.json"
    assert audit(world, "--report", str(full)).exit_code == 1
    cursor = tmp_path / "audit.cursor"
    monkeypatch.setattr(chain_audit, "_CHECKPOINT_SECONDS", 0.0)  # checkpoint every batch
    real_batch = ChainAudit._batch
    seen: list[int] = []

    def crash_on_the_fourth(self: ChainAudit, state: Any, event: ChainEvent, loaded: Any) -> None:
        seen.append(event.block_number)
        if len(seen) == 4:
            raise KeyboardInterrupt  # as a kill would: in the middle of the scan
        real_batch(self, state, event, loaded)

    monkeypatch.setattr(ChainAudit, "_batch", crash_on_the_fourth)
    with pytest.raises(KeyboardInterrupt):
        ChainAudit(
            world.w3, world.deployment, DirectoryManifests(world.manifests),
            cursor_file=cursor, memory_limit=1,
        ).run()  # fmt: skip
    monkeypatch.setattr(ChainAudit, "_batch", real_batch)
    resumed = tmp_path / "resumed.json"
    result = audit(world, "--cursor", str(cursor), "--report", str(resumed))
    assert result.exit_code == 1, result.output
    assert _verdicts(resumed) == _verdicts(full)
    stats = json.loads(resumed.read_text())["stats"]
    assert stats["receipts"] == json.loads(full.read_text())["stats"]["receipts"] == 9


def test_a_cursor_of_another_deployment_is_refused(world: AuditWorld, tmp_path: Path) -> None:
    clean_sales(world)
    cursor = tmp_path / "audit.cursor"
    assert audit(world, "--cursor", str(cursor)).exit_code == 0
    contracts = dict(world.deployment.contracts)
    moved = replace(contracts["SaleLedger"], address="0x" + "12" * 20)
    contracts["SaleLedger"] = moved
    other = tmp_path / "other.json"
    other.write_text(replace(world.deployment, contracts=contracts).to_json())
    result = audit(world, "--cursor", str(cursor), deployment=other)
    assert result.exit_code == 2
    assert "was written for another deployment" in result.stderr


def _serve(answers: dict[str, tuple[int, bytes]]) -> tuple[str, ThreadingHTTPServer]:
    """A stand-in for a platform's API answering fixed bodies by path (a hostile one)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = answers.get(self.path, (404, b"{}"))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", server


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"[1, 2]", "is not a JSON object"),
        (b"<html>busy</html>", "is not JSON"),
        (b'{"leaf_types": 5, "leaves": []}', "leaf types 5 are not receipt leaf v1"),
        (b'{"leaf_types": ["[/]", "[red]x"], "leaves": []}', "['[/]', '[red]x']"),
        (b'{"leaves": [{"receiptId": 7}]}', "every leaf must have exactly the fields"),
    ],
    ids=["list", "not-json", "types-not-a-list", "rich-markup", "bad-leaf"],
)
def test_a_malformed_manifest_from_an_api_fails_its_batch_and_prints_as_itself(
    world: AuditWorld, tmp_path: Path, body: bytes, why: str
) -> None:
    session = world.open_session()
    root = world.commit([world.sale(session)])
    base, server = _serve({f"/v1/batches/0x{root.hex()}": (200, body)})
    try:
        rpc = world.w3.provider.endpoint_uri  # type: ignore[attr-defined]
        dep = deployment_path(world.deployment.chain_id, _deployments_dir(world))
        report_file = tmp_path / "report.json"
        result = runner.invoke(
            app,
            ["audit", "chain", "--rpc", rpc, "--deployment", str(dep), "--api", base,
             "--report", str(report_file)],
        )  # fmt: skip
    finally:
        server.shutdown()
    (line,) = assert_only(result, "batch-manifest")
    assert line.startswith(f"FAIL: batch-manifest batch 0x{root.hex()}")
    assert why in line
    assert json.loads(report_file.read_text())["ok"] is False


def test_manifests_from_an_api_are_read_per_root(world: AuditWorld) -> None:
    session = world.open_session()
    root = world.commit([world.sale(session), world.sale(session)])
    served = (world.manifests / f"0x{root.hex()}.json").read_bytes()
    base, server = _serve({f"/v1/batches/0x{root.hex()}": (200, served)})
    try:
        source = ApiManifests(base)
        assert source.get(f"0x{root.hex()}") == json.loads(served)
        assert source.get("0x" + "00" * 32) is None  # 404: no such batch
        report = ChainAudit(world.w3, world.deployment, source).run()
    finally:
        server.shutdown()
    assert report.ok, report.findings
    assert report.stats["receipts"] == 2


@pytest.mark.parametrize("crash", [False, True], ids=["whole", "crashed-and-resumed"])
def test_manifests_loaded_by_worker_processes_give_the_same_verdicts(
    world: AuditWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crash: bool
) -> None:
    """The pool loads ahead of the judging; verdicts, and a cursor written mid-scan, are as in
    one process."""
    _troubled_chain(world)
    alone = tmp_path / "alone.json"
    assert audit(world, "--report", str(alone)).exit_code == 1
    monkeypatch.setattr(batch_loader, "POOL_AFTER", 0)
    source = DirectoryManifests(world.manifests)
    cursor = tmp_path / "audit.cursor" if crash else None
    if crash:
        monkeypatch.setattr(chain_audit, "_CHECKPOINT_SECONDS", 0.0)
        real_batch = ChainAudit._batch
        judged: list[int] = []

        def crash_on_the_third(self: ChainAudit, state: Any, event: Any, loaded: Any) -> None:
            judged.append(event.block_number)
            if len(judged) == 3:
                raise KeyboardInterrupt
            real_batch(self, state, event, loaded)

        monkeypatch.setattr(ChainAudit, "_batch", crash_on_the_third)
        with pytest.raises(KeyboardInterrupt):
            ChainAudit(world.w3, world.deployment, source, cursor_file=cursor, jobs=2).run()
        monkeypatch.setattr(ChainAudit, "_batch", real_batch)
    report = ChainAudit(world.w3, world.deployment, source, cursor_file=cursor, jobs=2).run()
    pooled = tmp_path / "pooled.json"
    pooled.write_text(json.dumps(report.to_json()))
    assert _verdicts(pooled) == _verdicts(alone)
    assert report.stats["receipts"] == 9


def test_an_api_gone_while_workers_load_fails_every_batch(
    world: AuditWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A source down for every batch hides nothing: each batch fails batch-manifest, exit 1
    (never exit 2, which would look like the auditor's own mistake)."""
    session = world.open_session()
    roots = [world.commit([world.sale(session)]) for _ in range(2)]
    monkeypatch.setattr(batch_loader, "POOL_AFTER", 0)  # the first batch already in a worker
    rpc = world.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    dep = deployment_path(world.deployment.chain_id, _deployments_dir(world))
    result = runner.invoke(
        app,
        ["audit", "chain", "--rpc", rpc, "--deployment", str(dep), "--api", "http://127.0.0.1:9"],
    )
    lines = assert_only(result, "batch-manifest")
    assert len(lines) == 2
    for root, line in zip(roots, lines, strict=True):
        assert f"batch 0x{root.hex()}" in line
        assert "http://127.0.0.1:9/v1/batches/" in line


def _move_cursor(path: Path, next_block: int) -> None:
    """Set a cursor's resume block: audit chain's (SQLite) or the JSON ones."""
    if path.read_bytes().startswith(b"SQLite format 3"):
        with sqlite3.connect(path) as db:
            (state,) = db.execute("SELECT value FROM meta WHERE key = 'state'").fetchone()
            data = {**json.loads(state), "next_block": next_block}
            db.execute("UPDATE meta SET value = ? WHERE key = 'state'", (json.dumps(data),))
        return
    data = {**json.loads(path.read_text()), "next_block": next_block}
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    "command",
    [
        ["audit", "chain"],
        ["report", "sales", "--out", "{tmp}/sales.json"],
        ["export", "epcis", "--out", "{tmp}/epcis.json"],
        ["export", "credentials", "--out", "{tmp}/vc.json", "--issuer-key", "{tmp}/key.pem"],
    ],
    ids=["audit-chain", "report-sales", "export-epcis", "export-credentials"],
)
def test_a_cursor_from_a_chain_that_was_reset_is_refused(
    world: AuditWorld, tmp_path: Path, command: list[str]
) -> None:
    """A devnet started afresh has the same contract addresses, so only the blocks tell: a
    cursor resuming past the chain's latest block must not report its old tallies as a
    clean result."""
    clean_sales(world)
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    args = [a.replace("{tmp}", str(tmp_path)) for a in command]
    if command[0] != "export" or command[1] != "credentials":
        args += ["--manifests", str(world.manifests)]
    rpc = world.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    dep = deployment_path(world.deployment.chain_id, _deployments_dir(world))
    cursor = tmp_path / "run.cursor"
    base = [*args, "--rpc", rpc, "--deployment", str(dep), "--cursor", str(cursor)]
    first = runner.invoke(app, base)
    assert first.exit_code == 0, first.output
    _move_cursor(cursor, world.w3.eth.block_number + 50)
    again = runner.invoke(app, base)
    assert again.exit_code == 2, again.output
    assert "past the chain's latest block" in again.stderr
