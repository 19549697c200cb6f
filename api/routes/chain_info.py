"""What a participant needs to sign: the chain, the contracts (EIP-712 domains) and nonces."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from api.deps import StateDep
from api.models.common import Address
from chain.eip712 import DOMAIN_NAMES, DOMAIN_VERSION

router = APIRouter(prefix="/chain", tags=["chain"])


@router.get("", summary="Chain id, contract addresses and EIP-712 domains (public)")
async def chain_info(state: StateDep) -> dict[str, Any]:
    """Everything a wallet needs to build the typed data of a signed action."""
    link = await run_in_threadpool(state.gateway.link)
    contracts = {name: c.address for name, c in link.deployment.contracts.items()}
    return {
        "chainId": link.chain_id,
        "contracts": contracts,
        "domains": {
            name: {
                "name": domain_name,
                "version": DOMAIN_VERSION,
                "chainId": link.chain_id,
                "verifyingContract": contracts[name],
            }
            for name, domain_name in DOMAIN_NAMES.items()
        },
    }


@router.get("/nonces/{address}", summary="An account's next nonce on each registry (public)")
async def nonces(address: Address, state: StateDep) -> dict[str, int]:
    """The nonce the account's next signature must carry, per registry."""

    def read() -> dict[str, int]:
        link = state.gateway.link()
        return {
            "ProvenanceRegistry": link.provenance.nonce(address),
            "AnchorRegistry": link.anchors.nonce(address),
        }

    return await run_in_threadpool(read)
