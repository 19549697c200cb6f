"""The service's door to the chain: connection, deployment, relayer and serialised sends.

Connecting is lazy, so the API starts (and keeps accepting orders) while the chain is down.
Every transaction goes through :meth:`ChainGateway.send` under a lock shared by all workers
and servers on the database, and re-reads the relayer's nonce first: many processes can then
share one relayer key without nonce clashes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.engine import Engine
from web3 import Web3

from api.config import Settings
from api.locks import exclusive
from chain.clients import AnchorRegistryClient, ProvenanceRegistryClient, SaleLedgerClient
from chain.clients.base import relayer_for
from chain.connect import connect, require_connection
from chain.deploy import Deployment, check_deployment, load_deployment
from chain.errors import LiveProofError, RpcUnavailableError
from chain.keys import account_or_dev_key, is_local_chain
from chain.relayer import Relayer

T = TypeVar("T")


@dataclass(frozen=True)
class ChainLink:
    """A live connection with the deployment's clients, sending as the relayer."""

    w3: Web3
    chain_id: int
    deployment: Deployment
    relayer: Relayer
    provenance: ProvenanceRegistryClient
    anchors: AnchorRegistryClient
    ledger: SaleLedgerClient
    confirmations: int


class ChainGateway:
    """Lazily connected chain access shared by the routes and the committer."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self._link: ChainLink | None = None
        self._lock = threading.Lock()

    def link(self) -> ChainLink:
        """The connection, made on first use; raises RpcUnavailableError while unreachable."""
        if self._link is not None:
            return self._link
        with self._lock:
            if self._link is None:
                self._link = self._connect()
            return self._link

    def _connect(self) -> ChainLink:
        w3 = connect(self.settings.rpc_url)
        chain_id = require_connection(w3)
        deployment = load_deployment(chain_id, self.settings.deployments_dir)
        key = self.settings.relayer_key.get_secret_value() if self.settings.relayer_key else None
        account = account_or_dev_key(key, chain_id, what="relayer (LIVEPROOF_RELAYER_KEY)")
        relayer = relayer_for(w3, account)
        confirmations = self.settings.confirmations
        if confirmations is None:
            confirmations = 0 if is_local_chain(chain_id) else 2
        return ChainLink(
            w3=w3,
            chain_id=chain_id,
            deployment=deployment,
            relayer=relayer,
            provenance=deployment.provenance(w3, relayer),
            anchors=deployment.anchors(w3, relayer),
            ledger=deployment.ledger(w3, relayer),
            confirmations=confirmations,
        )

    def send(self, action: Callable[[ChainLink], T]) -> T:
        """Run ``action`` (which sends transactions) under the cross-process relayer lock."""
        link = self.link()
        with exclusive(self.engine, f"relayer-{link.relayer.address.lower()}"):
            link.relayer.resync_nonce()
            return action(link)

    def readiness(self) -> dict[str, str]:
        """Chain checks for /readyz: reachable, deployment known, code matches artifacts."""
        try:
            link = self.link()
            link.w3.eth.block_number  # noqa: B018 - a round trip proves the node answers
        except RpcUnavailableError as exc:
            return {"chain": f"unreachable: {exc}"}
        except LiveProofError as exc:
            return {"chain": f"not ready: {exc}"}
        except Exception as exc:  # a node that drops mid-request
            return {"chain": f"unreachable: {type(exc).__name__}"}
        verdicts = check_deployment(link.w3, link.deployment)
        bad = {k: v for k, v in verdicts.items() if v != "exact"}
        if bad:
            return {"chain": "ok", "contracts": f"code does not match artifacts: {bad}"}
        return {"chain": "ok", "contracts": "ok"}

    def reset(self) -> None:
        """Forget the connection (next use reconnects)."""
        with self._lock:
            self._link = None
