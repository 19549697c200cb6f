"""``liveproof report sales`` on a devnet: its numbers equal an independent count of what the
test committed, by anchor, product, room and session, in CSV and JSON; the PNG is a real chart
of sane size; the checks the figures rest on print as OK/FAIL lines and go into ``--report``:
a tampered or missing manifest's batch and a repeated receipt id are FAIL lines and exit 1."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from typer.testing import CliRunner, Result

from chain.actions import ProductInput, label_hash
from chain.deploy import deployment_path
from chain.receipts import ReceiptKind, ReceiptLeaf
from scripts.cli import app
from tests.audit.world import AuditWorld

runner = CliRunner()

SECOND_GTIN = 4_006_381_333_931


@dataclass
class Committed:
    """What a test committed: every verified leaf, and the names the registries hold."""

    leaves: list[ReceiptLeaf]
    anchors: dict[str, str]  # address -> handle
    sessions: dict[bytes, str]  # session id -> anchor address
    products: dict[bytes, tuple[str, int]]  # product id -> (name, gtin)
    tampered_root: bytes | None = None


def commit_sales(world: AuditWorld, *, tamper_one: bool = False) -> Committed:
    """Two anchors with a session each, two products, sales in two currencies and a partial
    refund, in three batches (one a single recorded receipt). With ``tamper_one``, a fourth
    batch is committed whose manifest then says another quantity."""
    a = world.accounts
    world.admin.anchors.register_anchor(a.anchor2.address, "@oolong-auntie")
    second = (
        world.as_(a.brand)
        .provenance.register_product(
            ProductInput(SECOND_GTIN, "Tieguanyin 100 g", "https://tea.example/t", label_hash("t"))
        )
        .value
    )
    s1 = world.open_session("live-1", "room-1")
    s2 = label_hash("live-2")
    world.admin.anchors.open_session(s2, label_hash("room-2"), a.anchor2.address)

    def in_room2(leaf: ReceiptLeaf) -> ReceiptLeaf:
        return replace(leaf, room_id=label_hash("room-2"))

    first = world.sale(s1, quantity=2)
    batch1 = [
        first,
        world.sale(s1, quantity=3),
        replace(world.sale(s1, quantity=1, unit_price=5_000), product_id=second),
        in_room2(replace(world.sale(s2, quantity=4, unit_price=5_000), product_id=second)),
    ]
    world.commit(batch1)
    refund = world.refund(first, 1)
    world.commit([refund])
    batch3 = [
        in_room2(replace(world.sale(s2, quantity=2, unit_price=1_999), currency=b"USD")),
        in_room2(world.sale(s2, quantity=1, unit_price=12_000)),
    ]
    world.commit(batch3)
    committed = Committed(
        leaves=[*batch1, refund, *batch3],
        anchors={a.anchor.address: "@tea-master-li", a.anchor2.address: "@oolong-auntie"},
        sessions={s1: a.anchor.address, s2: a.anchor2.address},
        products={world.product_id: ("Longjing 250 g", world.gtin), second: ("Tieguanyin 100 g",
                  SECOND_GTIN)},
    )  # fmt: skip
    if tamper_one:

        def more(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [{**rows[0], "quantity": 50}, *rows[1:]]

        committed.tampered_root = world.commit(
            [world.sale(s1, quantity=5), world.sale(s1, quantity=5)], tamper=more
        )
    return committed


def expected_rows(committed: Committed, by: str) -> dict[str, dict[str, Any]]:
    """The report's rows by key, counted here from the leaves the test built."""
    rows: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"units_sold": 0, "units_refunded": 0, "orders": 0, "refunds": 0,
                 "net_amount": defaultdict(int)}
    )  # fmt: skip
    for leaf in committed.leaves:
        key = {
            "anchor": committed.sessions[leaf.session_id],
            "product": "0x" + leaf.product_id.hex(),
            "room": "0x" + leaf.room_id.hex(),
            "session": "0x" + leaf.session_id.hex(),
        }[by]
        row = rows[key]
        amount = leaf.quantity * leaf.unit_price
        if leaf.kind == ReceiptKind.SALE:
            row["units_sold"] += leaf.quantity
            row["orders"] += 1
            row["net_amount"][leaf.currency.decode()] += amount
        else:
            row["units_refunded"] += leaf.quantity
            row["refunds"] += 1
            row["net_amount"][leaf.currency.decode()] -= amount
    for row in rows.values():
        row["net_units"] = row["units_sold"] - row["units_refunded"]
        row["net_amount"] = dict(row["net_amount"])
    return dict(rows)


def report(world: AuditWorld, out: Path, *extra: str) -> Result:
    """``liveproof report sales`` against the session's anvil, reading the world's manifests."""
    rpc = world.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    dep = world.manifests.parent / "deployment.json"
    if not dep.exists():
        dep.write_text(world.deployment.to_json(), encoding="utf-8")
    return runner.invoke(
        app,
        ["report", "sales", "--rpc", rpc, "--deployment", str(dep),
         "--manifests", str(world.manifests), "--out", str(out), *extra],
    )  # fmt: skip


@pytest.mark.parametrize("by", ["anchor", "product", "room", "session"])
def test_json_rows_equal_an_independent_count(world: AuditWorld, tmp_path: Path, by: str) -> None:
    committed = commit_sales(world)
    out = tmp_path / "sales.json"
    result = report(world, out, "--by", by)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    rows = json.loads(out.read_text())
    expected = expected_rows(committed, by)
    assert {row["key"]: {k: v for k, v in row.items() if k not in ("key", "label")}
            for row in rows} == expected  # fmt: skip
    # Most net units first.
    assert [row["net_units"] for row in rows] == sorted(
        (row["net_units"] for row in rows), reverse=True
    )
    assert f"wrote {len(expected)} rows by {by} to {out} (json): 7 receipts in 3 verified" in (
        result.stdout
    )
    assert result.stdout.splitlines()[:2] == [
        "OK: batch-verified: 3 checked",
        "OK: duplicate-receipt: 7 checked",
    ]


def test_labels_name_anchors_by_handle_and_products_by_name_and_gtin(
    world: AuditWorld, tmp_path: Path
) -> None:
    committed = commit_sales(world)
    out = tmp_path / "a.json"
    assert report(world, out, "--by", "anchor").exit_code == 0
    labels = {row["key"]: row["label"] for row in json.loads(out.read_text())}
    assert labels == {addr: f"{handle} ({addr})" for addr, handle in committed.anchors.items()}
    assert report(world, out, "--by", "product").exit_code == 0
    labels = {row["key"]: row["label"] for row in json.loads(out.read_text())}
    assert labels == {
        "0x" + pid.hex(): f"{name} (GTIN {gtin:014d})"
        for pid, (name, gtin) in committed.products.items()
    }
    # Written out by hand for the first anchor: 2 + 3 + 1 sold, 1 refunded, all in CNY.
    assert report(world, out, "--by", "anchor").exit_code == 0
    first = next(r for r in json.loads(out.read_text()) if r["label"].startswith("@tea"))
    assert (first["units_sold"], first["units_refunded"], first["net_units"]) == (6, 1, 5)
    assert first["net_amount"] == {"CNY": 5 * 12_800 + 5_000 - 12_800}


def test_csv_has_a_header_and_one_column_per_currency(world: AuditWorld, tmp_path: Path) -> None:
    committed = commit_sales(world)
    out = tmp_path / "sales.csv"
    result = report(world, out, "--by", "session")
    assert result.exit_code == 0, result.output
    reader = csv.DictReader(io.StringIO(out.read_text()))
    assert reader.fieldnames == [
        "session", "label", "units_sold", "units_refunded", "net_units", "orders", "refunds",
        "net_amount_CNY", "net_amount_USD",
    ]  # fmt: skip
    expected = expected_rows(committed, "session")
    found = {row["session"]: row for row in reader}
    assert found.keys() == expected.keys()
    for key, row in found.items():
        want = expected[key]
        for column in ("units_sold", "units_refunded", "net_units", "orders", "refunds"):
            assert int(row[column]) == want[column]
        for code in ("CNY", "USD"):
            assert int(row[f"net_amount_{code}"]) == want["net_amount"].get(code, 0)


def test_png_is_a_real_chart_of_sane_size(world: AuditWorld, tmp_path: Path) -> None:
    commit_sales(world)
    out = tmp_path / "sales.png"
    result = report(world, out, "--by", "product")
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(out) as image:
        assert image.format == "PNG"
        width, height = image.size
        assert 1_000 <= width <= 2_500, image.size
        assert 400 <= height <= 2_500, image.size
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
    # Not blank: white background, bars, hatching and anti-aliased text.
    assert colours is None or len(colours) > 50


def test_an_empty_chain_draws_an_empty_chart(world: AuditWorld, tmp_path: Path) -> None:
    out = tmp_path / "empty.png"
    result = report(world, out)
    assert result.exit_code == 0, result.output
    with Image.open(out) as image:
        assert image.format == "PNG"
    assert "wrote 0 rows by anchor" in result.stdout


def test_a_tampered_manifests_batch_is_excluded_and_exits_1(
    world: AuditWorld, tmp_path: Path
) -> None:
    committed = commit_sales(world, tamper_one=True)
    assert committed.tampered_root is not None
    out = tmp_path / "sales.json"
    result = report(world, out, "--by", "session")
    assert result.exit_code == 1, result.output
    root = "0x" + committed.tampered_root.hex()
    block = world.w3.eth.block_number
    assert (
        f"FAIL: batch-verified batch {root} (block {block}): a manifest that rebuilds the "
        "committed root vs manifest does not rebuild root"
    ) in result.stdout.splitlines()
    assert "OK: duplicate-receipt: 7 checked" in result.stdout
    assert "not complete: 1 committed batches not counted" in result.stdout
    # The report is still written, without the tampered batch's sales.
    rows = json.loads(out.read_text())
    assert {row["key"]: row["units_sold"] for row in rows} == {
        key: row["units_sold"] for key, row in expected_rows(committed, "session").items()
    }


def test_a_missing_manifest_is_excluded_and_exits_1(world: AuditWorld, tmp_path: Path) -> None:
    committed = commit_sales(world)
    extra = world.sale(world.open_session("live-3"), quantity=9)
    root = world.commit([extra])
    (world.manifests / f"0x{root.hex()}.json").unlink()
    out = tmp_path / "sales.csv"
    result = report(world, out, "--by", "room")
    assert result.exit_code == 1, result.output
    assert f"FAIL: batch-verified batch 0x{root.hex()} (block " in result.stdout
    assert result.stdout.splitlines()[0].endswith(": a manifest that rebuilds the committed "
                                                  "root vs no manifest")  # fmt: skip
    assert sum(int(r["units_sold"]) for r in csv.DictReader(io.StringIO(out.read_text()))) == (
        sum(leaf.quantity for leaf in committed.leaves if leaf.kind == ReceiptKind.SALE)
    )


def test_usage_errors_exit_2(world: AuditWorld, tmp_path: Path) -> None:
    result = report(world, tmp_path / "sales.txt")
    assert result.exit_code == 2
    assert "give --format csv|json|png" in result.stderr
    assert report(world, tmp_path / "s.csv", "--by", "brand").exit_code == 2
    assert report(world, tmp_path / "s.csv", "--api", "http://127.0.0.1:9").exit_code == 2
    assert report(world, tmp_path / "missing" / "s.csv").exit_code == 2
    unreachable = runner.invoke(
        app,
        ["report", "sales", "--rpc", "http://127.0.0.1:9", "--manifests", str(world.manifests),
         "--out", str(tmp_path / "s.csv"),
         "--deployment", str(deployment_path(world.deployment.chain_id, tmp_path))],
    )  # fmt: skip
    assert unreachable.exit_code == 2
    assert "cannot reach" in unreachable.stderr


def test_the_cursor_file_resumes_and_adds_only_new_commits(
    world: AuditWorld, tmp_path: Path
) -> None:
    cursor = tmp_path / "sales.cursor"
    session = world.open_session()
    world.commit([world.sale(session, quantity=2), world.sale(session, quantity=3)])
    first = report(world, tmp_path / "1.json", "--by", "session", "--cursor", str(cursor))
    assert first.exit_code == 0, first.output
    assert json.loads((tmp_path / "1.json").read_text())[0]["net_units"] == 5
    sale = world.sale(session, quantity=4)
    world.commit([sale])
    world.commit([world.refund(sale, 1)])
    second = report(world, tmp_path / "2.json", "--by", "session", "--cursor", str(cursor))
    assert second.exit_code == 0, second.output
    resumed = json.loads((tmp_path / "2.json").read_text())
    fresh = report(world, tmp_path / "3.json", "--by", "session")
    assert fresh.exit_code == 0, fresh.output
    # The resumed report equals one computed from scratch.
    assert resumed == json.loads((tmp_path / "3.json").read_text())
    assert resumed[0]["net_units"] == 8
    assert "4 receipts in 3 verified batches" in second.stdout
    # A cursor kept for another grouping is refused rather than mixed in.
    other = report(world, tmp_path / "4.json", "--by", "product", "--cursor", str(cursor))
    assert other.exit_code == 2
    assert "not by product" in other.output


def test_the_report_file_lists_checks_findings_and_figures(
    world: AuditWorld, tmp_path: Path
) -> None:
    commit_sales(world)
    audit = tmp_path / "report.json"
    clean = report(world, tmp_path / "s.json", "--by", "anchor", "--report", str(audit))
    assert clean.exit_code == 0, clean.output
    written = json.loads(audit.read_text())
    assert written["format"] == "liveproof-audit-sales/1"
    assert (written["ok"], written["findings"]) == (True, [])
    assert {name: (c["checked"], c["failed"]) for name, c in written["checks"].items()} == {
        "batch-verified": (3, 0),
        "duplicate-receipt": (7, 0),
    }
    assert all(c["asserts"] for c in written["checks"].values())
    stats = written["stats"]
    assert (stats["by"], stats["rows"], stats["batches"], stats["receipts"]) == ("anchor", 2, 3, 7)
    assert (stats["skipped_batches"], stats["duplicates"]) == (0, 0)
    assert stats["chain_id"] == world.w3.eth.chain_id
    assert stats["to_block"] == world.w3.eth.block_number

    session = world.open_session("live-9")
    tampered = world.commit(
        [world.sale(session), world.sale(session)],
        tamper=lambda rows: [{**rows[0], "quantity": 50}, *rows[1:]],
    )
    failed = report(world, tmp_path / "s.json", "--by", "anchor", "--report", str(audit))
    assert failed.exit_code == 1, failed.output
    written = json.loads(audit.read_text())
    assert written["ok"] is False
    assert written["checks"]["batch-verified"]["checked"] == 4
    assert written["checks"]["batch-verified"]["failed"] == 1
    assert written["findings"] == [
        {
            "check": "batch-verified",
            "subject": f"batch 0x{tampered.hex()} (block {world.w3.eth.block_number})",
            "expected": "a manifest that rebuilds the committed root",
            "found": "manifest does not rebuild root",
        }
    ]
    assert written["stats"]["skipped_batches"] == 1


def test_a_receipt_id_committed_twice_is_a_fail_and_counted_once(
    world: AuditWorld, tmp_path: Path
) -> None:
    session = world.open_session()
    sale = world.sale(session, quantity=3)
    world.commit([sale, world.sale(session, quantity=1)])
    again = world.commit([sale, world.sale(session, quantity=2)])
    out = tmp_path / "sales.json"
    result = report(world, out, "--by", "session", "--report", str(tmp_path / "r.json"))
    assert result.exit_code == 1, result.output
    assert "OK: batch-verified: 2 checked" in result.stdout
    assert (
        f"FAIL: duplicate-receipt receipt 0x{sale.receipt_id.hex()}: committed once vs "
        f"committed again in batch 0x{again.hex()} (block {world.w3.eth.block_number})"
    ) in result.stdout.splitlines()
    (row,) = json.loads(out.read_text())
    assert (row["units_sold"], row["orders"]) == (6, 3)  # the repeat counted once
    written = json.loads((tmp_path / "r.json").read_text())
    assert written["checks"]["duplicate-receipt"] == {
        "asserts": written["checks"]["duplicate-receipt"]["asserts"],
        "checked": 4,
        "failed": 1,
    }
    assert written["stats"]["duplicates"] == 1


def test_chart_labels_shorten_addresses_and_ids_to_their_ends() -> None:
    from chain.audit.sales_chart import bar_label

    address = "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955"
    assert bar_label(f"@longjing-xiaomei ({address})") == "@longjing-xiaomei\n(0x14dC…9955)"
    assert bar_label("0x" + "ab" * 32) == "0xabab…abab"
    assert bar_label("Longjing 250 g (GTIN 06901234567892)") == (
        "Longjing 250 g\n(GTIN 06901234567892)"
    )
