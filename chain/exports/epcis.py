"""``export epcis``: the chain's products and verified sales as an EPCIS 2.0 JSON-LD document.

* Each registered product becomes an ``ObjectEvent`` with CBV business step
  ``commissioning``, action ``ADD`` and disposition ``active``: the product class (GS1 Digital
  Link URI of its GTIN-14, in a ``quantityList`` with no quantity, as EPCIS allows for an
  unknown quantity) came into being on chain when the brand registered it. ``eventTime`` is
  the registration block's timestamp.
* Each sale receipt of a verified batch becomes an ``ObjectEvent`` with business step
  ``retail_selling``, action ``OBSERVE`` and disposition ``retail_sold`` (the CBV pairing for
  a sale to a consumer), the units sold as the ``quantity`` of the product class, and
  ``eventTime`` the order's ``orderedAt``.
* Refunds are left out: a refund receipt records money returned, not that the goods came
  back, so no CBV step says what happened to the objects. ``report sales`` nets them.

What the export rests on is reported as checks (:data:`EPCIS_CHECKS`): each committed batch
verified (else its sales are left out), no receipt id committed twice (a repeat is exported
once), and each sale's product registered (else it has no GTIN and is left out).

Every ``eventID`` is a name-based UUID URN (CBV 2.0 allows UUID URNs besides event hash ids),
derived from the chain id, the contract and the product or receipt id, so exports repeat.
Where each event is proven on chain (CAIP-2 chain id, contract, transaction, block) is an
EPCIS user extension under the ``liveproof`` prefix, declared in the document's
``@context``; so are the receipt's own fields.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from web3 import Web3

from chain.audit.chain_audit import Progress
from chain.audit.findings import AuditReport
from chain.audit.manifests import ManifestSource
from chain.audit.registry import Product, Registry
from chain.audit.sales_report import BATCH_CHECKS, RepeatedReceipt, add_batch_findings
from chain.audit.state_files import check_resume_point, read_state, unusable, write_state
from chain.audit.verified import SkippedBatch, VerifiedBatch, read_registry, verified_batches
from chain.deploy import Deployment
from chain.events import ScanCursor
from chain.exports import caip2, digital_link, hex0x, iso_utc, stable_uuid_urn

EPCIS_CONTEXT: Final = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
#: The user-extension namespace: ``liveproof:<name>`` keys expand to ``urn:liveproof:epcis:<name>``.
EXTENSION_PREFIX: Final = "liveproof"
EXTENSION_NAMESPACE: Final = "urn:liveproof:epcis:"
UTC_OFFSET: Final = "+00:00"
_ZERO32: Final = bytes(32)
_SALE: Final = 0
_CURSOR_FORMAT: Final = "liveproof-epcis-cursor/1"

#: Every check ``export epcis`` runs, by stable name, with what it asserts.
EPCIS_CHECKS: Final = {
    **BATCH_CHECKS,
    "duplicate-receipt": "no sale receipt id committed twice (a repeat is exported once)",
    "product-registered": "each exported sale's product is registered, so it has a GTIN",
}


def _ext(name: str) -> str:
    return f"{EXTENSION_PREFIX}:{name}"


def _chain_record(
    chain_id: int, contract: str, tx_hash: str, block: int, block_time: int
) -> dict[str, Any]:
    return {
        _ext("chainId"): caip2(chain_id),
        _ext("contract"): contract,
        _ext("transactionHash"): tx_hash,
        _ext("blockNumber"): block,
        _ext("blockTime"): iso_utc(block_time),
    }


def commissioning_event(
    product: Product, *, chain_id: int, registry: str, block_time: int, brand_name: str | None
) -> dict[str, Any]:
    """The ObjectEvent of a product's registration (``commissioning`` of its class)."""
    details: dict[str, Any] = {
        _ext("productId"): hex0x(product.product_id),
        _ext("name"): product.name,
        _ext("brand"): product.brand,
    }
    if brand_name:
        details[_ext("brandName")] = brand_name
    return {
        "type": "ObjectEvent",
        "eventID": stable_uuid_urn(chain_id, registry, "product", hex0x(product.product_id)),
        "eventTime": iso_utc(block_time),
        "eventTimeZoneOffset": UTC_OFFSET,
        "quantityList": [{"epcClass": digital_link(product.gtin)}],
        "action": "ADD",
        "bizStep": "commissioning",
        "disposition": "active",
        _ext("product"): details,
        _ext("chainRecord"): _chain_record(
            chain_id, registry, product.tx_hash, product.block, block_time
        ),
    }


@dataclass(frozen=True)
class SaleReceipt:
    """One sale leaf of a verified batch, with the product it sold."""

    index: int
    batch: VerifiedBatch
    product: Product

    def value_of(self, column: str) -> Any:
        """The leaf's value in a :class:`~chain.audit.manifests.Leaves` column."""
        return getattr(self.batch.leaves, column)[self.index]


def sale_event(sale: SaleReceipt, *, chain_id: int, ledger: str, block_time: int) -> dict[str, Any]:
    """The ObjectEvent of one sale receipt (``retail_selling``, ``retail_sold``)."""
    col = sale.value_of
    receipt_id: bytes = col("receipt_id")
    receipt: dict[str, Any] = {
        _ext("receiptId"): hex0x(receipt_id),
        _ext("leafHash"): hex0x(col("hashes")),
        _ext("batchRoot"): hex0x(sale.batch.root),
        _ext("productId"): hex0x(sale.product.product_id),
        _ext("roomId"): hex0x(col("room_id")),
        _ext("sessionId"): hex0x(col("session_id")),
        _ext("unitPrice"): str(col("unit_price")),
        _ext("currency"): col("currency").decode("ascii", "replace"),
    }
    if col("endorsement_id") != _ZERO32:
        receipt[_ext("endorsementId")] = hex0x(col("endorsement_id"))
    return {
        "type": "ObjectEvent",
        "eventID": stable_uuid_urn(chain_id, ledger, "receipt", hex0x(receipt_id)),
        "eventTime": iso_utc(col("ordered_at")),
        "eventTimeZoneOffset": UTC_OFFSET,
        "quantityList": [
            {"epcClass": digital_link(sale.product.gtin), "quantity": col("quantity")}
        ],
        "action": "OBSERVE",
        "bizStep": "retail_selling",
        "disposition": "retail_sold",
        _ext("receipt"): receipt,
        _ext("chainRecord"): _chain_record(
            chain_id, ledger, sale.batch.tx_hash, sale.batch.block_number, block_time
        ),
    }


def epcis_document(events: list[dict[str, Any]], created: datetime) -> dict[str, Any]:
    """An ``EPCISDocument`` holding ``events``, created at ``created``."""
    return {
        "@context": [EPCIS_CONTEXT, {EXTENSION_PREFIX: EXTENSION_NAMESPACE}],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "epcisBody": {"eventList": events},
    }


@dataclass
class EpcisExport:
    """An EPCIS document and what went into it."""

    document: dict[str, Any]
    chain_id: int
    to_block: int
    products: int = 0
    sales: int = 0
    refunds_left_out: int = 0
    #: Verified batches read, and the sale receipts in them.
    batches: int = 0
    receipts: int = 0
    #: Sale receipts whose id an earlier batch already committed (exported once).
    repeats: list[RepeatedReceipt] = field(default_factory=list)
    #: (receipt id, product id) of the sales whose product the registry does not know.
    unknown_products: list[tuple[bytes, bytes]] = field(default_factory=list)
    skipped: list[SkippedBatch] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when every committed sale is in the document."""
        return not self.skipped and not self.unknown_products

    def audit_report(self) -> AuditReport:
        """What the export rests on, as :data:`EPCIS_CHECKS` (``--report FILE``)."""
        report = AuditReport("epcis", dict(EPCIS_CHECKS))
        add_batch_findings(report, verified=self.batches, skipped=self.skipped,
                           receipts=self.receipts, repeats=self.repeats)  # fmt: skip
        report.checked["product-registered"] += self.sales + len(self.unknown_products)
        for receipt_id, product_id in self.unknown_products:
            report.add("product-registered", f"sale {hex0x(receipt_id)}",
                       "a registered product (for its GTIN)",
                       f"unregistered product {hex0x(product_id)}")  # fmt: skip
        report.stats = {
            "chain_id": self.chain_id, "to_block": self.to_block, "products": self.products,
            "sales": self.sales, "refunds_left_out": self.refunds_left_out,
            "batches": self.batches, "receipts": self.receipts,
            "duplicates": len(self.repeats), "skipped_batches": len(self.skipped),
        }  # fmt: skip
        return report


class _BlockTimes:
    def __init__(self, w3: Web3) -> None:
        self.w3 = w3
        self.cache: dict[int, int] = {}

    def __call__(self, block: int) -> int:
        if block not in self.cache:
            self.cache[block] = int(self.w3.eth.get_block(block)["timestamp"])
        return self.cache[block]


@dataclass
class EpcisCursor:
    """What ``export epcis --cursor FILE`` keeps: where the ledger scan stopped, and which
    products and sale receipts earlier runs exported (so each run writes only new events)."""

    cursor: ScanCursor
    products: set[bytes] = field(default_factory=set)
    seen: set[bytes] = field(default_factory=set)

    def save(self, path: Path, deployment: Deployment) -> None:
        """Write the cursor as JSON, atomically."""
        write_state(
            path,
            _CURSOR_FORMAT,
            {
                "next_block": self.cursor.next_block,
                "next_log_index": self.cursor.next_log_index,
                "products": sorted(p.hex() for p in self.products),
                "seen": [r.hex() for r in self.seen],
            },
            deployment,
        )

    @classmethod
    def load(cls, path: Path, deployment: Deployment) -> EpcisCursor:
        """Read a cursor written by :meth:`save`."""
        data = read_state(path, _CURSOR_FORMAT, deployment)
        try:
            return cls(
                ScanCursor(int(data["next_block"]), int(data["next_log_index"])),
                {bytes.fromhex(p) for p in data["products"]},
                {bytes.fromhex(r) for r in data["seen"]},
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise unusable(path, exc) from None


def _product_events(
    registry: Registry,
    deployment: Deployment,
    block_time: Callable[[int], int],
    done: set[bytes],
) -> list[dict[str, Any]]:
    address = deployment.address("ProvenanceRegistry")
    return [
        commissioning_event(
            product,
            chain_id=deployment.chain_id,
            registry=address,
            block_time=block_time(product.block),
            brand_name=registry.brands.get(product.brand),
        )
        for product in sorted(registry.products.values(), key=lambda p: p.block)
        if product.product_id not in done
    ]


def epcis_export(
    w3: Web3,
    deployment: Deployment,
    manifests: ManifestSource,
    *,
    to_block: int | None = None,
    chunk_size: int = 10_000,
    skipped: Callable[[SkippedBatch], None] | None = None,
    created: datetime | None = None,
    progress: Progress | None = None,
    cursor_file: Path | None = None,
) -> EpcisExport:
    """Every product commissioning and every verified sale up to ``to_block`` (default: the
    latest block) as one EPCIS document; unverified batches are left out and listed.

    With ``cursor_file`` each run writes only what earlier runs with the same file did not:
    products registered and sales committed since (an incremental capture)."""
    latest = int(w3.eth.block_number)
    end = latest if to_block is None else to_block
    registry = read_registry(w3, deployment, to_block=end, chunk_size=chunk_size, progress=progress)
    block_time = _BlockTimes(w3)
    if cursor_file is not None and cursor_file.exists():
        state = EpcisCursor.load(cursor_file, deployment)
        check_resume_point(state.cursor.next_block, latest)
    else:
        state = EpcisCursor(ScanCursor(deployment.start_block))
    events = _product_events(registry, deployment, block_time, state.products)
    state.products.update(registry.products)
    result = EpcisExport({}, deployment.chain_id, end, products=len(events))

    def skip(batch: SkippedBatch) -> None:
        result.skipped.append(batch)
        if skipped is not None:
            skipped(batch)

    ledger = deployment.address("SaleLedger")
    seen = state.seen
    for batch in verified_batches(
        w3, deployment, manifests, to_block=end, chunk_size=chunk_size, skipped=skip,
        progress=progress, cursor=state.cursor,
    ):  # fmt: skip
        leaves = batch.leaves
        result.batches += 1
        for index, kind in enumerate(leaves.kind):
            if kind != _SALE:
                result.refunds_left_out += 1
                continue
            result.receipts += 1
            receipt_id = leaves.receipt_id[index]
            if receipt_id in seen:  # one event per receipt: eventIDs are unique
                result.repeats.append(RepeatedReceipt(receipt_id, batch.root, batch.block_number))
                continue
            seen.add(receipt_id)
            product = registry.products.get(leaves.product_id[index])
            if product is None:
                result.unknown_products.append((receipt_id, leaves.product_id[index]))
                continue
            sale = SaleReceipt(index, batch, product)
            events.append(
                sale_event(sale, chain_id=deployment.chain_id, ledger=ledger,
                           block_time=block_time(batch.block_number))
            )  # fmt: skip
            result.sales += 1
    result.document = epcis_document(events, created or datetime.now(UTC))
    if cursor_file is not None and result.complete:
        # An incomplete run leaves the cursor where it was, so the next run retries.
        state.save(cursor_file, deployment)
    return result
