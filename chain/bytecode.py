"""Compare deployed runtime bytecode with committed artifacts, immutables masked."""

from __future__ import annotations

from typing import Any, Literal

from eth_hash.auto import keccak

Match = Literal["exact", "partial", "mismatch", "missing"]


def mask_immutables(code: bytes, immutable_references: dict[str, Any]) -> bytes:
    """Zero every immutable's byte range (as listed by solc's ``immutableReferences``)."""
    masked = bytearray(code)
    for ranges in immutable_references.values():
        for ref in ranges:
            start, length = int(ref["start"]), int(ref["length"])
            masked[start : start + length] = bytes(length)
    return bytes(masked)


def _strip_cbor(code: bytes) -> bytes:
    # solc appends CBOR metadata whose length is the last two bytes.
    if len(code) < 2:
        return code
    size = int.from_bytes(code[-2:], "big") + 2
    return code[:-size] if size <= len(code) else code


def compare_runtime(onchain: bytes, artifact: dict[str, Any]) -> Match:
    """``exact`` when the code equals the artifact's (immutables masked), ``partial`` when only
    the trailing metadata differs, ``missing`` when there is no code, else ``mismatch``.

    ``liveproof deploy`` refuses anything but ``exact`` over existing code; ``audit contracts``
    fails anything but ``exact`` and then checks what the immutables hold
    (:func:`immutable_words`), so that masking them hides nothing."""
    if not onchain:
        return "missing"
    expected = bytes.fromhex(artifact["deployedBytecode"].removeprefix("0x"))
    refs = artifact.get("immutableReferences", {})
    if len(onchain) == len(expected) and mask_immutables(onchain, refs) == mask_immutables(
        expected, refs
    ):
        return "exact"
    masked_onchain = (
        _strip_cbor(mask_immutables(onchain, refs)) if len(onchain) >= len(expected) else b""
    )
    if masked_onchain and masked_onchain == _strip_cbor(mask_immutables(expected, refs)):
        return "partial"
    return "mismatch"


def immutable_words(code: bytes, immutable_references: dict[str, Any]) -> dict[str, list[bytes]]:
    """The bytes ``code`` holds at each immutable's offsets, by the immutable's AST id (one
    entry per reference; an immutable read in several places has several)."""
    return {
        ast_id: [code[int(ref["start"]) : int(ref["start"]) + int(ref["length"])] for ref in ranges]
        for ast_id, ranges in immutable_references.items()
    }


def code_hash(code: bytes) -> str:
    """keccak256 of runtime code, hex."""
    return "0x" + keccak(code).hex()
