"""Exports of what the chain proves, in published formats: EPCIS 2.0 events
(:mod:`chain.exports.epcis`) and W3C Verifiable Credentials 2.0 (:mod:`chain.exports.credentials`).
No web or database code here: everything is read from the chain and the batch manifests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Final

#: Namespace of the name-based (version 5) UUIDs that identify exported events and credentials,
#: so that exporting the same chain twice gives the same ids.
ID_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "urn:liveproof")


def iso_utc(timestamp: int) -> str:
    """Unix seconds as an ISO 8601 UTC date-time with a ``Z`` (an ``xsd:dateTimeStamp``)."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def gtin14(gtin: int) -> str:
    """A GTIN-8/12/13/14 as the 14 digits GS1 keys use."""
    return f"{gtin:014d}"


def digital_link(gtin: int) -> str:
    """The product class's GS1 Digital Link URI (canonical ``id.gs1.org`` form, GTIN-14)."""
    return f"https://id.gs1.org/01/{gtin14(gtin)}"


def caip2(chain_id: int) -> str:
    """The chain as a CAIP-2 id: ``eip155:<chainId>``."""
    return f"eip155:{chain_id}"


def stable_uuid_urn(*parts: object) -> str:
    """``urn:uuid:`` of a version 5 UUID named by ``parts`` (same parts, same id)."""
    return "urn:uuid:" + str(uuid.uuid5(ID_NAMESPACE, "/".join(str(p) for p in parts)))


def hex0x(value: bytes) -> str:
    """Bytes as 0x-prefixed lower-case hex."""
    return "0x" + value.hex()
