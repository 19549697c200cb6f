"""What ``export credentials`` reads from the chain, kept between runs with ``--cursor FILE``:
the registered products (for their GTIN and name), the anchors' handles, every endorsement
with its terms, and each revocation with the transaction that made it.

Endorsements are registry-scale (a few per anchor and product), so the whole state goes into
the cursor file beside the scan position. A later run reads only the blocks after it and
folds in new products, anchors, endorsements and revocations of earlier endorsements; the
credentials are then written afresh from the whole state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar, get_type_hints

from web3 import Web3

from chain.audit.chain_audit import Progress
from chain.audit.registry import Endorsement, Product, Registry
from chain.audit.state_files import check_resume_point, read_state, unusable, write_state
from chain.deploy import Deployment
from chain.events import ChainEvent, EventReader, ScanCursor

#: The events a credential is made from.
CREDENTIAL_EVENTS: Final = (
    "ProvenanceRegistry.ProductRegistered",
    "AnchorRegistry.AnchorRegistered",
    "AnchorRegistry.EndorsementRecorded",
    "AnchorRegistry.EndorsementRevoked",
)
_FORMAT: Final = "liveproof-credentials-cursor/1"

T = TypeVar("T")


@dataclass(frozen=True)
class Revocation:
    """An endorsement's revocation as the chain recorded it."""

    revoked_at: int
    block: int
    tx_hash: str


def _to_json(record: Any) -> dict[str, Any]:
    return {k: "0x" + v.hex() if isinstance(v, bytes) else v for k, v in asdict(record).items()}


def _from_json(cls: type[T], data: dict[str, Any]) -> T:
    hints = get_type_hints(cls)
    return cls(
        **{k: bytes.fromhex(v.removeprefix("0x")) if hints[k] is bytes else v
           for k, v in data.items()}
    )  # fmt: skip


@dataclass
class EndorsementState:
    """Everything a run of ``export credentials`` has read, and where its scan stopped."""

    cursor: ScanCursor
    registry: Registry = field(default_factory=Registry)
    revocations: dict[bytes, Revocation] = field(default_factory=dict)

    def apply(self, event: ChainEvent) -> None:
        """Fold one of :data:`CREDENTIAL_EVENTS` into the state."""
        self.registry.apply(event)
        if event.name == "EndorsementRevoked" and event.args["endorsementId"] in (
            self.registry.endorsements
        ):
            self.revocations[event.args["endorsementId"]] = Revocation(
                event.args["revokedAt"], event.block_number, event.tx_hash
            )

    def save(self, path: Path, deployment: Deployment) -> None:
        """Write the state as JSON, atomically, bound to ``deployment``."""
        r = self.registry
        write_state(
            path,
            _FORMAT,
            {
                "next_block": self.cursor.next_block,
                "next_log_index": self.cursor.next_log_index,
                "products": [_to_json(p) for p in r.products.values()],
                "handles": dict(sorted(r.handles.items())),
                "endorsements": [_to_json(e) for e in r.endorsements.values()],
                "revocations": {
                    "0x" + eid.hex(): asdict(rev) for eid, rev in self.revocations.items()
                },
            },
            deployment,
        )

    @classmethod
    def load(cls, path: Path, deployment: Deployment) -> EndorsementState:
        """Read a state written by :meth:`save` for ``deployment``; raises ConfigurationError
        when the file is not one."""
        data = read_state(path, _FORMAT, deployment)
        try:
            registry = Registry()
            for row in data["products"]:
                product = _from_json(Product, row)
                registry.products[product.product_id] = product
            registry.handles = {str(k): str(v) for k, v in data["handles"].items()}
            for row in data["endorsements"]:
                endorsement = _from_json(Endorsement, row)
                registry.endorsements[endorsement.endorsement_id] = endorsement
            revocations = {
                bytes.fromhex(eid.removeprefix("0x")): Revocation(**rev)
                for eid, rev in data["revocations"].items()
            }
            cursor = ScanCursor(int(data["next_block"]), int(data["next_log_index"]))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise unusable(path, exc) from None
        return cls(cursor, registry, revocations)


def scan_endorsements(
    w3: Web3,
    state: EndorsementState,
    deployment: Deployment,
    *,
    to_block: int | None = None,
    chunk_size: int = 10_000,
    progress: Progress | None = None,
) -> tuple[int, int]:
    """Fold the events from ``state``'s cursor up to ``to_block`` (default: the latest block)
    into ``state``; the first and last block read."""
    reader = EventReader(w3, deployment, chunk_size=chunk_size, cursor=state.cursor)
    latest = reader.latest_block()
    end = latest if to_block is None else to_block
    start = state.cursor.next_block
    check_resume_point(start, latest)
    steps: Callable[[int, int], None] | None = None
    if progress is not None:
        steps = lambda done, last: progress("registry", done, last)  # noqa: E731
    for event in reader.iter_events(None, end, names=CREDENTIAL_EVENTS, progress=steps):
        state.apply(event)
    return start, end
