"""``liveproof bench audit``: build a chain with N receipts on a throw-away anvil, then time
``liveproof audit chain`` over it in its own process (peak RSS measured there)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

from chain.actions import ClaimInput, EndorsementTerms, ProductInput, claims_digest, label_hash
from chain.clients.base import relayer_for
from chain.connect import connect
from chain.deploy import deploy
from chain.devnet import throwaway_anvil
from chain.errors import LiveProofError
from chain.hashing import keccak_many
from chain.keys import ANVIL_DEV_KEYS, account_from_key
from chain.merkle import root_of_leaf_hashes
from chain.receipts import LEAF_FIELDS, LEAF_TYPES

BATCH = 1_024


@dataclass(frozen=True)
class AuditBench:
    """What ``bench audit --json`` prints."""

    receipts: int
    batches: int
    seconds: float
    receipts_per_s: int
    peak_rss_mb: float
    wall_seconds: float
    build_seconds: float
    ok: bool


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


@dataclass(frozen=True)
class _Scene:
    """What the bench's receipts refer to: sessions, and per product its endorsement."""

    room: bytes
    sessions: list[tuple[bytes, int]]  # (session id, opened at)
    products: list[tuple[bytes, bytes]]  # (product id, endorsement id, zero for none)
    price: int


#: One receipt in this many is a refund of an earlier sale; one sale in this many is of the
#: product the host did not endorse (no promise binds it, so it names no endorsement).
REFUND_EVERY = 20
UNENDORSED_EVERY = 3


def _batch_leaves(
    count: int, scene: _Scene, start: int, sold: list[tuple[bytes, int, int, bytes]]
) -> tuple[list[dict[str, object]], list[bytes]]:
    """``count`` leaves (JSON rows and their hashes) numbered from ``start``: sales spread over
    the sessions and products, at or below the promised price, and every twentieth receipt a
    refund of one unit of an earlier sale (``sold`` collects sales to refund)."""
    values: list[tuple[bytes, int, bytes, bytes, bytes, bytes, int, int, int, bytes]] = []
    for n in range(start, start + count):
        rid, buyer = os.urandom(32), os.urandom(32)
        if n % REFUND_EVERY == REFUND_EVERY - 1 and sold:
            sale, session, product, endorsement = sold.pop()
            values.append((rid, 1, sale, scene.sessions[session][0], scene.products[product][0],
                           endorsement, 1,
                           scene.price, scene.sessions[session][1], buyer))  # fmt: skip
            continue
        endorsed = len(scene.products) - 1  # the last product has no endorsement
        session = n % len(scene.sessions)
        product = endorsed if n % UNENDORSED_EVERY == 0 else n % endorsed
        endorsement = scene.products[product][1]
        quantity = 1 + n % 3
        sold.append((rid, session, product, endorsement))
        values.append((rid, 0, bytes(32), scene.sessions[session][0], scene.products[product][0],
                       endorsement, quantity, scene.price - n % 2,
                       scene.sessions[session][1], buyer))  # fmt: skip
    encoded = [
        rid + _word(kind) + ref + scene.room + session + product + endorsement + _word(quantity)
        + _word(price) + b"CNY" + bytes(29) + _word(at) + buyer
        for rid, kind, ref, session, product, endorsement, quantity, price, at, buyer in values
    ]  # fmt: skip
    hashes = list(keccak_many(keccak_many(encoded)))
    rows: list[dict[str, object]] = [
        {
            "receiptId": "0x" + rid.hex(),
            "kind": kind,
            "refersTo": "0x" + ref.hex(),
            "roomId": "0x" + scene.room.hex(),
            "sessionId": "0x" + session.hex(),
            "productId": "0x" + product.hex(),
            "endorsementId": "0x" + endorsement.hex(),
            "quantity": quantity,
            "unitPrice": str(price),
            "currency": "0x434e59",
            "orderedAt": str(at),
            "buyerCommitment": "0x" + buyer.hex(),
        }
        for rid, kind, ref, session, product, endorsement, quantity, price, at, buyer in values
    ]
    assert list(rows[0]) == [name for name, _ in LEAF_FIELDS]
    return rows, hashes


def _sid(index: int) -> bytes:
    return label_hash(f"bench-session-{index}")


@dataclass(frozen=True)
class BuiltChain:
    """A devnet holding the bench's receipts, and where their manifests are."""

    rpc_url: str
    deployment_file: Path
    manifests: Path
    batches: int


def build_chain(receipts: int, rpc_url: str, work: Path) -> BuiltChain:
    """Deploy; register three products with a claim each, an anchor endorsing two and four
    live sessions; commit ``receipts`` receipts (sales, and one refund in twenty) in batches
    of 1,024 with their manifests under ``work``; close the sessions with honest counts."""
    admin, brand, anchor, recorder = (account_from_key(k) for k in ANVIL_DEV_KEYS[:4])
    w3 = connect(rpc_url)
    deployment, _ = deploy(
        w3, admin, recorder=recorder.address, operator=recorder.address, directory=work
    )
    as_admin, as_brand = relayer_for(w3, admin), relayer_for(w3, brand)
    as_anchor, as_recorder = relayer_for(w3, anchor), relayer_for(w3, recorder)
    deployment.provenance(w3, as_admin).register_brand(brand.address, "Bench Tea Co.")
    deployment.anchors(w3, as_admin).register_anchor(anchor.address, "@bench")
    brands = deployment.provenance(w3, as_brand)
    now = int(w3.eth.get_block("latest")["timestamp"])
    room = label_hash("room")
    products: list[tuple[bytes, bytes]] = []
    for gtin in (6_901_234_567_892, 6_901_234_567_885, 6_901_234_567_878):
        product = brands.register_product(ProductInput(gtin, f"Bench tea {gtin}", "", bytes(32)))
        claim = brands.add_claim(
            ClaimInput(product.value, label_hash("origin"), bytes(32), "", now + 86_400 * 365)
        )
        if len(products) == 2:
            products.append((product.value, bytes(32)))
            continue
        terms = EndorsementTerms(
            product.value, claims_digest([claim.value]), room, True, 1_000, 12_800,
            b"CNY", now, now + 86_400 * 30,
        )  # fmt: skip
        products.append((product.value, deployment.anchors(w3, as_anchor).endorse(terms).value))
    operator = deployment.anchors(w3, as_recorder)
    sessions = []
    for index in range(4):
        opened = operator.open_session(_sid(index), room, anchor.address)
        sessions.append((_sid(index), int(w3.eth.get_block(opened.block_number)["timestamp"])))
    scene = _Scene(room, sessions, products, 12_800)
    ledger = deployment.ledger(w3, as_recorder)
    manifests = work / "manifests"
    manifests.mkdir()
    batches = 0
    sold: list[tuple[bytes, int, int, bytes]] = []
    for start in range(0, receipts, BATCH):
        count = min(BATCH, receipts - start)
        rows, hashes = _batch_leaves(count, scene, start, sold)
        root = root_of_leaf_hashes(hashes)
        ledger.commit_batch(root, count)
        manifest = {"root": "0x" + root.hex(), "count": count, "leaf_types": list(LEAF_TYPES)}
        manifest["leaves"] = rows
        (manifests / f"0x{root.hex()}.json").write_bytes(orjson.dumps(manifest))
        batches += 1
    for session, _ in sessions:
        operator.close_session(session, bytes(32), 0)  # displayed 0: never overstated
    return BuiltChain(rpc_url, work / f"{deployment.chain_id}.json", manifests, batches)


def run_audit_bench(receipts: int = 100_000) -> AuditBench:
    """Build the chain, then run and time ``audit chain`` on it in its own process."""
    built_at = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="liveproof-bench-audit-") as tmp,
        throwaway_anvil() as dev,
    ):
        work = Path(tmp)
        chain = build_chain(receipts, dev.rpc_url, work)
        build_seconds = time.perf_counter() - built_at
        report_file = work / "report.json"
        started = time.perf_counter()
        log = work / "audit.log"
        with log.open("wb") as out:
            audit = subprocess.Popen(
                [
                    sys.executable, "-m", "scripts.cli", "audit", "chain", "--rpc", dev.rpc_url,
                    "--deployment", str(chain.deployment_file),
                    "--manifests", str(chain.manifests), "--report", str(report_file),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
            # wait4: the audit process's own peak RSS, not anvil's (also our child).
            _, status, usage = os.wait4(audit.pid, 0)
            audit.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        if audit.returncode not in (0, 1) or not report_file.exists():
            tail = log.read_text(errors="replace")[-2000:]
            raise LiveProofError(f"audit chain failed ({audit.returncode}): {tail}")
        report = json.loads(report_file.read_text())
        if not report["ok"]:
            # The bench chain is honest by construction: a finding is a bug in one or the other.
            raise LiveProofError(f"the bench chain did not audit clean: {report['findings'][:3]}")
    seconds = float(report["stats"]["seconds"])
    return AuditBench(
        receipts=int(report["stats"]["receipts"]),
        batches=chain.batches,
        seconds=round(seconds, 3),
        receipts_per_s=round(report["stats"]["receipts"] / seconds),
        # The audit's own figure (VmHWM): ru_maxrss would include this builder's memory,
        # which the forked child held before exec.
        peak_rss_mb=float(report["stats"].get("peak_rss_mb") or round(usage.ru_maxrss / 1024, 1)),
        wall_seconds=round(wall, 3),
        build_seconds=round(build_seconds, 1),
        ok=bool(report["ok"]),
    )


def report_json(bench: AuditBench) -> str:
    """The ``--json`` line."""
    return json.dumps(asdict(bench))
