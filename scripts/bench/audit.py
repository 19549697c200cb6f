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


def _batch_leaves(
    count: int, fixed: dict[str, bytes], price: int, at: int
) -> tuple[list[dict[str, object]], list[bytes]]:
    """``count`` sale leaves (JSON rows and their hashes): fresh ids, one unit at the promised
    price, ordered at ``at`` (when the session opened)."""
    ids = [os.urandom(32) for _ in range(count)]
    buyers = [os.urandom(32) for _ in range(count)]
    head = _word(0) + bytes(32) + fixed["room"] + fixed["session"] + fixed["product"]
    tail = fixed["endorsement"] + _word(1) + _word(price) + b"CNY" + bytes(29)
    encoded = [
        rid + head + tail + _word(at) + buyer for rid, buyer in zip(ids, buyers, strict=True)
    ]
    hashes = list(keccak_many(keccak_many(encoded)))
    hexed = {k: "0x" + v.hex() for k, v in fixed.items()}
    rows: list[dict[str, object]] = [
        {
            "receiptId": "0x" + rid.hex(),
            "kind": 0,
            "refersTo": "0x" + "00" * 32,
            "roomId": hexed["room"],
            "sessionId": hexed["session"],
            "productId": hexed["product"],
            "endorsementId": hexed["endorsement"],
            "quantity": 1,
            "unitPrice": str(price),
            "currency": "0x434e59",
            "orderedAt": str(at),
            "buyerCommitment": "0x" + buyer.hex(),
        }
        for rid, buyer in zip(ids, buyers, strict=True)
    ]
    assert list(rows[0]) == [name for name, _ in LEAF_FIELDS]
    return rows, hashes


@dataclass(frozen=True)
class BuiltChain:
    """A devnet holding the bench's receipts, and where their manifests are."""

    rpc_url: str
    deployment_file: Path
    manifests: Path
    batches: int


def build_chain(receipts: int, rpc_url: str, work: Path) -> BuiltChain:
    """Deploy, register a product, claim, anchor, endorsement and session, and commit
    ``receipts`` sales in batches of 1,024 with their manifests under ``work``."""
    admin, brand, anchor, recorder = (account_from_key(k) for k in ANVIL_DEV_KEYS[:4])
    w3 = connect(rpc_url)
    deployment, _ = deploy(
        w3, admin, recorder=recorder.address, operator=recorder.address, directory=work
    )
    as_admin, as_brand = relayer_for(w3, admin), relayer_for(w3, brand)
    as_anchor, as_recorder = relayer_for(w3, anchor), relayer_for(w3, recorder)
    deployment.provenance(w3, as_admin).register_brand(brand.address, "Bench Tea Co.")
    brands = deployment.provenance(w3, as_brand)
    product = brands.register_product(ProductInput(6_901_234_567_892, "Bench tea", "", bytes(32)))
    now = int(w3.eth.get_block("latest")["timestamp"])
    claim = brands.add_claim(
        ClaimInput(product.value, label_hash("origin"), bytes(32), "", now + 86_400 * 365)
    )
    deployment.anchors(w3, as_admin).register_anchor(anchor.address, "@bench")
    terms = EndorsementTerms(
        product.value, claims_digest([claim.value]), label_hash("room"), True, 1_000, 12_800,
        b"CNY", now, now + 86_400 * 30,
    )  # fmt: skip
    endorsement = deployment.anchors(w3, as_anchor).endorse(terms).value
    session = label_hash("bench-session")
    operator = deployment.anchors(w3, as_recorder)
    opened = operator.open_session(session, label_hash("room"), anchor.address)
    opened_at = int(w3.eth.get_block(opened.block_number)["timestamp"])
    ledger = deployment.ledger(w3, as_recorder)
    fixed = {
        "room": label_hash("room"),
        "session": session,
        "product": product.value,
        "endorsement": endorsement,
    }
    manifests = work / "manifests"
    manifests.mkdir()
    batches = 0
    for start in range(0, receipts, BATCH):
        count = min(BATCH, receipts - start)
        rows, hashes = _batch_leaves(count, fixed, 12_800, opened_at)
        root = root_of_leaf_hashes(hashes)
        ledger.commit_batch(root, count)
        manifest = {"root": "0x" + root.hex(), "count": count, "leaf_types": list(LEAF_TYPES)}
        manifest["leaves"] = rows
        (manifests / f"0x{root.hex()}.json").write_bytes(orjson.dumps(manifest))
        batches += 1
    operator.close_session(session, bytes(32), receipts)
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
    seconds = float(report["stats"]["seconds"])
    return AuditBench(
        receipts=int(report["stats"]["receipts"]),
        batches=chain.batches,
        seconds=round(seconds, 3),
        receipts_per_s=round(report["stats"]["receipts"] / seconds),
        peak_rss_mb=round(usage.ru_maxrss / 1024, 1),
        wall_seconds=round(wall, 3),
        build_seconds=round(build_seconds, 1),
        ok=bool(report["ok"]),
    )


def report_json(bench: AuditBench) -> str:
    """The ``--json`` line."""
    return json.dumps(asdict(bench))
