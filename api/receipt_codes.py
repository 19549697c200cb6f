"""Receipt codes: the shopper's handle on a receipt, encoding its 32-byte receiptId."""

from __future__ import annotations

import base64

from api.problems import ProblemError

PREFIX = "lp1"
_CODE_LENGTH = len(PREFIX) + 52


def encode(receipt_id: bytes) -> str:
    """``lp1`` + the receiptId in lower-case base32 without padding (55 characters)."""
    if len(receipt_id) != 32:
        raise ValueError("receiptId must be 32 bytes")
    return PREFIX + base64.b32encode(receipt_id).decode().rstrip("=").lower()


def decode(code: str) -> bytes:
    """The receiptId in a code; raises a 404 problem for anything that is not one."""
    text = code.strip().lower()
    if len(text) != _CODE_LENGTH or not text.startswith(PREFIX):
        raise ProblemError(404, "receipt-not-found", "No such receipt", "not a receipt code")
    try:
        raw = base64.b32decode(text[len(PREFIX) :].upper() + "====")
    except ValueError:
        raise ProblemError(
            404, "receipt-not-found", "No such receipt", "not a receipt code"
        ) from None
    # The last character carries 4 unused bits: only the canonical spelling is a code.
    if encode(raw) != text:
        raise ProblemError(404, "receipt-not-found", "No such receipt", "not a receipt code")
    return raw
