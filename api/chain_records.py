"""Helpers for routes that write to the chain: hashing ids and finding earlier writes."""

from __future__ import annotations

from web3 import Web3

from api.chain_gateway import ChainLink
from chain.actions import label_hash
from chain.events import EventReader


def id_hash(text: str) -> str:
    """keccak256 of a platform id (room, session), as the contracts and leaves carry it."""
    return "0x" + label_hash(text).hex()


def find_event(
    link: ChainLink, contract: str, name: str, key: str, value: str
) -> tuple[str, int] | None:
    """(tx hash, block) of the latest ``name`` event whose ``key`` equals ``value``.

    Used when a retried request finds its write already on chain (a crash or lost response
    came between the chain and the database)."""
    reader = EventReader(
        link.w3, link.deployment, start_block=link.deployment.start_block, chunk_size=10_000
    )
    found: tuple[str, int] | None = None
    wanted = value.lower()
    for event in reader.iter_events(names=[f"{contract}.{name}"]):
        got = event.args.get(key)
        text = ("0x" + got.hex()) if isinstance(got, bytes) else str(got).lower()
        if text == wanted:
            found = (event.tx_hash, event.block_number)
    return found


def checksum(address: str) -> str:
    """EIP-55 form of an address."""
    return str(Web3.to_checksum_address(address))
