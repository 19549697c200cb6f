"""Field types shared by the models: hex hashes, addresses, timestamps."""

from __future__ import annotations

import time
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints
from sqlmodel._compat import SQLModelConfig
from web3 import Web3

#: Request bodies refuse unknown fields (no mass assignment, no silent typos).
FORBID_EXTRA = SQLModelConfig(extra="forbid")

Hash32 = Annotated[
    str,
    StringConstraints(pattern=r"^0x[0-9a-fA-F]{64}$", to_lower=True),
    Field(examples=["0x" + "ab" * 32]),
]
Signature = Annotated[
    str,
    StringConstraints(pattern=r"^0x[0-9a-fA-F]{130}$", to_lower=True),
    Field(description="65-byte EIP-712 signature r||s||v, hex", examples=["0x" + "11" * 65]),
]


def _checksum(value: str) -> str:
    if not Web3.is_address(value):
        raise ValueError("not an Ethereum address")
    return str(Web3.to_checksum_address(value))


Address = Annotated[
    str,
    StringConstraints(pattern=r"^0x[0-9a-fA-F]{40}$"),
    AfterValidator(_checksum),
    Field(examples=["0x70997970C51812dc3A010C7d01b50e0d17dc79C8"]),
]
#: Unix seconds that fit the contracts' uint64.
Uint64 = Annotated[int, Field(ge=0, lt=2**64)]
#: A uint64 of the contracts (unix seconds, a count) that the database keeps too: its columns
#: are signed 64-bit, so from 2**63 on a value is refused (else it would fail on writing, after
#: the chain transaction).
StoredUint64 = Annotated[int, Field(ge=0, lt=2**63)]
#: Prices in minor currency units (the contracts take uint256; the database keeps 63 bits).
MinorUnits = Annotated[int, Field(ge=0, lt=2**63, examples=[12_800])]
Currency = Annotated[
    str, StringConstraints(pattern=r"^[A-Z]{3}$"), Field(examples=["CNY"], description="ISO 4217")
]
#: Any text but NUL (U+0000), which PostgreSQL cannot store: refused with 422 everywhere.
NO_NUL = r"^[^\x00]*$"
Text = Annotated[str, StringConstraints(max_length=512, pattern=NO_NUL)]
Uri = Annotated[
    str,
    StringConstraints(max_length=2_048, pattern=NO_NUL),
    Field(examples=["https://brand.example/p/1"]),
]
#: The platform's own references (order, buyer): up to 128 characters, no NUL.
Ref = Annotated[str, StringConstraints(max_length=128, pattern=NO_NUL)]


def now() -> float:
    """Wall-clock unix time (seconds, fractional)."""
    return time.time()


def hex32(value: bytes) -> str:
    """0x-prefixed lower-case hex of 32 bytes."""
    return "0x" + value.hex()


def unhex(value: str) -> bytes:
    """Bytes of a 0x-prefixed hex string."""
    return bytes.fromhex(value.removeprefix("0x"))


Gtin = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9]{8,14}$"),
    Field(description="GS1 GTIN-8/12/13/14", examples=["06901234567892"]),
]
#: A platform identifier (room, session): letters, digits and ``._:-``.
PlatformId = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,128}$"),
    Field(examples=["room-8848"]),
]
Handle = Annotated[
    str,
    StringConstraints(pattern=r"^[^\s/\x00]{1,64}$"),
    Field(description="Platform handle", examples=["@tea-master-li"]),
]
